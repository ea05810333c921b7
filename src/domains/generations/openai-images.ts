import { type Request, type Response, Router } from "express";
import type { AppContext } from "../../context.js";
import { AppError } from "../../errors.js";
import { keyScopeOf } from "../../http/auth.js";
import { mountOn, uncheckedBody } from "../../http/mount.js";
import { payForGenerations, respondPending } from "../../http/x402.js";
import { creditsToJson } from "../../lib/credits.js";
import type { NetworkScope } from "../accounts/caller.js";
import {
  type AspectRatio,
  aspectRatios,
  findModel,
  type ImageResolution,
  ratioOf,
} from "../catalog/models.js";
import { receiptJson } from "../payments/accept.js";
import { generationContracts } from "./contract.js";
import { type GenerationView, getGenerations } from "./history.js";
import { untilSettled } from "./inline.js";
import { readOutput } from "./outputs.js";
import { generateRequest } from "./request.js";
import { submitForCaller } from "./routes.js";
import { resultIdOf } from "./submit.js";

/** WIDTHxHEIGHT → the nearest offered aspect ratio, and a resolution class by the long side. */
export function fromSize(size: string): { aspectRatio: AspectRatio; resolution: ImageResolution } {
  if (size === "auto") return { aspectRatio: "1:1", resolution: "1K" };
  const [w, h] = size.split("x").map(Number) as [number, number];
  const ratio = w / h;
  // The offered ratio nearest on a log scale (so 2:1 and 1:2 are equally far from 1:1).
  const distance = (candidate: AspectRatio) => Math.abs(Math.log(ratio / ratioOf(candidate)));
  const aspectRatio = aspectRatios.reduce(
    (best, c) => (distance(c) < distance(best) ? c : best),
    "1:1" as AspectRatio,
  );
  const long = Math.max(w, h);
  const resolution: ImageResolution =
    long <= 512 ? "0.5K" : long <= 1024 ? "1K" : long <= 2048 ? "2K" : "4K";
  return { aspectRatio, resolution };
}

/**
 * The generations once all are final; undefined past the deadline or when the process starts
 * shutting down, so that a deploy answers the 202 with the ids instead of cutting the request.
 * `running` is this process's own run of them (see inline.ts): its end is the first moment to
 * look. The events then wake the wait for what another process settles (an Idempotency-Key
 * replay, a run handed to the workers).
 */
async function waitFor(
  ctx: AppContext,
  scope: NetworkScope,
  ids: string[],
  deadline: number,
  running: Promise<void>,
) {
  const stopping = ctx.shutdown.signal;
  await untilSettled(running, deadline - Date.now(), stopping);
  for (;;) {
    const { data } = await getGenerations(ctx, scope, ids);
    if (
      data.length === ids.length &&
      data.every((g) => g.status === "completed" || g.status === "failed")
    )
      return data;
    const left = deadline - Date.now();
    if (left <= 0 || stopping.aborted) return undefined;
    // Woken by the result's NOTIFY; the 1 s cap only bounds the cost of a missed one.
    await ctx.generationEvents.next(ids, Math.min(1000, left), stopping);
  }
}

/**
 * The rule for a call the client abandons: the generations it started are kept (and charged)
 * and made findable, never cancelled. Their ids go out before the wait as an HTTP `103 Early
 * Hints` (`X-Generation-Id`, comma-separated in request order, and a `Link` to their status),
 * because the final status (200, 202 or 502) is not known yet and flushing the final headers
 * would fix it at 200. The final answer carries the same header. Called only once the
 * generations exist, so for x402 only after the payment settled.
 */
function announceGenerationIds(ctx: AppContext, req: Request, res: Response, ids: string[]) {
  const value = ids.join(",");
  res.setHeader("X-Generation-Id", value);
  // HTTP/1.0 clients may not be sent a 1xx answer.
  const informational = req.httpVersionMajor > 1 || req.httpVersionMinor >= 1;
  if (
    !ctx.config.generation.imagesEarlyHints ||
    !informational ||
    res.headersSent ||
    res.writableEnded
  )
    return;
  res.writeEarlyHints({
    link: `</v1/generate/status?ids=${encodeURIComponent(value)}>; rel="monitor"`,
    "X-Generation-Id": value,
  });
}

async function imageData(
  ctx: AppContext,
  scope: NetworkScope,
  g: GenerationView,
  format: "url" | "b64_json",
) {
  const result = g.results[0];
  if (!result) throw new Error("a generation without results");
  if (format === "url") return { url: result.imageUrl as string };
  const output = await readOutput(ctx, scope, g.generationId, result.model);
  return { b64_json: output.bytes.toString("base64") };
}

export function openaiImagesRoutes(ctx: AppContext): Router {
  const router = Router();
  const mount = mountOn(router, ctx);

  mount(generationContracts.createImage, async ({ ctx, caller, body, req, res }) => {
    const model = findModel(body.model);
    if (!model)
      throw new AppError(
        "invalid_model",
        `Unknown model ${body.model}. GET /v1/models lists them.`,
        { field: "model" },
      );
    const { aspectRatio, resolution } = fromSize(body.size);
    // n images are n generations of one model, each with its own seed.
    const requests = Array.from({ length: body.n }, (_, i) =>
      generateRequest.parse({
        prompt: body.prompt,
        mediaType: "image",
        models: [model.id],
        aspectRatio,
        resolution,
        ...(body.seed === undefined ? {} : { seed: body.seed + i }),
        stylePassIds: body.stylePassIds,
        templateId: body.templateId,
        templateVariables: body.templateVariables,
        webhookUrl: body.webhookUrl,
        reservationId: body.reservationId,
        routing: body.routing,
      }),
    );
    let scope: NetworkScope;
    const ids: string[] = [];
    let credits = 0n;
    // The results this process runs itself (not a replay's, which run already).
    const runHere: string[] = [];
    // Paid with x402 (no API key): the extra fields say how to poll and what was paid.
    let paidWith: Record<string, unknown> = {};
    if (!caller) {
      const paid = await payForGenerations(ctx, req, res, requests, "generate", {
        runInline: true,
      });
      if (paid.status === "pending") {
        respondPending(res, paid.payment);
        return undefined;
      }
      scope = { accountId: paid.payment.accountId, network: paid.payment.network };
      for (const g of paid.result.generations) {
        ids.push(g.generationId);
        // One model per generation: its result is the first.
        runHere.push(resultIdOf(g.generationId, 0));
        credits += g.cost;
      }
      paidWith = {
        accessTokens: paid.result.generations.map((g) => g.accessToken),
        payment: receiptJson(paid.payment),
      };
    } else {
      scope = keyScopeOf(caller);
      for (const [i, request] of requests.entries()) {
        const submitted = await submitForCaller(ctx, req, request, `#${i}`, { runInline: true });
        ids.push(submitted.generationId);
        if (!submitted.replayed) runHere.push(...submitted.resultIds);
        credits += submitted.cost;
      }
    }

    announceGenerationIds(ctx, req, res, ids);
    // Past the wait, the run goes on here.
    const running = ctx.inlineRuns.run(runHere);
    const deadline = Date.now() + ctx.config.generation.imagesWaitMs;
    const done = await waitFor(ctx, scope, ids, deadline, running);
    if (!done) {
      return {
        status: 202,
        body: uncheckedBody({
          id: ids[0],
          ids,
          status: "processing",
          credits: creditsToJson(credits),
          ...paidWith,
        }),
      };
    }
    const failed = done.filter((g) => g.status === "failed");
    if (failed.length === done.length) {
      const error = failed[0]?.results[0]?.error;
      throw new AppError(
        "generation_failed",
        error?.message ?? "The generation failed; its credits were refunded.",
        {
          generationIds: ids,
          reason: error?.code ?? null,
        },
      );
    }
    const completed = done.filter((g) => g.status === "completed");
    return {
      status: 200,
      body: uncheckedBody({
        created: Math.floor(Date.now() / 1000),
        data: await Promise.all(
          completed.map((g) => imageData(ctx, scope, g, body.response_format)),
        ),
        credits: creditsToJson(completed.reduce((sum, g) => sum + g.cost.charged, 0n)),
        routing: completed[0]?.results[0]?.routing ?? null,
        generationIds: ids,
        ...paidWith,
      }),
    };
  });

  return router;
}
