import type { ZodError } from "zod";
import { creditsToJson, formatCredits } from "./lib/credits.js";

/**
 * The one error type of the service and the table of its codes. Codes are snake_case and
 * stable (clients branch on them); messages are for people. The HTTP handler, and later the
 * OpenAPI document and MCP tools, read the status from this table.
 */
export const errorStatus = {
  invalid_request: 400,
  invalid_json: 400,
  invalid_siwe_message: 400,
  invalid_model: 400,
  unsafe_url: 400,
  invalid_image: 400,
  invalid_reference_image: 400,
  model_media_mismatch: 400,
  audio_model_not_generative: 400,
  duplicate_model: 400,
  too_many_models: 400,
  prompt_too_long: 400,
  invalid_resolution: 400,
  invalid_aspect_ratio: 400,
  duration_required: 400,
  invalid_duration: 400,
  invalid_fps: 400,
  pass_not_found: 400,
  template_not_found: 400,
  pass_archived: 400,
  pass_media_mismatch: 400,
  invalid_template: 400,
  missing_template_variable: 400,
  unknown_template_variable: 400,
  invalid_template_variable: 400,
  duplicate_step_id: 400,
  unknown_step_reference: 400,
  workflow_cycle: 400,
  step_reference_not_image: 400,
  too_many_reference_images: 400,
  context_length_exceeded: 400,
  unknown_channel: 400,
  no_channel_left: 400,
  invalid_voice: 400,
  invalid_audio_format: 400,
  invalid_audio: 400,
  idempotency_key_required: 400,
  insufficient_credits: 402,
  key_limit_exceeded: 402,
  payment_required: 402,
  missing_api_key: 401,
  invalid_api_key: 401,
  invalid_session: 401,
  invalid_signature: 401,
  invalid_nonce: 401,
  network_mismatch: 403,
  limited_key_forbidden: 403,
  not_creator: 403,
  not_found: 404,
  output_expired: 410,
  api_key_limit_reached: 409,
  idempotency_conflict: 409,
  hold_already_resolved: 409,
  reservation_closed: 409,
  idempotency_key_in_flight: 409,
  payout_wallet_missing: 409,
  payment_in_flight: 409,
  method_not_allowed: 405,
  payload_too_large: 413,
  request_header_too_large: 431,
  rate_limited: 429,
  too_many_in_flight: 429,
  idempotency_key_reused: 422,
  model_unavailable: 422,
  payout_below_minimum: 422,
  insufficient_earnings: 422,
  internal_error: 500,
  generation_failed: 502,
  completion_failed: 502,
  payout_failed: 502,
  not_ready: 503,
  payments_unavailable: 503,
  payouts_unavailable: 503,
  service_unavailable: 503,
} as const satisfies Record<string, number>;

export type ErrorCode = keyof typeof errorStatus;

export class AppError extends Error {
  readonly status: number;

  /** Response headers the error carries (an x402 402's PAYMENT-REQUIRED). */
  readonly headers: Record<string, string>;

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
    options?: { cause?: unknown; headers?: Record<string, string> },
  ) {
    super(message, options);
    this.name = "AppError";
    this.status = errorStatus[code];
    this.headers = options?.headers ?? {};
  }
}

/**
 * A request schema's refusal, as every transport gives it (HTTP, MCP, a workflow step): the first
 * issue in the message, every issue under `issues`.
 */
export function appErrorFromZod(err: ZodError): AppError {
  const issues = err.issues.map((i) => ({ path: i.path.join("."), message: i.message }));
  const first = issues[0];
  // Messages are sentences: one full stop, whether or not the schema's own message has one.
  const message = first
    ? `Invalid request: ${first.path ? `${first.path}: ` : ""}${first.message.replace(/[.!?]+$/, "")}.`
    : "Invalid request.";
  return new AppError("invalid_request", message, { issues });
}

/** `need` and `have` in ledger units; the message and details say credits. */
export const insufficientCredits = (need: bigint, have: bigint) =>
  new AppError(
    "insufficient_credits",
    `Insufficient credits. Need ${formatCredits(need)}, have ${formatCredits(have)}.`,
    { need: creditsToJson(need), have: creditsToJson(have) },
  );

/**
 * An API key's spend limit refusing a hold, from the JSON the ledger's trigger raises (PFKEY,
 * drizzle/0018_key_limits.sql): which limit, its size and what the key has spent, in ledger units.
 */
export function keyLimitExceeded(raised: string): AppError {
  const { limit, max, spent, amount } = JSON.parse(raised) as {
    limit: "total" | "perDay";
    max: number | string;
    spent: number | string;
    amount: number | string;
  };
  const [maxU, spentU, needU] = [BigInt(max), BigInt(spent), BigInt(amount)];
  const remaining = maxU > spentU ? maxU - spentU : 0n;
  const which = limit === "total" ? "total" : "daily (UTC)";
  return new AppError(
    "key_limit_exceeded",
    `This API key's ${which} spend limit is ${formatCredits(maxU)} credits: it has spent ${formatCredits(spentU)}, ${formatCredits(remaining)} remain, and this request needs ${formatCredits(needU)}.`,
    {
      limit,
      max: creditsToJson(maxU),
      spent: creditsToJson(spentU),
      remaining: creditsToJson(remaining),
      need: creditsToJson(needU),
    },
  );
}

export const notFound = (what: string) => new AppError("not_found", `${what} not found.`);

/**
 * A part's refusal named by its place in a whole (a batch's item, a workflow's step): the
 * message starts with `label`, and the field moves under `fieldPrefix`.
 */
export function withinPart(err: AppError, label: string, fieldPrefix: string): AppError {
  const field = typeof err.details?.field === "string" ? `.${err.details.field}` : "";
  return new AppError(
    err.code,
    `${label}: ${err.message}`,
    { ...err.details, field: `${fieldPrefix}${field}` },
    { cause: err, headers: err.headers },
  );
}
