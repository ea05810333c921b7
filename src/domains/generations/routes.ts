import { type Request, Router } from "express";
import { z } from "zod";
import type { AppContext } from "../../context.js";
import { AppError } from "../../errors.js";
import {
  authenticate,
  authenticateUnlessPaying,
  keyScopeOf,
  readableGenerationIds,
} from "../../http/auth.js";
import { storedFileRoute } from "../../http/files.js";
import { idempotencyOf, idempotent } from "../../http/idempotency.js";
import { creditsToJson } from "../../lib/credits.js";
import { submitPaidGeneration } from "./paid.js";
import { type GenerateRequest, generateRequest } from "./request.js";
import {
  type GenerationView,
  generationJson,
  getGenerations,
  listGenerations,
  outputResource,
  readOutput,
  submitGeneration,
} from "./service.js";

export const generationId = z.string().regex(/^gen_[0-9a-z]{26}$/, "not a generation id");

export const statusQuery = z
  .object({
    ids: z
      .string()
      .min(1)
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

// History cursors: the last generation's (createdAt, id), opaque to clients.
const encodeCursor = (g: GenerationView) =>
  Buffer.from(JSON.stringify([g.position.createdAt, g.position.id])).toString("base64url");
function decodeCursor(cursor: string) {
  try {
    const [createdAt, id] = z
      .tuple([z.string().regex(/^\d{4}-\d\d-\d\d[ T][\d:.]+([+-]\d\d(:?\d\d)?|Z)?$/), generationId])
      .parse(JSON.parse(Buffer.from(cursor, "base64url").toString()));
    // PostgreSQL's text form ("2026-11-21 19:20:01.123456+00") made ISO, to reject a forged date.
    const iso = createdAt.replace(" ", "T").replace(/([+-]\d\d)$/, "$1:00");
    if (Number.isNaN(Date.parse(iso))) throw new Error("not a time");
    return { createdAt, id };
  } catch {
    throw new AppError("invalid_request", "Invalid cursor.");
  }
}

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

  router.post("/v1/generate", authenticateUnlessPaying(ctx), idempotent(ctx), async (req, res) => {
    const request = generateRequest.parse(req.body);
    if (!req.caller) {
      const submitted = await submitPaidGeneration(ctx, req, res, request);
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
  });

  router.get(
    "/v1/generate/status",
    authenticate(ctx, { generationTokens: true }),
    async (req, res) => {
      const { ids } = statusQuery.parse(req.query);
      const readable = readableGenerationIds(req, ids);
      const found = await getGenerations(ctx, keyScopeOf(req), readable);
      const notFound = ids.filter((id) => !found.data.some((g) => g.generationId === id));
      res.json({ data: found.data.map(generationJson), notFound });
    },
  );

  router.get("/v1/history", auth, async (req, res) => {
    const q = historyQuery.parse(req.query);
    const page = await listGenerations(ctx, keyScopeOf(req), {
      limit: q.limit + 1,
      before: q.cursor ? decodeCursor(q.cursor) : undefined,
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
      nextCursor: page.length > q.limit && last ? encodeCursor(last) : null,
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
