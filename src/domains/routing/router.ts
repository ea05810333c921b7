import { setTimeout as sleep } from "node:timers/promises";
import type { ServiceContext } from "../../context.js";
import type { Network } from "../../lib/network.js";
import type { Attempt, RouteDeps, Routing } from "../../ports.js";
import {
  type Provider,
  ProviderError,
  type ProviderOutput,
  type ProviderTask,
  type UpstreamJob,
} from "../providers/types.js";
import { validateOutput } from "../providers/validate.js";
import { admit, awaitProbe, recordFailure, recordSuccess } from "./breaker.js";
import { type Channel, channelsFor, upstreamModelOf } from "./channels.js";
import { measuredLatencies, noteLatency } from "./latency.js";
import { applyPreferences, type RoutingPreferences, triedChannels } from "./preferences.js";

export type { Attempt, RouteDeps, Routing, RoutingSettings } from "../../ports.js";

/** The upstream job an earlier run of this result submitted, and where to record a new one. */
export interface UpstreamJobRecord {
  recorded: { channel: string; job: Record<string, unknown> } | null;
  record(channel: string, job: Record<string, unknown>): Promise<void>;
}

export type RouteResult =
  | { ok: true; output: ProviderOutput; routing: Routing }
  | { ok: false; error: ProviderError; routing: Routing };

const MAX_RETRY_WAIT_MS = 30_000;

/** The model's measured latency on each channel; none (the default order) if it cannot be read. */
async function latenciesOf(ctx: ServiceContext, model: string, channels: readonly Channel[]) {
  if (channels.length < 2) return undefined;
  try {
    return await measuredLatencies(
      ctx,
      model,
      channels.map((c) => c.id),
    );
  } catch (err) {
    ctx.logger.warn({ err, model }, "channel latencies not read: routing in the default order");
    return undefined;
  }
}

/** Any failure of an upstream call as a ProviderError: aborts are timeouts, the rest connection errors. */
export function classify(err: unknown): ProviderError {
  if (err instanceof ProviderError) return err;
  if (err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError")) {
    return new ProviderError("retryable", "timeout", "The upstream did not answer in time.");
  }
  return new ProviderError(
    "retryable",
    "connection_error",
    err instanceof Error ? err.message : String(err),
  );
}

/**
 * One call to an upstream on a channel: the adapter's work for whatever the door asks (an
 * image, a chat stream's opening, speech). It throws a ProviderError (or anything classify
 * reads) on failure; the routing loop decides on retries and failover.
 */
export type ChannelCall<T> = (
  channel: Channel,
  upstreamModel: string,
  signal: AbortSignal,
  resume: Record<string, unknown> | undefined,
) => Promise<T>;

export type CallResult<T> =
  | { ok: true; value: T; routing: Routing }
  | { ok: false; error: ProviderError; routing: Routing };

/** Runs one model's task over its channels (routeCall, with the image and video adapters). */
export async function route(
  ctx: ServiceContext,
  deps: RouteDeps,
  request: {
    model: string;
    network: Network;
    task: Omit<ProviderTask, "upstreamModel">;
    onProgress?: (percent: number) => void;
    upstreamJob?: UpstreamJobRecord;
    preferences?: RoutingPreferences;
  },
): Promise<RouteResult> {
  const upstreamJob = request.upstreamJob;
  const result = await routeCall(ctx, deps, {
    model: request.model,
    network: request.network,
    preferences: request.preferences,
    resume: upstreamJob?.recorded ?? null,
    serves: (channel) => deps.providers[channel.provider] !== undefined,
    call: async (channel, upstreamModel, signal, resume) => {
      const task: ProviderTask = { ...request.task, upstreamModel };
      const job: UpstreamJob | undefined = upstreamJob && {
        resume,
        submitted: (submitted) => upstreamJob.record(channel.id, submitted),
      };
      return validateOutput(
        task.mediaType,
        await (deps.providers[channel.provider] as Provider).generate(
          task,
          channel,
          signal,
          request.onProgress,
          job,
        ),
      );
    },
  });
  return result.ok
    ? { ok: true, output: result.value, routing: result.routing }
    : { ok: false, error: result.error, routing: result.routing };
}

/**
 * Runs one call over a model's channels: retries a retryable failure with exponential backoff
 * and jitter (honouring Retry-After), then fails over to the next channel. A caller error ends
 * at once and is not held against the channel. Open circuits are skipped; a half-open one gets
 * a single probe. A channel whose probe another result holds is tried last: after every other
 * channel, this call waits for the probe's outcome, so a healthy upstream's traffic is not
 * failed while its probe runs. `serves` narrows the channels to those whose provider can make
 * this kind of call; the caller's `preferences` then filter and order them (the door checked
 * they leave one); `resume` puts first the channel that already holds an upstream job.
 */
export async function routeCall<T>(
  ctx: ServiceContext,
  deps: Omit<RouteDeps, "providers">,
  request: {
    model: string;
    network: Network;
    call: ChannelCall<T>;
    serves?: (channel: Channel) => boolean;
    resume?: { channel: string; job: Record<string, unknown> } | null;
    preferences?: RoutingPreferences | undefined;
  },
): Promise<CallResult<T>> {
  const random = deps.random ?? Math.random;
  const { settings } = deps;
  const attempts: Attempt[] = [];
  const serves = request.serves ?? (() => true);
  const prefs = request.preferences;
  const served = channelsFor(deps.channels, request.model, request.network, random).filter(serves);
  const latencies =
    prefs?.sort === "latency" ? await latenciesOf(ctx, request.model, served) : undefined;
  const ordered = applyPreferences(served, prefs, {
    cost: (c) => c.cost,
    latencyMs: (c) => latencies?.get(c.id),
  });
  // A run after a crash goes back first to the channel that already has its upstream job.
  let resume = request.resume ?? null;
  const resumeAt = ordered.findIndex((c) => c.id === resume?.channel);
  if (resumeAt > 0) ordered.unshift(...ordered.splice(resumeAt, 1));
  const candidates = triedChannels(ordered, prefs);
  const asked = prefs && { preferences: prefs };
  const routingOf = (channel: Channel): Routing => ({
    upstream: channel.id,
    failover: candidates.indexOf(channel) > 0,
    attempts,
    ...asked,
  });
  let lastError = new ProviderError(
    "retryable",
    "model_unavailable",
    `No channel serves ${request.model}.`,
  );

  /** Tries one admitted channel; undefined means go on to the next one. */
  async function tryChannel(
    channel: Channel,
    admission: "healthy" | "closed" | "probe",
  ): Promise<CallResult<T> | undefined> {
    const tries = admission === "probe" ? 1 : settings.maxRetries + 1;
    const upstreamModel = upstreamModelOf(channel, request.model) as string;
    // Whether a success must be written: not when the channel was healthy and stayed so.
    let healthWritten = admission !== "healthy";
    for (let attempt = 0; attempt < tries; attempt++) {
      const started = performance.now();
      let value: T;
      // Only the first try resumes: a retry after a failure submits afresh, as it always did.
      const resumeJob = resume?.channel === channel.id ? resume.job : undefined;
      resume = null;
      try {
        value = await request.call(
          channel,
          upstreamModel,
          AbortSignal.timeout(settings.upstreamTimeoutMs),
          resumeJob,
        );
      } catch (err) {
        const error = classify(err);
        attempts.push({
          channel: channel.id,
          outcome: error.code,
          ms: Math.round(performance.now() - started),
        });
        if (error.kind === "caller") return { ok: false, error, routing: routingOf(channel) };
        lastError = error;
        healthWritten = true;
        const opened = await recordFailure(ctx, channel.id, settings.circuit);
        if (opened || error.kind === "channel" || attempt + 1 >= tries) return undefined;
        const backoff = settings.backoffMs * 2 ** attempt;
        const wait = Math.max(error.retryAfterMs ?? 0, backoff / 2 + random() * (backoff / 2));
        // An upstream asking for a long pause is better left for the next channel.
        if (wait > MAX_RETRY_WAIT_MS) return undefined;
        await sleep(wait);
        continue;
      }
      const ms = performance.now() - started;
      attempts.push({ channel: channel.id, outcome: "ok", ms: Math.round(ms) });
      // The upstream answered and billed us: failing to note its health must neither count
      // against the channel nor call it again. A probe not recorded lapses after its time limit.
      // A channel healthy at admission costs no write (a failure counted meanwhile by another
      // call is cleared by the next success that saw it).
      noteLatency(ctx, deps.channels, { channel: channel.id, model: request.model, ms });
      if (healthWritten) {
        try {
          await recordSuccess(ctx, channel.id);
        } catch (err) {
          ctx.logger.warn({ err, channel: channel.id }, "channel success not recorded");
        }
      }
      return { ok: true, value, routing: routingOf(channel) };
    }
    return undefined;
  }

  const probing: Channel[] = [];
  for (const channel of candidates) {
    const admission = await admit(ctx, channel.id, settings.circuit);
    if (admission === "open" || admission === "probing") {
      attempts.push({
        channel: channel.id,
        outcome: admission === "open" ? "circuit_open" : "probe_in_flight",
        ms: 0,
      });
      if (admission === "probing") probing.push(channel);
      continue;
    }
    const result = await tryChannel(channel, admission);
    if (result) return result;
  }
  for (const channel of probing) {
    const started = performance.now();
    const admission = await awaitProbe(ctx, channel.id, settings.circuit);
    if (admission === "open") {
      attempts.push({
        channel: channel.id,
        outcome: "circuit_open",
        ms: Math.round(performance.now() - started),
      });
      continue;
    }
    const result = await tryChannel(channel, admission);
    if (result) return result;
  }
  return {
    ok: false,
    error: lastError,
    routing: {
      upstream: null,
      failover: candidates.length > 1 && attempts.some((a) => a.channel !== candidates[0]?.id),
      attempts,
      ...asked,
    },
  };
}
