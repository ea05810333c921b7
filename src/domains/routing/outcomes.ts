import { PROVIDER_FAILURE_CODES, type ProviderFailureCode } from "../providers/failures.js";

/** A channel passed over without a call. */
export const SKIPPED_OUTCOMES = [
  /** Its circuit is open. */
  "circuit_open",
  /** Another result holds its half-open probe: tried last, once that probe ends. */
  "probe_in_flight",
] as const;

/** What one routing attempt came to: ok, the failure's code, or why the channel was skipped. */
export const ATTEMPT_OUTCOMES = ["ok", ...PROVIDER_FAILURE_CODES, ...SKIPPED_OUTCOMES] as const;

export type AttemptOutcome = "ok" | ProviderFailureCode | (typeof SKIPPED_OUTCOMES)[number];
