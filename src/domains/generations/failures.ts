import { PROVIDER_FAILURE_CODES, type ProviderFailureCode } from "../providers/failures.js";

/**
 * What a failed result's `error.code` can be: the upstream's failure (see providers/failures.ts),
 * or one the generation itself decided.
 */
export const GENERATION_FAILURE_CODES = [
  /** The result outlasted GENERATION_TIMEOUT_SECONDS: its hold expired or resolved first. */
  "timed_out",
  /** Its job spent every attempt without settling it. */
  "retries_exhausted",
] as const;

export const RESULT_FAILURE_CODES = [...PROVIDER_FAILURE_CODES, ...GENERATION_FAILURE_CODES];

export type ResultFailureCode = ProviderFailureCode | (typeof GENERATION_FAILURE_CODES)[number];
