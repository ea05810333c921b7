import { ZodError } from "zod";
import { ApiError, type PolyforgeApi } from "../../packages/mcp/src/api.js";
import type { AppContext } from "../context.js";
import type { NetworkScope } from "../domains/accounts/caller.js";
import { speechRequest } from "../domains/audio/contract.js";
import { createSpeech, planSpeech } from "../domains/audio/service.js";
import { catalogJson } from "../domains/catalog/routes.js";
import { chatRequest } from "../domains/chat/contract.js";
import { completeChat } from "../domains/chat/service.js";
import { completionJson } from "../domains/chat/wire.js";
import { getGenerations } from "../domains/generations/history.js";
import { generateRequest } from "../domains/generations/request.js";
import { submitGeneration } from "../domains/generations/submit.js";
import { statusJson } from "../domains/generations/wire.js";
import { getBalance } from "../domains/ledger/service.js";
import { enforceRateLimit, releaseRateLimit } from "../domains/ratelimits/service.js";
import { AppError, appErrorFromZod } from "../errors.js";
import { creditsToJson } from "../lib/credits.js";

/** Service errors in the shape the HTTP API gives them. */
async function asApi<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    const refusal = err instanceof ZodError ? appErrorFromZod(err) : err;
    if (refusal instanceof AppError) {
      throw new ApiError(refusal.code, refusal.message, refusal.status);
    }
    throw err;
  }
}

/** The API's operations in this process, for one API key's account and network (/mcp). */
export function localApi(ctx: AppContext, scope: NetworkScope): PolyforgeApi {
  return {
    stopping: ctx.shutdown.signal,
    generate: (body, options = {}) =>
      asApi(async () => {
        const request = generateRequest.parse(body);
        const decision = await enforceRateLimit(ctx, { kind: "account", ...scope }, "generate");
        const runInline = options.wait === true;
        // As over HTTP, only a call that starts work counts against the limit.
        const submitted = await submitGeneration(ctx, scope, request, { runInline }).catch(
          async (err: unknown) => {
            if (decision) await releaseRateLimit(ctx, decision);
            throw err;
          },
        );
        // Run here, as the images door does (inline.ts); past the wait the run goes on here.
        const running = runInline ? ctx.inlineRuns.run(submitted.resultIds) : undefined;
        return {
          generationId: submitted.generationId,
          cost: creditsToJson(submitted.cost),
          ...(running && { running }),
        };
      }),
    status: (ids) =>
      asApi(async () => {
        await enforceRateLimit(ctx, { kind: "account", ...scope }, "poll");
        return statusJson((await getGenerations(ctx, scope, ids)).data, ids);
      }),
    models: async () => catalogJson().data,
    speech: (body) =>
      asApi(async () => {
        const plan = planSpeech(speechRequest.parse(body));
        const decision = await enforceRateLimit(ctx, { kind: "account", ...scope }, "generate");
        try {
          const speech = await createSpeech(ctx, scope, plan);
          return {
            audioBase64: speech.audio.toString("base64"),
            contentType: speech.contentType,
            charged: creditsToJson(speech.charge.charged),
            upstream: speech.charge.upstream,
            failover: speech.charge.failover,
          };
        } catch (err) {
          if (decision) await releaseRateLimit(ctx, decision);
          throw err;
        }
      }),
    chat: (body, signal) =>
      asApi(async () => {
        const request = chatRequest.parse(body);
        const decision = await enforceRateLimit(ctx, { kind: "account", ...scope }, "generate");
        try {
          const { plan, outcome, routing } = await completeChat(
            ctx,
            scope,
            request,
            signal ?? ctx.shutdown.signal,
          );
          return completionJson(plan, outcome, routing);
        } catch (err) {
          if (decision) await releaseRateLimit(ctx, decision);
          throw err;
        }
      }),
    balance: () =>
      asApi(async () => {
        const b = await getBalance(ctx, scope.accountId, scope.network);
        return {
          creditBalance: creditsToJson(b.creditBalance),
          heldCredits: creditsToJson(b.heldCredits),
          earnings: creditsToJson(b.earnings),
          membershipTier: b.membershipTier,
          network: b.network,
        };
      }),
  };
}
