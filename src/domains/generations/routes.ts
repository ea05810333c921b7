import { type Request, Router } from "express";
import { z } from "zod";
import type { AppContext } from "../../context.js";
import {
  authenticate,
  authenticateUnlessPaying,
  keyScopeOf,
  readableGenerationIds,
} from "../../http/auth.js";
import { decodeCursor, encodeCursor, pgTimestampText } from "../../http/cursor.js";
import { storedFileRoute } from "../../http/files.js";
import { idempotencyOf, idempotent } from "../../http/idempotency.js";
import { rateLimit } from "../../http/rate-limit.js";
import { payForGeneration, payForGenerations, respondPending } from "../../http/x402.js";
import { creditsToJson } from "../../lib/credits.js";
import { receiptJson } from "../payments/accept.js";
import { quoteRequest } from "./compose.js";
import { type GenerateRequest, generateRequest, quoteBreakdown } from "./request.js";
import {
  generationJson,
  getGenerations,
  listGenerations,
  MAX_BATCH_SIZE,
  outputResource,
  quoteJson,
  readOutput,
  statusJson,
  submitGeneration,
  submitGenerationBatch,
} from "./service.js";

export const generationId = z.string().regex(/^gen_[0-9a-z]{26}$/, "not a generation id");

export const statusQuery = z
  .object({
    ids: z
      .string({ error: "give 1–50 generation ids, comma-separated" })
      .min(1, "give 1–50 generation ids, comma-separated")
      .transform((s) => [
        ...new Set(
          s
            .split(",")
            .map((id) => id.trim())
            .filter(Boolean),
        ),
      ])
      .pipe(z.array(z.string().min(1).max(64)).min(1, "at least one id").max(50, "at most 50 ids")),
  })
  .strict();

/** POST /v1/generate/batch: up to 20 bodies of POST /v1/generate. */
export const batchRequest = z
  .object({
    requests: z
      .array(generateRequest)
      .min(1, "at least one request")
      .max(MAX_BATCH_SIZE, `at most ${MAX_BATCH_SIZE} requests`),
  })
  .strict();

export const historyQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(100).default(20),
    cursor: z.string().max(200).optional(),
    mediaType: z.enum(["image", "video"]).optional(),
    status: z.enum(["pending", "processing", "completed", "failed"]).optional(),
    model: z.string().min(1).max(100).optional(),
    from: z.iso.datetime({ offset: true }).optional(),
    to: z.iso.datetime({ offset: true }).optional(),
  })
  .strict();

export const downloadQuery = z
  .object({
    id: generationId,
    model: z.string().min(1).max(100),
    expires: z.string().optional(),
    signature: z.string().optional(),
  })
  .strict();

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
) {
  const idempotency = idempotencyOf(req);
  return submitGeneration(ctx, ctx.config.channels, keyScopeOf(req), request, {
    idempotency: idempotency && { ...idempotency, key: `${idempotency.key}${keySuffix}` },
    storage: ctx.generations.storage,
  });
}

export function generationRoutes(ctx: AppContext): Router {
  const router = Router();
  const auth = authenticate(ctx);

  router.post(
    "/v1/generate",
    authenticateUnlessPaying(ctx),
    rateLimit(ctx, "generate"),
    idempotent(ctx),
    async (req, res) => {
      const request = generateRequest.parse(req.body);
      if (!req.caller) {
        const submitted = await payForGeneration(ctx, req, res, request);
        if (!submitted) return;
        const { generation, paid } = submitted;
        res.status(202).json({
          generationId: generation.generationId,
          cost: creditsToJson(generation.cost),
          ...paid,
        });
        return;
      }
      const { generationId: id, cost } = await submitForCaller(ctx, req, request);
      res.status(202).json({ generationId: id, cost: creditsToJson(cost) });
    },
  );

  // The price of a request before it is made: the same composition and quote submit uses.
  router.post("/v1/generate/quote", auth, rateLimit(ctx, "poll"), async (req, res) => {
    const request = generateRequest.parse(req.body);
    const scope = keyScopeOf(req);
    const priced = await quoteRequest(
      ctx,
      request,
      { network: scope.network, userId: scope.accountId },
      ctx.config.channels,
    );
    res.json({
      network: scope.network,
      prompt: priced.prompt,
      negativePrompt: priced.negativePrompt,
      aspectRatio: priced.aspectRatio,
      resolution: priced.resolution,
      quote: quoteJson(quoteBreakdown(priced)),
    });
  });

  router.post(
    "/v1/generate/batch",
    authenticateUnlessPaying(ctx),
    rateLimit(ctx, "batch"),
    idempotent(ctx),
    async (req, res) => {
      const { requests } = batchRequest.parse(req.body);
      if (!req.caller) {
        const paid = await payForGenerations(ctx, req, res, requests, "batch", {
          asBatch: true,
        });
        if (paid.status === "pending") return respondPending(res, paid.payment);
        const { batchId, generations } = paid.result;
        res.status(202).json({
          batchId,
          cost: creditsToJson(generations.reduce((sum, g) => sum + g.cost, 0n)),
          generations: generations.map((g) => ({
            generationId: g.generationId,
            cost: creditsToJson(g.cost),
            accessToken: g.accessToken,
          })),
          payment: receiptJson(paid.payment),
        });
        return;
      }
      const batch = await submitGenerationBatch(
        ctx,
        ctx.config.channels,
        keyScopeOf(req),
        requests,
        {
          idempotency: idempotencyOf(req),
          storage: ctx.generations.storage,
        },
      );
      res.status(202).json({
        batchId: batch.batchId,
        cost: creditsToJson(batch.cost),
        generations: batch.generations.map((g) => ({
          generationId: g.generationId,
          cost: creditsToJson(g.cost),
        })),
      });
    },
  );

  router.get(
    "/v1/generate/status",
    authenticate(ctx, { generationTokens: true }),
    rateLimit(ctx, "poll"),
    async (req, res) => {
      const { ids } = statusQuery.parse(req.query);
      const readable = readableGenerationIds(req, ids);
      const found = await getGenerations(ctx, keyScopeOf(req), readable);
      res.json(statusJson(found.data, ids));
    },
  );

  router.get("/v1/history", auth, rateLimit(ctx, "poll"), async (req, res) => {
    const q = historyQuery.parse(req.query);
    const page = await listGenerations(ctx, keyScopeOf(req), {
      limit: q.limit + 1,
      before: q.cursor
        ? (([createdAt, id]) => ({ createdAt, id }))(decodeCursor(q.cursor, historyCursor))
        : undefined,
      mediaType: q.mediaType,
      status: q.status,
      model: q.model,
      from: q.from ? new Date(q.from) : undefined,
      to: q.to ? new Date(q.to) : undefined,
    });
    const data = page.slice(0, q.limit);
    const last = data.at(-1);
    res.json({
      data: data.map(generationJson),
      nextCursor:
        page.length > q.limit && last
          ? encodeCursor([last.position.createdAt, last.position.id])
          : null,
    });
  });

  // The owner with the API key, or anyone holding the signed URL the status endpoint gives.
  storedFileRoute(ctx, router, "/v1/download", {
    parse: (req) => downloadQuery.parse(req.query),
    resource: ({ id, model }) => outputResource(id, model),
    read: ({ id, model }, owner) => readOutput(ctx, ctx.generations.storage, owner, id, model),
    what: "Output",
  });

  return router;
}
