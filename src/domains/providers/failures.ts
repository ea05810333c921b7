import { z } from "zod";

/**
 * Why an upstream call failed: the `code` of every ProviderError, stable snake_case, stored on
 * a failed result and named in its routing attempts. An HTTP status the upstream answered with
 * that has no code of its own is `upstream_<status>` (upstream_503, upstream_401).
 */
export const PROVIDER_FAILURE_CODES = [
  /** The upstream did not answer within UPSTREAM_TIMEOUT_MS. */
  "timeout",
  /** The connection failed (refused, reset, DNS). */
  "connection_error",
  /** The upstream answered 429. */
  "rate_limited",
  /** The upstream refused the prompt under its content policy: the caller's own error. */
  "content_policy",
  /** The upstream's answer or output was not what it should be. */
  "malformed_response",
  /** The upstream reported its job failed. */
  "upstream_failed",
  /** The channel cannot make this medium. */
  "unsupported_media",
  /** A video request without a duration. */
  "invalid_duration",
  /** No channel serves the model (none configured, or every circuit open). */
  "model_unavailable",
] as const;

export type UpstreamStatusCode = `upstream_${number}`;
export type ProviderFailureCode = (typeof PROVIDER_FAILURE_CODES)[number] | UpstreamStatusCode;

/** `upstream_<status>`, for the OpenAPI document. */
export const upstreamStatusCode = z
  .templateLiteral(["upstream_", z.number().int()])
  .describe("upstream_<status>: the HTTP status the upstream answered with (upstream_503).");
