import { z } from "zod";
import { RESULT_FAILURE_CODES } from "../../domains/generations/failures.js";
import { PAYMENT_REFUSAL_REASONS } from "../../domains/payments/reasons.js";
import { upstreamStatusCode } from "../../domains/providers/failures.js";
import { type ErrorCode, errorStatus } from "../../errors.js";
import { creditsJson } from "../../lib/credits.js";
import {
  type Credential,
  credentialsOf,
  type RateLimitBucket,
  type RouteContract,
} from "./contract.js";

/**
 * The error side of the document, built from the one code table (`errorStatus`): which codes a
 * route can answer, grouped by the status the table gives them, with the fields some codes
 * add beside `code`, `message` and `requestId`. A code added to the table without an example
 * here fails the typecheck, so the document cannot fall behind it.
 */

/**
 * What every route can answer: headers the HTTP parser refuses, a body the JSON parser
 * refuses, our own failure, and a database outage (503 with Retry-After).
 */
const EVERY_ROUTE: ErrorCode[] = [
  "invalid_request",
  "invalid_json",
  "payload_too_large",
  "request_header_too_large",
  "internal_error",
  "service_unavailable",
];

const BY_CREDENTIAL: Record<Credential, ErrorCode[]> = {
  apiKey: ["missing_api_key", "invalid_api_key"],
  session: ["missing_api_key", "invalid_api_key", "invalid_session"],
  generationToken: ["missing_api_key", "invalid_api_key"],
  x402: ["payment_required", "payment_in_flight", "payments_unavailable"],
  signedUrl: ["not_found"],
  metricsToken: ["missing_api_key", "invalid_api_key"],
  unlessConfigured: [],
};

const BY_BUCKET: Record<RateLimitBucket, ErrorCode[]> = {
  generate: ["rate_limited", "too_many_in_flight"],
  batch: ["rate_limited", "too_many_in_flight"],
  poll: ["rate_limited"],
};

const IDEMPOTENCY: ErrorCode[] = ["idempotency_key_in_flight", "idempotency_key_reused"];
const REQUIRED_IDEMPOTENCY: ErrorCode[] = ["idempotency_key_required", "idempotency_key_reused"];

/** Every code the route can answer, in the table's order. */
export function errorCodesOf(route: RouteContract): ErrorCode[] {
  const codes = new Set<ErrorCode>([
    ...EVERY_ROUTE,
    ...credentialsOf(route).flatMap((credential) => BY_CREDENTIAL[credential]),
    ...(route.idempotent === "required"
      ? REQUIRED_IDEMPOTENCY
      : route.idempotent
        ? IDEMPOTENCY
        : []),
    ...(route.rateLimit ? BY_BUCKET[route.rateLimit] : []),
    ...route.errors,
  ]);
  return (Object.keys(errorStatus) as ErrorCode[]).filter((code) => codes.has(code));
}

/** The codes grouped by their HTTP status. */
export function errorsByStatus(codes: ErrorCode[]): Map<number, ErrorCode[]> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of codes) {
    const status = errorStatus[code];
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  return byStatus;
}

const field = { field: z.string().describe("The request field at fault.") };

/** The fields a code adds to the error object (the service's `AppError` details). */
const details: Partial<Record<ErrorCode, z.ZodRawShape>> = {
  invalid_request: {
    issues: z
      .array(z.object({ path: z.string(), message: z.string() }))
      .optional()
      .describe("Each field that failed validation, when the body or query did."),
  },
  invalid_model: field,
  model_media_mismatch: field,
  audio_model_not_generative: field,
  duplicate_model: field,
  too_many_models: field,
  prompt_too_long: {
    ...field,
    limit: z.number().int().describe("The most characters the prompt may have."),
    model: z
      .string()
      .optional()
      .describe("The model whose own limit it exceeds, when that is lower than 10,000."),
  },
  invalid_resolution: field,
  invalid_aspect_ratio: field,
  duration_required: field,
  invalid_duration: field,
  invalid_fps: field,
  pass_not_found: field,
  template_not_found: field,
  pass_archived: field,
  pass_media_mismatch: field,
  invalid_template: field,
  missing_template_variable: {
    ...field,
    variable: z.string().describe("The template variable at fault."),
  },
  unknown_template_variable: {
    ...field,
    variable: z.string().describe("The template variable at fault."),
  },
  invalid_template_variable: {
    ...field,
    variable: z.string().describe("The template variable at fault."),
  },
  duplicate_step_id: field,
  unknown_step_reference: field,
  workflow_cycle: field,
  step_reference_not_image: field,
  too_many_reference_images: field,
  model_unavailable: field,
  unknown_channel: {
    ...field,
    channels: z
      .array(z.string())
      .describe("The named channels that serve none of the models here."),
    served: z.array(z.string()).describe("The channels that do: what routing may name."),
  },
  no_channel_left: {
    ...field,
    model: z.string().describe("The model the preferences leave no channel for."),
  },
  invalid_reference_image: field,
  unsafe_url: { reason: z.string().describe("Why the URL or its answer was refused.") },
  invalid_image: { reason: z.enum(["type", "pixels"]).optional() },
  insufficient_credits: {
    need: creditsJson("Credits the request needs."),
    have: creditsJson("Credits available."),
    affordableTokens: z
      .number()
      .int()
      .optional()
      .describe("Chat only: the longest reply (max_tokens) the balance pays for, 0 if none."),
    promptTokens: z.number().int().optional().describe("Chat only: the prompt's tokens."),
  },
  key_limit_exceeded: {
    limit: z
      .enum(["total", "perDay"])
      .describe("The limit this request would pass: the key's total, or its UTC day's."),
    max: creditsJson("That limit, in credits."),
    spent: creditsJson(
      "What the key has spent against it: settled charges plus open holds (today's, for perDay).",
    ),
    remaining: creditsJson("The limit less what was spent."),
    need: creditsJson("Credits this request would hold."),
  },
  invalid_voice: { ...field, voices: z.array(z.string()).describe("The model's voices.") },
  invalid_audio_format: {
    ...field,
    formats: z.array(z.string()).describe("The formats the model answers."),
  },
  invalid_audio: {
    ...field,
    reason: z.enum(["unreadable", "empty", "too_long"]),
    max: z.number().int().optional().describe("too_long: the model's longest file, in seconds."),
  },
  context_length_exceeded: {
    ...field,
    promptTokens: z.number().int(),
    contextLength: z.number().int(),
  },
  completion_failed: {
    reason: z
      .union([z.enum(RESULT_FAILURE_CODES), upstreamStatusCode])
      .describe("The last upstream failure's code."),
  },
  payment_required: {
    reason: z
      .union([z.enum(PAYMENT_REFUSAL_REASONS), z.string()])
      .describe(
        "Why no payment was accepted: payment_required when none was sent. Ours are the listed codes; a facilitator's own refusal passes through as it gave it (say invalid_exact_evm_insufficient_balance), so other codes can appear.",
      ),
    x402: z
      .looseObject({ x402Version: z.literal(2), accepts: z.array(z.unknown()) })
      .optional()
      .describe("The x402 PaymentRequired object, as in the PAYMENT-REQUIRED header."),
  },
  payments_unavailable: { network: z.enum(["live", "test"]) },
  payouts_unavailable: { network: z.enum(["live", "test"]) },
  payout_below_minimum: {
    minimum: creditsJson("The smallest payout, in credits."),
    requested: creditsJson("The credits asked for, or all available earnings."),
  },
  insufficient_earnings: {
    need: creditsJson("Credits the payout asks for."),
    have: creditsJson("Earnings available to pay out."),
  },
  payout_failed: {
    payoutId: z.string().describe("po_…: the failed payout, as GET /v1/profile/payouts lists it."),
    reason: z.string().describe("Why the transfer could not be made."),
  },
  rate_limited: {
    bucket: z.enum(["generate", "batch", "poll"]),
    tier: z.enum(["free", "creator", "pro"]),
    limit: z.number().int().describe("Requests per minute in this bucket on this tier."),
    retryAfterSeconds: z.number().int(),
  },
  too_many_in_flight: {
    inFlight: z.number().int().describe("Generations in flight if this one were accepted."),
    max: z.number().int(),
  },
  generation_failed: {
    generationIds: z.array(z.string()),
    reason: z
      .union([z.enum(RESULT_FAILURE_CODES), upstreamStatusCode])
      .nullable()
      .describe("The failed result's error code."),
  },
};

/** One example message per code: what a person reads. */
export const errorExamples: Record<ErrorCode, string> = {
  invalid_request: "Invalid request: models: at least one model is required.",
  invalid_json: "The request body is not valid JSON.",
  invalid_siwe_message: "The message's domain is not localhost:3000.",
  invalid_model: "Unknown model gpt-image-9. GET /v1/models lists them.",
  unsafe_url: "Refused to fetch http://10.0.0.1/cat.png: a private address.",
  invalid_image: "The file is not a PNG, JPEG or WebP image.",
  invalid_reference_image: "Upload img_… does not exist on this account and network.",
  model_media_mismatch: "veo-3.1 makes videos, not images.",
  audio_model_not_generative:
    "tts-1 is a speech model, used through POST /v1/audio/speech; /v1/generate makes music and sound effects.",
  duplicate_model: "Model gpt-image-2 is listed twice.",
  too_many_models: "At most 6 models per generation; got 7.",
  prompt_too_long: "The prompt has 3,100 characters; kling-v3 takes at most 2,500.",
  invalid_resolution: "gpt-image-2 offers 1K, 2K, not 4K.",
  invalid_aspect_ratio: "Aspect ratio 5:4 is not offered; use one of 1:1, 16:9, ….",
  duration_required: "A video generation needs a duration in seconds.",
  invalid_duration: "sora-2-preview offers 4, 8, 12 seconds, not 5.",
  invalid_fps: "kling-v3 renders at 24, 30 fps, not 60.",
  pass_not_found: "Style pass pass_… does not exist.",
  template_not_found: "Template tpl_… does not exist.",
  pass_archived: "Style pass pass_… is archived and can no longer be applied.",
  pass_media_mismatch: "Style pass pass_… styles videos, not images.",
  invalid_template: "The text uses {{subject}}, which variables does not declare.",
  missing_template_variable: "Template variable subject has no value and no default.",
  unknown_template_variable: "Template tpl_… has no variable named mood.",
  invalid_template_variable: "Template variable mood must be one of calm, stormy.",
  not_creator: "Only the creator of pass_… can change it.",
  duplicate_step_id: "Step id base is used twice; each step needs its own id.",
  unknown_step_reference: "Step paint references step sketch, which is not in this workflow.",
  workflow_cycle: "Steps reference each other in a cycle: a → b → a.",
  step_reference_not_image: "Step paint references step clip, which makes videos, not images.",
  too_many_reference_images: "Step paint would get 9 reference images; the limit is 8.",
  idempotency_key_required: "This request needs an Idempotency-Key header.",
  insufficient_credits: "Insufficient credits. Need 24, have 12.",
  key_limit_exceeded:
    "This API key's daily (UTC) spend limit is 100 credits: it has spent 96, 4 remain, and this request needs 8.",
  payment_required: "Payment required: a generation with gpt-image-2: 4 credits. Pay with x402.",
  missing_api_key: "Missing API key: send it as `Authorization: Bearer sk_test_…` (or sk_live_…).",
  invalid_api_key: "Unknown or revoked API key.",
  invalid_session: "Unknown or expired session; sign in again.",
  invalid_signature: "The signature does not match the message's address.",
  invalid_nonce: "The nonce is unknown, used or expired.",
  network_mismatch: "A test key cannot manage live keys.",
  limited_key_forbidden:
    "A key with a spend limit cannot create keys or change limits: use a wallet session or a key without limits.",
  not_found: "Generation not found.",
  output_expired: "The output was deleted after the retention period of 30 days.",
  api_key_limit_reached: "An account can have at most 3 active API keys.",
  idempotency_conflict: "Transfer … already exists with different details.",
  hold_already_resolved: "Hold … is already posted.",
  reservation_closed: "Reservation res_… is settled.",
  idempotency_key_in_flight: "A request with that Idempotency-Key is still in progress.",
  payout_wallet_missing: "Account acc_… has no wallet address to pay out to.",
  payment_in_flight: "This payment authorization is already being settled by another request.",
  method_not_allowed: "The MCP endpoint is stateless: POST only.",
  payload_too_large: "The request body is too large.",
  request_header_too_large:
    "The request's headers are too large (more than 16 KB together); send shorter ones.",
  rate_limited: "Rate limit reached: 10 generate requests per minute on the free tier.",
  too_many_in_flight: "Too many generations in flight: at most 20 may wait or run at once.",
  idempotency_key_reused: "That Idempotency-Key was used with a different request.",
  model_unavailable: "gpt-image-2 is not available on live right now.",
  unknown_channel:
    "routing names fal-eu, which serves none of these models on live; they are served by openai-main, fal-us.",
  no_channel_left:
    "routing leaves no channel for gpt-image-2: only and ignore exclude all of them.",
  payout_below_minimum: "The minimum payout is 1000 credits; this one is 250.",
  insufficient_earnings: "Insufficient earnings. Need 5000, have 1200.",
  internal_error: "Something went wrong on our side; it has been logged.",
  generation_failed: "The generation failed; its credits were refunded.",
  completion_failed:
    "Every channel of gpt-5.5 failed before the reply began; its credits were refunded.",
  invalid_voice: "tts-1 has no voice darth. Voices: alloy, ash, coral, ….",
  invalid_audio_format: "eleven-v3 does not answer opus. Formats: mp3, wav, pcm.",
  invalid_audio: "The file's length cannot be read: send a WAV or MP3 file.",
  context_length_exceeded:
    "The messages are 210,000 tokens; claude-sonnet-5 reads at most 200,000 with its reply.",
  payout_failed:
    "The payout's USDC transfer failed (the treasury cannot cover it); no USDC moved and the earnings are available again.",
  not_ready: "The database is unreachable or not migrated.",
  payments_unavailable: "Payments on Base Sepolia are unavailable: the facilitator is down.",
  payouts_unavailable:
    "Payouts on Base are unavailable: this deployment has no treasury key there.",
  service_unavailable:
    "The service is briefly unavailable: its database cannot be reached. Try again in a few seconds.",
};

const NO_DETAILS: z.ZodRawShape = {};

const base = {
  message: z.string().describe("For people; may change. Branch on `code`."),
  requestId: z.string().describe("The request's id, as in the X-Request-Id header."),
};

/**
 * The body of an error answer with one of `codes` (one status): `{ error: { code, message,
 * requestId, ...details } }`, one variant per set of added fields, naming the codes that add
 * them (and one for the codes that add none).
 */
export function errorBodySchema(codes: ErrorCode[]): z.ZodType {
  const byShape = new Map<z.ZodRawShape, ErrorCode[]>();
  for (const code of codes) {
    const shape = details[code] ?? NO_DETAILS;
    byShape.set(shape, [...(byShape.get(shape) ?? []), code]);
  }
  const variants = [...byShape].map(([shape, [first, ...rest]]) =>
    z.looseObject({
      code: rest.length ? z.enum([first as ErrorCode, ...rest]) : z.literal(first as ErrorCode),
      ...base,
      ...shape,
    }),
  );
  const [first, ...rest] = variants;
  if (!first) throw new Error("an error response without codes");
  return z.object({ error: rest.length ? z.union([first, ...rest]) : first });
}

export const errorExample = (code: ErrorCode) => ({
  error: { code, message: errorExamples[code], requestId: "req_01kaxyz0000000000000000000" },
});
