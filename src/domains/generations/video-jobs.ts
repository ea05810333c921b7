import { type Request, Router } from "express";
import { z } from "zod";
import type { AppContext } from "../../context.js";
import { notFound } from "../../errors.js";
import {
  authenticate,
  authenticateUnlessPaying,
  keyScopeOf,
  readableGenerationIds,
} from "../../http/auth.js";
import { idempotent } from "../../http/idempotency.js";
import { pathParams } from "../../http/params.js";
import { rateLimit } from "../../http/rate-limit.js";
import { payForGeneration } from "../../http/x402.js";
import { creditsToJson } from "../../lib/credits.js";
import { creativeFields, generateRequest, MAX_REFERENCE_IMAGES, seedSchema } from "./request.js";
import { generationId, submitForCaller } from "./routes.js";
import { type GenerationView, getGenerations } from "./service.js";

const JOB_STATUS = {
  pending: "queued",
  processing: "processing",
  completed: "succeeded",
  failed: "failed",
} as const;

export function videoJobJson(g: GenerationView) {
  const result = g.results[0];
  return {
    id: g.generationId,
    object: "video.job",
    status: JOB_STATUS[g.status],
    progress: g.status === "completed" ? 100 : (result?.progress ?? null),
    model: result?.model ?? null,
    prompt: g.prompt,
    videoUrl: (result?.videoUrl as string | null | undefined) ?? null,
    fps: (result?.fps as number | null | undefined) ?? null,
    credits: {
      quoted: creditsToJson(g.cost.quoted),
      charged: creditsToJson(g.cost.charged),
      refunded: creditsToJson(g.cost.refunded),
    },
    routing: result?.routing ?? null,
    error: result?.error ?? null,
    createdAt: g.createdAt,
    finishedAt: result?.finishedAt ?? null,
  };
}

export function videoJobRoutes(ctx: AppContext): Router {
  const router = Router();
  const auth = authenticate(ctx, { generationTokens: true });

  router.post(
    "/v1/videos/jobs",
    authenticateUnlessPaying(ctx),
    rateLimit(ctx, "generate"),
    idempotent(ctx),
    async (req: Request, res) => {
      const { model, ...job } = videoJobRequest.parse(req.body);
      const request = generateRequest.parse({ ...job, mediaType: "video", models: [model] });
      const job202 = (generationId: string, cost: bigint) => ({
        id: generationId,
        object: "video.job",
        status: "queued",
        model: request.models[0],
        credits: creditsToJson(cost),
      });
      if (!req.caller) {
        const submitted = await payForGeneration(ctx, req, res, request);
        if (!submitted) return;
        const { generation, paid } = submitted;
        res.status(202).json({ ...job202(generation.generationId, generation.cost), ...paid });
        return;
      }
      const submitted = await submitForCaller(ctx, req, request);
      res.status(202).json(job202(submitted.generationId, submitted.cost));
    },
  );

  router.get("/v1/videos/jobs/:id", auth, rateLimit(ctx, "poll"), async (req, res) => {
    const { id } = pathParams(jobParams, req.params, "Video job");
    const readable = readableGenerationIds(req, [id]);
    const generation = (await getGenerations(ctx, keyScopeOf(req), readable)).data[0];
    if (generation?.mediaType !== "video") throw notFound("Video job");
    res.json(videoJobJson(generation));
  });

  return router;
}
