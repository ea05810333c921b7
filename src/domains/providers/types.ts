import type { AspectRatio, MediaType, Resolution } from "../catalog/models.js";
import type { ProviderFailureCode } from "./failures.js";

/** What a provider is asked to make: already validated, priced and routed. */
export interface ProviderTask {
  /** The upstream's own model id for this channel. */
  upstreamModel: string;
  mediaType: MediaType;
  prompt: string;
  /** What to keep out of the output (style passes' negative prompts), where the upstream takes one. */
  negativePrompt?: string | undefined;
  aspectRatio: AspectRatio;
  resolution: Resolution;
  duration?: number | undefined;
  /** Frames a second (video only): the caller's choice or the model's default. */
  fps?: number | undefined;
  seed: number;
  /** Signed URLs of our re-hosted copies of the caller's reference images (never theirs). */
  referenceImageUrls: string[];
}

export interface ProviderOutput {
  bytes: Buffer;
  contentType: string;
}

export interface ChannelEndpoint {
  id: string;
  baseUrl?: string | undefined;
  apiKey?: string | undefined;
}

/**
 * An upstream job that outlives the call which submitted it (a fal request, a Replicate
 * prediction): the adapter reports it once submitted, and a later run given it back polls that
 * job instead of submitting (and paying for) another.
 */
export interface UpstreamJob {
  /** What an earlier run reported through `submitted`, on this channel; the adapter checks its shape. */
  resume: unknown;
  /** Awaited before polling, so a crash after it leaves the job to be resumed. */
  submitted(job: Record<string, unknown>): Promise<void>;
}

/** One upstream API. Each adapter speaks that upstream's real wire format. */
export interface Provider {
  generate(
    task: ProviderTask,
    channel: ChannelEndpoint,
    signal: AbortSignal,
    /** Told 0–100 as the upstream reports it, where it does. */
    onProgress?: (percent: number) => void,
    /** Used by adapters whose upstream keeps jobs by id; the others call again. */
    job?: UpstreamJob,
  ): Promise<ProviderOutput>;
}

/**
 * Why an upstream call failed, as routing needs to know it: `retryable` (5xx, timeouts,
 * connection errors, 429, malformed answers) may be retried and failed over; `channel` (the
 * upstream refused this channel's request: bad key, unknown model id) fails over at once and
 * counts against the channel; `caller` (content policy) ends the result at once and never
 * counts against the channel.
 */
export class ProviderError extends Error {
  constructor(
    readonly kind: "retryable" | "channel" | "caller",
    readonly code: ProviderFailureCode,
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = "ProviderError";
  }
}
