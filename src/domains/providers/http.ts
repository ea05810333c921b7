import { setTimeout as sleep } from "node:timers/promises";
import type { z } from "zod";
import { ProviderError, type ProviderOutput, type ProviderTask } from "./types.js";

/** Shared wire handling for HTTP upstreams: status codes to retryable or caller errors. */

/** Only an explicit refusal of the prompt is the caller's own error. */
export const CONTENT_POLICY =
  /content[_ ]policy|content_policy_violation|safety system|nsfw|moderation_blocked/i;

/** The upstream refused the prompt: the caller's fault, never counted against the channel. */
export const contentPolicyRefusal = () =>
  new ProviderError(
    "caller",
    "content_policy",
    "The upstream refused the prompt under its content policy.",
  );

/** Headers of a JSON request to an upstream that takes its key in `authorization`. */
export const jsonHeaders = (authorization: string) => ({
  "content-type": "application/json",
  authorization,
});

/**
 * The input fields fal and Replicate both take under the same names, in wire order; each adds
 * its own name for the reference images after them.
 */
export function commonInput(task: ProviderTask) {
  return {
    prompt: task.prompt,
    aspect_ratio: task.aspectRatio,
    seed: task.seed,
    ...(task.negativePrompt ? { negative_prompt: task.negativePrompt } : {}),
    ...(task.duration ? { duration: task.duration } : {}),
    ...(task.fps ? { fps: task.fps } : {}),
  };
}

function retryAfterMs(res: Response): number | undefined {
  const header = res.headers.get("retry-after");
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

export async function failure(res: Response): Promise<ProviderError> {
  const text = await res.text().catch(() => "");
  const detail = text.slice(0, 300);
  if (res.status === 429) {
    return new ProviderError(
      "retryable",
      "rate_limited",
      `Upstream rate limit: ${detail}`,
      retryAfterMs(res),
    );
  }
  if (res.status >= 500) {
    return new ProviderError(
      "retryable",
      `upstream_${res.status}`,
      `Upstream error ${res.status}: ${detail}`,
      retryAfterMs(res),
    );
  }
  if (CONTENT_POLICY.test(text)) return contentPolicyRefusal();
  // 400 and 422 refuse what the request carried (an image the upstream cannot fetch, a prompt
  // over its context, a file it cannot read): the caller's own, never held against the channel,
  // or anyone could open a model's circuits with refused requests that cost them nothing.
  if (res.status === 400 || res.status === 422) {
    return new ProviderError(
      "caller",
      `upstream_${res.status}`,
      `Upstream refused the request (${res.status}): ${detail}`,
    );
  }
  // Any other 4xx (a bad key, an unknown model id, an option this upstream lacks) says this
  // channel is misconfigured. Another channel may serve.
  return new ProviderError(
    "channel",
    `upstream_${res.status}`,
    `Upstream answered ${res.status}: ${detail}`,
  );
}

export async function requestJson(
  url: string,
  init: RequestInit,
  signal: AbortSignal,
): Promise<unknown> {
  const res = await fetch(url, { ...init, signal });
  if (!res.ok) throw await failure(res);
  try {
    return await res.json();
  } catch {
    throw new ProviderError(
      "retryable",
      "malformed_response",
      "The upstream's answer was not valid JSON.",
    );
  }
}

export const malformed = (what: string) =>
  new ProviderError("retryable", "malformed_response", `The upstream's answer lacked ${what}.`);

/** An upstream answer in the shape `schema` wants, or a retryable malformed-answer error. */
export function parseAnswer<T>(schema: z.ZodType<T>, answer: unknown, what: string): T {
  const parsed = schema.safeParse(answer);
  if (!parsed.success) throw malformed(what);
  return parsed.data;
}

/** Fetches a finished output from the upstream's own URL (never a user's URL). */
export async function download(
  url: string,
  signal: AbortSignal,
  headers: Record<string, string> = {},
): Promise<ProviderOutput> {
  const res = await fetch(url, { headers, signal });
  if (!res.ok) throw await failure(res);
  const bytes = Buffer.from(await res.arrayBuffer());
  if (bytes.length === 0) throw malformed("output bytes");
  return {
    bytes,
    contentType: res.headers.get("content-type")?.split(";")[0] ?? "application/octet-stream",
  };
}

/**
 * Polls until `check` returns a value; the signal bounds the whole wait. The interval starts
 * at 250 ms and grows by half each time up to 1 s: a job done in seconds is seen within a
 * fraction of that, and a thousand jobs of a minute each cost a thousand polls a second, not
 * four thousand.
 */
export async function poll<T>(
  check: () => Promise<T | undefined>,
  signal: AbortSignal,
  intervalMs = { first: 250, max: 1_000 },
): Promise<T> {
  for (let wait = intervalMs.first; ; wait = Math.min(intervalMs.max, wait * 1.5)) {
    const value = await check();
    if (value !== undefined) return value;
    await sleep(wait, undefined, { signal });
  }
}
