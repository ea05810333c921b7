import { Router } from "express";
import type { AppContext } from "../../context.js";
import { notFound } from "../../errors.js";
import { keyScopeOf, readableGenerationIds } from "../../http/auth.js";
import { mountOn, uncheckedBody } from "../../http/mount.js";
import { creditsToJson } from "../../lib/credits.js";
import { generationContracts } from "./contract.js";
import { type GenerationView, getGenerations } from "./history.js";
import { generateRequest } from "./request.js";
import { submitOrPay } from "./routes.js";

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
  const mount = mountOn(router, ctx);

  mount(
    generationContracts.createVideoJob,
    async ({ ctx, caller, body: { model, ...job }, req, res }) => {
      const request = generateRequest.parse({ ...job, mediaType: "video", models: [model] });
      const job202 = (generationId: string, cost: bigint) => ({
        id: generationId,
        object: "video.job",
        status: "queued",
        model: request.models[0],
        credits: creditsToJson(cost),
      });
      const submitted = await submitOrPay(ctx, caller, req, res, request);
      if (!submitted) return undefined;
      const { generationId: id, cost, paid } = submitted;
      return { status: 202, body: uncheckedBody({ ...job202(id, cost), ...paid }) };
    },
  );

  mount(
    generationContracts.getVideoJob,
    async ({ ctx, caller, params: { id } }) => {
      const readable = readableGenerationIds(caller, [id]);
      const generation = (await getGenerations(ctx, keyScopeOf(caller), readable)).data[0];
      if (generation?.mediaType !== "video") throw notFound("Video job");
      return { status: 200, body: uncheckedBody(videoJobJson(generation)) };
    },
    { notFound: "Video job" },
  );

  return router;
}
