import { sql } from "drizzle-orm";
import type { ServiceContext } from "../../context.js";
import { AppError } from "../../errors.js";
import type { Network } from "../../lib/network.js";
import type { GenerationRuntime as RuntimePort } from "../../ports.js";

export type GenerationRuntime = RuntimePort<ServiceContext>;

import { type AspectRatio, findModel, type Resolution } from "../catalog/models.js";
import { postHold, voidHold } from "../ledger/service.js";
import { audioGenerationProviders, makesAudioGeneration } from "../providers/audio-providers.js";
import type { AudioGenerationProvider } from "../providers/audio-types.js";
import type { UpstreamJob } from "../providers/types.js";
import { validateOutput } from "../providers/validate.js";
import type { RoutingPreferences } from "../routing/preferences.js";
import {
  type RouteDeps,
  type RouteResult,
  type Routing,
  route,
  routeCall,
  type UpstreamJobRecord,
} from "../routing/router.js";
import { scheduleDeletions } from "../storage/deletions.js";
import { extensionOf } from "../storage/local.js";
import { signedUploadUrl } from "../uploads/service.js";
import { GENERATION_EVENTS_CHANNEL } from "./events.js";
import type { ResultFailureCode } from "./failures.js";
import { generationFinished, type SettledResult, type SettlementHooks } from "./settlement.js";

interface OpenResult {
  id: string;
  generation_id: string;
  position: number;
  runs: number;
  model: string;
  status: string;
  cost: string;
  hold_id: string;
  network: Network;
  media_type: "image" | "video" | "audio";
  prompt: string;
  account_id: string;
  /** The upstream job an earlier run submitted (see recordUpstreamJob). */
  upstream_job: { channel: string; job: Record<string, unknown> } | null;
  request: {
    negativePrompt?: string | null;
    aspectRatio: AspectRatio;
    resolution: Resolution;
    duration?: number;
    /** Each video model's frame rate, by model id (absent on generations made before it was kept). */
    frameRates?: Record<string, number | undefined>;
    seed: number;
    referenceImages?: string[];
    /** The caller's routing preferences (checked when it was quoted). */
    routing?: RoutingPreferences;
  };
  [key: string]: unknown;
}

function publicMessage(error: { kind: string; code: string }): string {
  if (error.kind === "caller")
    return "The upstream refused this prompt under its content policy; the credits were refunded.";
  if (error.code === "model_unavailable")
    return "No channel can serve this model right now; the credits were refunded.";
  return "Every upstream channel for this model failed; the credits were refunded.";
}

/**
 * Runs one model's result (the run_generation job). Safe to run twice, after a crash, or in
 * two workers at once: the upstream may be called again, but the result settles once, because
 * settling is a conditional update of the result and the resolution of its hold, together.
 */
export async function runResult(
  ctx: ServiceContext,
  runtime: GenerationRuntime,
  resultId: string,
): Promise<void> {
  const { rows } = await ctx.db.execute<OpenResult>(sql`
    update generation_results r set status = 'processing', runs = runs + 1, started_at = coalesce(started_at, ${ctx.clock()})
    from generations g
    where r.id = ${resultId} and g.id = r.generation_id and r.status in ('pending', 'processing')
    returning r.id, r.generation_id, r.position, r.runs, r.model, r.status::text, r.cost, r.hold_id, r.upstream_job,
              g.network::text as network, g.media_type::text as media_type, g.prompt, g.account_id, g.request,
              -- Listeners hear it started in the same round trip (delivered as the update commits).
              pg_notify(${GENERATION_EVENTS_CHANNEL},
                        json_build_object('generationId', r.generation_id, 'resultId', r.id, 'status', 'processing')::text)`);
  const result = rows[0];
  if (!result) return; // already settled (or unknown): nothing to do
  const log = ctx.logger.child({ resultId, model: result.model });
  const onProgress = progressReporter(ctx, result.generation_id, resultId);

  const upstreamJob: UpstreamJobRecord = {
    recorded: result.upstream_job,
    record: (channel: string, job: Record<string, unknown>) =>
      recordUpstreamJob(ctx, resultId, channel, job),
  };
  const routed =
    result.media_type === "audio"
      ? await routeAudio(ctx, runtime.routing, result, upstreamJob)
      : await route(ctx, runtime.routing, {
          model: result.model,
          network: result.network,
          onProgress,
          upstreamJob,
          preferences: result.request.routing,
          task: {
            mediaType: result.media_type,
            prompt: result.prompt,
            negativePrompt: result.request.negativePrompt ?? undefined,
            aspectRatio: result.request.aspectRatio,
            resolution: result.request.resolution,
            duration: result.request.duration,
            fps:
              result.media_type === "video"
                ? (result.request.frameRates?.[result.model] ??
                  findModel(result.model)?.fps?.default)
                : undefined,
            seed: result.request.seed,
            referenceImageUrls: (result.request.referenceImages ?? []).map((id) =>
              signedUploadUrl(ctx, id, ctx.config.generation.timeoutSeconds + 3600),
            ),
          },
        });
  ctx.metrics.routed(result.model, routed.routing);
  if (!routed.ok) {
    // The upstream's own words (which may quote our keys) stay in the log.
    log.warn(
      { code: routed.error.code, detail: routed.error.message, routing: routed.routing },
      "generation failed",
    );
    await failResult(ctx, runtime.settlement, resultId, {
      code: routed.error.code,
      message: publicMessage(routed.error),
      routing: routed.routing,
    });
    return;
  }

  const extension = extensionOf(routed.output.contentType);
  // One file per run: a second run of the same result never overwrites what the first delivered.
  const key = `${result.generation_id}/${result.position}-${result.runs}.${extension}`;
  await ctx.storage.put(key, routed.output.bytes);
  const settled = await completeResult(ctx, runtime.settlement, result, {
    key,
    contentType: routed.output.contentType,
    routing: routed.routing,
  });
  if (settled === "hold_gone") {
    // The hold expired (the sweeper refunded it) while the upstream worked: the caller was not
    // charged, so the result cannot be delivered as a paid one.
    await failResult(ctx, runtime.settlement, resultId, {
      code: "timed_out",
      message: "The result took longer than the generation timeout.",
      routing: routed.routing,
    });
  }
  if (settled !== "settled") {
    // No row points at this run's file (its key is this run's own): the retention task's
    // sweep deletes it. Not recording it only leaves the object behind.
    await scheduleDeletions(ctx, [key]).catch((err: unknown) =>
      log.warn({ err, key }, "unused output not scheduled for deletion"),
    );
  }
  log.info(
    { upstream: routed.routing.upstream, failover: routed.routing.failover },
    "generation completed",
  );
}

/**
 * A music or sound-effect result: routed like an image (retries, failover, circuits, the
 * upstream job resumed after a crash) over the channels whose provider makes audio, the output
 * checked to be audio by its header.
 */
async function routeAudio(
  ctx: ServiceContext,
  deps: RouteDeps,
  result: OpenResult,
  upstreamJob: UpstreamJobRecord,
): Promise<RouteResult> {
  const duration = result.request.duration as number;
  const routed = await routeCall(ctx, deps, {
    model: result.model,
    network: result.network,
    resume: upstreamJob.recorded,
    preferences: result.request.routing,
    serves: makesAudioGeneration,
    call: async (channel, upstreamModel, signal, resume) => {
      const job: UpstreamJob = {
        resume,
        submitted: (submitted) => upstreamJob.record(channel.id, submitted),
      };
      const provider = audioGenerationProviders[channel.provider] as AudioGenerationProvider;
      return validateOutput(
        "audio",
        await provider.generateAudio(
          { upstreamModel, prompt: result.prompt, duration, seed: result.request.seed },
          channel,
          signal,
          job,
        ),
      );
    },
  });
  return routed.ok
    ? { ok: true, output: routed.value, routing: routed.routing }
    : { ok: false, error: routed.error, routing: routed.routing };
}

/**
 * Keeps the upstream's job id on the result, so that a run after a crash (this worker killed,
 * or stopped before the job ended) polls that job rather than paying for a second one. Not
 * recording it only loses that: the run goes on.
 */
async function recordUpstreamJob(
  ctx: ServiceContext,
  resultId: string,
  channel: string,
  job: Record<string, unknown>,
): Promise<void> {
  try {
    await ctx.db.execute(sql`
      update generation_results set upstream_job = ${JSON.stringify({ channel, job })}::jsonb
      where id = ${resultId} and status = 'processing'`);
  } catch (err) {
    ctx.logger.warn({ err, resultId }, "upstream job not recorded: a retry would submit again");
  }
}

async function completeResult(
  ctx: ServiceContext,
  hooks: SettlementHooks,
  result: OpenResult,
  output: { key: string; contentType: string; routing: Routing },
): Promise<"settled" | "already" | "hold_gone"> {
  try {
    const settled = await ctx.db.transaction(async (db) => {
      const tx = { ...ctx, db };
      // Settles, tells listeners (on commit) and says what the hooks need, in one statement.
      const { rows } = await db.execute<SettledRow>(sql`
        update generation_results r set status = 'completed', charged = cost, progress = 100, output_key = ${output.key},
               content_type = ${output.contentType}, routing = ${JSON.stringify(output.routing)}::jsonb,
               finished_at = ${ctx.clock()}
        where id = ${result.id} and status in ('pending', 'processing')
        returning ${settledReturning(result.id, "completed")}`);
      const row = rows[0];
      if (!row) return "already";
      const settledResult = settledResultOf(tx, result.id, "completed", row);
      // Webhooks, workflows: before the hold resolves, as they always ran.
      for (const hook of hooks.onResultSettled) await hook(tx, settledResult);
      // Charges exactly the quoted share, whichever channel served it.
      await postHold(tx, {
        holdId: result.hold_id,
        id: `charge:${result.id}`,
        amount: BigInt(result.cost),
      });
      // The creators of the passes it applied are paid in the same transaction as the charge.
      for (const hook of hooks.onResultCharged) await hook(tx, settledResult);
      return "settled" as const;
    });
    if (settled === "settled") {
      const channel = output.routing.upstream;
      ctx.metrics.generationResult({ model: result.model, status: "completed", channel });
    }
    return settled;
  } catch (err) {
    if (err instanceof AppError && err.code === "hold_already_resolved") return "hold_gone";
    throw err;
  }
}

/** What a settling update returns for the hooks (see settledReturning). */
type SettledRow = {
  generation_id: string;
  generation: Pick<SettledResult, "accountId" | "network" | "webhookUrl" | "hasPasses">;
};

/**
 * The RETURNING part of a settling update: the generation's facts its hooks need (read, not
 * locked: a hook that must lock asks generationFinished), and the event NOTIFY, sent on commit
 * like notifyEvent's.
 */
function settledReturning(resultId: string, status: "completed" | "failed") {
  return sql`r.generation_id,
    (select json_build_object('accountId', g.account_id, 'network', g.network, 'webhookUrl', g.webhook_url,
                              'hasPasses', exists (select 1 from generation_passes gp where gp.generation_id = g.id))
     from generations g where g.id = r.generation_id) as generation,
    pg_notify(${GENERATION_EVENTS_CHANNEL},
              json_build_object('generationId', r.generation_id, 'resultId', ${resultId}::text, 'status', ${status}::text)::text)`;
}

function settledResultOf(
  tx: ServiceContext,
  resultId: string,
  status: SettledResult["status"],
  row: SettledRow,
): SettledResult {
  return {
    resultId,
    generationId: row.generation_id,
    status,
    ...row.generation,
    generationFinished: generationFinished(tx, row.generation_id),
  };
}

/** Delivered (on commit, inside a transaction) to every process listening: see events.ts. */
function notifyEvent(
  db: ServiceContext["db"],
  generationId: string,
  resultId: string,
  status: string,
  progress?: number,
) {
  return db.execute(
    sql`select pg_notify(${GENERATION_EVENTS_CHANNEL}, ${JSON.stringify({ generationId, resultId, status, progress })})`,
  );
}

const PROGRESS_INTERVAL_MS = 100;

/**
 * Records an upstream's progress on the result and tells listeners, at most every 100 ms and
 * only forward; writes are chained so they land in order, and a failed one is only logged.
 */
function progressReporter(ctx: ServiceContext, generationId: string, resultId: string) {
  let last = -1;
  let lastAt = 0;
  let chain: Promise<unknown> = Promise.resolve();
  return (percent: number) => {
    const value = Math.max(0, Math.min(99, Math.floor(percent)));
    const now = Date.now();
    if (value <= last || now - lastAt < PROGRESS_INTERVAL_MS) return;
    last = value;
    lastAt = now;
    chain = chain
      .then(async () => {
        const { rowCount } = await ctx.db.execute(sql`
          update generation_results set progress = ${value}
          where id = ${resultId} and status = 'processing' and coalesce(progress, -1) < ${value}`);
        if (rowCount) await notifyEvent(ctx.db, generationId, resultId, "processing", value);
      })
      .catch((err: unknown) => ctx.logger.warn({ err, resultId }, "progress not recorded"));
  };
}

/** Marks a result failed and refunds its share, once. Safe if the hold already expired. */
export async function failResult(
  ctx: ServiceContext,
  hooks: SettlementHooks,
  resultId: string,
  failure: { code: ResultFailureCode; message: string; routing?: Routing | undefined },
): Promise<boolean> {
  const model = await ctx.db.transaction(async (db) => {
    const tx = { ...ctx, db };
    const { rows } = await db.execute<SettledRow & { hold_id: string; model: string }>(sql`
      update generation_results r set status = 'failed', refunded = cost, error_code = ${failure.code},
             error_message = ${failure.message.slice(0, 500)},
             routing = coalesce(${failure.routing ? JSON.stringify(failure.routing) : null}::jsonb, routing),
             finished_at = ${ctx.clock()}
      where id = ${resultId} and status in ('pending', 'processing')
      returning hold_id, model, ${settledReturning(resultId, "failed")}`);
    const row = rows[0];
    if (!row) return undefined;
    const settledResult = settledResultOf(tx, resultId, "failed", row);
    for (const hook of hooks.onResultSettled) await hook(tx, settledResult);
    try {
      await voidHold(tx, { holdId: row.hold_id, id: `refund:${resultId}` });
    } catch (err) {
      // Voided already by the expiry sweeper: the refund happened there.
      if (
        !(
          err instanceof AppError &&
          err.code === "hold_already_resolved" &&
          err.details?.status !== "posted"
        )
      )
        throw err;
    }
    return row.model;
  });
  if (model === undefined) return false;
  // A caller error names the channel that refused; no channel answered otherwise.
  ctx.metrics.generationResult({ model, status: "failed", channel: failure.routing?.upstream });
  return true;
}

/**
 * Results that can no longer settle by running (the sweeper's cron task): they fail and refund.
 * Either the job that runs them is exhausted (its attempts spent, none of them still running,
 * or gone), or they reached the hard stop: their hold expired (GENERATION_TIMEOUT_SECONDS from
 * submission, retries included) or resolved without them. A result whose job can still run is
 * left to it: a worker that died has its job released to a live one (see domains/workers).
 */
export async function sweepStrandedResults(
  ctx: ServiceContext & { generations: Pick<GenerationRuntime, "settlement"> },
  limit = 200,
): Promise<number> {
  const { rows } = await ctx.db.execute<{ id: string; exhausted: boolean }>(sql`
    select r.id, (h.status = 'pending' and h.expires_at > ${ctx.clock()}) as exhausted
    from generation_results r join ledger_holds h on h.id = r.hold_id
    where r.status in ('pending', 'processing')
      and (h.status <> 'pending' or h.expires_at <= ${ctx.clock()}
           or not exists (select 1 from graphile_worker._private_jobs j
                          where j.key = r.id and (j.attempts < j.max_attempts or j.locked_at is not null)))
    limit ${limit}`);
  let failed = 0;
  for (const { id, exhausted } of rows) {
    const failure: { code: ResultFailureCode; message: string } = exhausted
      ? {
          code: "retries_exhausted",
          message:
            "The generation could not be run after several attempts; its credits were refunded.",
        }
      : {
          code: "timed_out",
          message: "The generation did not finish in time; its credits were refunded.",
        };
    if (await failResult(ctx, ctx.generations.settlement, id, failure)) failed++;
  }
  if (failed) ctx.logger.warn({ failed }, "stranded generation results refunded");
  return failed;
}
