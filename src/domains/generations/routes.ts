import { type Request, type Response, Router } from "express";
import { z } from "zod";
import type { AppContext } from "../../context.js";
import { callerOf, keyScopeOf, readableGenerationIds } from "../../http/auth.js";
import { decodeCursor, encodeCursor, pageOf, pgTimestampText } from "../../http/cursor.js";
import { storedFileRoute } from "../../http/files.js";
import { idempotencyOf } from "../../http/idempotency.js";
import { mountOn, uncheckedBody } from "../../http/mount.js";
import { payForGeneration, payForGenerations, respondPending } from "../../http/x402.js";
import { creditsToJson } from "../../lib/credits.js";
import type { Caller } from "../accounts/caller.js";
import { receiptJson } from "../payments/accept.js";
import { quoteRequest } from "./compose.js";
import { generationContracts, generationId } from "./contract.js";
import { getGenerations, listGenerations } from "./history.js";
import { downloadOutput, outputResource } from "./outputs.js";
import { type GenerateRequest, quoteBreakdown } from "./request.js";
import { type SubmitOptions, submitGeneration, submitGenerationBatch } from "./submit.js";
import { generationJson, quoteJson, statusJson } from "./wire.js";

// History cursors: the last generation's (createdAt, id).
const historyCursor = z.tuple([pgTimestampText, generationId]);
/**
 * Submits for an API-key caller the way every generation door does: the key's account and
 * network, the request's Idempotency-Key (suffixed when one request makes several generations).
 */
export function submitForCaller(
  ctx: AppContext,
  req: Request,
  request: GenerateRequest,
  keySuffix = "",
  options: Pick<SubmitOptions, "runInline"> = {},
) {
  const idempotency = idempotencyOf(req);
  return submitGeneration(ctx, keyScopeOf(callerOf(req)), request, {
    ...options,
    idempotency: idempotency && { ...idempotency, key: `${idempotency.key}${keySuffix}` },
  });
}

/**
 * One generation for the doors that make one: with an API key, submitted for its account;
 * without, paid per call with x402, when `paid` holds what every paid answer adds (the access
 * token and the receipt). Undefined when the payment is pending: its 202 has been sent.
 */
export async function submitOrPay(
  ctx: AppContext,
  caller: Caller | undefined,
  req: Request,
  res: Response,
  request: GenerateRequest,
): Promise<{ generationId: string; cost: bigint; paid: Record<string, unknown> } | undefined> {
  if (caller) return { ...(await submitForCaller(ctx, req, request)), paid: {} };
  const submitted = await payForGeneration(ctx, req, res, request);
  if (!submitted) return undefined;
  const { generation, paid } = submitted;
  return { generationId: generation.generationId, cost: generation.cost, paid };
}

export function generationRoutes(ctx: AppContext): Router {
  const router = Router();
  const mount = mountOn(router, ctx);

  mount(generationContracts.generate, async ({ ctx, caller, body: request, req, res }) => {
    const submitted = await submitOrPay(ctx, caller, req, res, request);
    if (!submitted) return undefined;
    const { generationId: id, cost, paid } = submitted;
    return {
      status: 202,
      body: uncheckedBody({ generationId: id, cost: creditsToJson(cost), ...paid }),
    };
  });

  // The price of a request before it is made: the same composition and quote submit uses.
  mount(generationContracts.quoteGeneration, async ({ ctx, caller, body: request }) => {
    const scope = keyScopeOf(caller);
    const priced = await quoteRequest(
      ctx,
      request,
      { network: scope.network, userId: scope.accountId },
      ctx.channels,
    );
    return {
      status: 200,
      body: uncheckedBody({
        network: scope.network,
        prompt: priced.prompt,
        negativePrompt: priced.negativePrompt,
        aspectRatio: priced.aspectRatio,
        resolution: priced.resolution,
        quote: quoteJson(quoteBreakdown(priced)),
      }),
    };
  });

  mount(
    generationContracts.generateBatch,
    async ({ ctx, caller, body: { requests }, req, res }) => {
      if (!caller) {
        const paid = await payForGenerations(ctx, req, res, requests, "batch", {
          asBatch: true,
        });
        if (paid.status === "pending") {
          respondPending(res, paid.payment);
          return undefined;
        }
        const { batchId, generations } = paid.result;
        return {
          status: 202,
          body: uncheckedBody({
            batchId,
            cost: creditsToJson(generations.reduce((sum, g) => sum + g.cost, 0n)),
            generations: generations.map((g) => ({
              generationId: g.generationId,
              cost: creditsToJson(g.cost),
              accessToken: g.accessToken,
            })),
            payment: receiptJson(paid.payment),
          }),
        };
      }
      const batch = await submitGenerationBatch(ctx, keyScopeOf(caller), requests, {
        idempotency: idempotencyOf(req),
      });
      return {
        status: 202,
        body: uncheckedBody({
          batchId: batch.batchId,
          cost: creditsToJson(batch.cost),
          generations: batch.generations.map((g) => ({
            generationId: g.generationId,
            cost: creditsToJson(g.cost),
          })),
        }),
      };
    },
  );

  mount(generationContracts.getGenerationStatus, async ({ ctx, caller, query: { ids } }) => {
    const readable = readableGenerationIds(caller, ids);
    const found = await getGenerations(ctx, keyScopeOf(caller), readable);
    return { status: 200, body: uncheckedBody(statusJson(found.data, ids)) };
  });

  mount(generationContracts.listGenerations, async ({ ctx, caller, query: q }) => {
    const page = await pageOf(
      q.limit,
      (limit) =>
        listGenerations(ctx, keyScopeOf(caller), {
          limit,
          before: q.cursor
            ? (([createdAt, id]) => ({ createdAt, id }))(decodeCursor(q.cursor, historyCursor))
            : undefined,
          mediaType: q.mediaType,
          status: q.status,
          model: q.model,
          from: q.from ? new Date(q.from) : undefined,
          to: q.to ? new Date(q.to) : undefined,
        }),
      (last) => encodeCursor([last.position.createdAt, last.position.id]),
    );
    return {
      status: 200,
      body: uncheckedBody({ data: page.data.map(generationJson), nextCursor: page.nextCursor }),
    };
  });

  // The owner with the API key, or anyone holding the signed URL the status endpoint gives.
  storedFileRoute(ctx, mount, generationContracts.downloadOutput, {
    select: ({ query }) => query,
    resource: ({ id, model }) => outputResource(id, model),
    read: ({ id, model }, owner) => downloadOutput(ctx, owner, id, model),
    what: "Output",
  });

  return router;
}
