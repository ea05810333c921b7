import { z } from "zod";
import type { ErrorCode } from "../../errors.js";
import { pageSchema } from "../../http/cursor.js";
import { describeFields, presignedRedirect, route } from "../../http/openapi/contract.js";
import { creditsJson } from "../../lib/credits.js";
import { paymentPending, paymentReceipt } from "../payments/contract.js";
import { upstreamStatusCode } from "../providers/failures.js";
import { ATTEMPT_OUTCOMES } from "../routing/outcomes.js";
import { routingPreferences } from "../routing/preferences.js";
import { RESULT_FAILURE_CODES } from "./failures.js";
import {
  creativeFields,
  generateRequest,
  generateRequestFields,
  MAX_REFERENCE_IMAGES,
  seedSchema,
} from "./request.js";
import { MAX_BATCH_SIZE } from "./submit.js";

/**
 * Video jobs: one model, one video, as a job to create and poll. The same generations, ledger,
 * routing and webhooks as /v1/generate; a job's id is its generation id.
 */
export const videoJobRequest = z
  .object({
    model: z.string().min(1).max(100),
    prompt: z.string().optional(),
    duration: z.number().int().positive().optional(),
    fps: z.number().int().positive().optional(),
    resolution: z.string().optional(),
    aspectRatio: z.string().optional(),
    referenceImageUrls: z.array(z.string()).max(MAX_REFERENCE_IMAGES).optional(),
    webhookUrl: z.string().optional(),
    seed: seedSchema,
    ...creativeFields,
    stylePassIds: creativeFields.stylePassIds.optional(),
    routing: routingPreferences.optional(),
  })
  .strict();

/**
 * OpenAI-compatible image generation: the OpenAI Images request and response shapes over the
 * same generations, ledger and routing as /v1/generate, so OpenAI's own SDK works unchanged.
 * It waits for the images (IMAGES_WAIT_MS) and answers 202 with the generation id past that.
 * Fields OpenAI defines that have no meaning here (quality, style, user…) are accepted and
 * ignored; Polyforge's own fields are the other doors'; anything else is refused, as on every
 * other route, so a misspelt or unsupported field is never dropped silently.
 */
const ignoredOpenAiField = z.union([z.string().max(200), z.number(), z.boolean()]).optional();

export const imagesRequest = z.strictObject({
  model: z.string().min(1).max(100),
  prompt: z.string().min(1),
  n: z.number().int().min(1).max(4).default(1),
  size: z
    .string()
    .regex(/^(auto|\d{2,5}x\d{2,5})$/, "size is WIDTHxHEIGHT, such as 1024x1024, or auto")
    .default("auto"),
  response_format: z.enum(["url", "b64_json"]).default("url"),
  steps: z.number().int().min(1).max(200).optional(),
  seed: seedSchema,
  // OpenAI defines these; the upstream's own defaults decide them here.
  quality: ignoredOpenAiField,
  style: ignoredOpenAiField,
  user: ignoredOpenAiField,
  background: ignoredOpenAiField,
  moderation: ignoredOpenAiField,
  output_format: ignoredOpenAiField,
  output_compression: ignoredOpenAiField,
  // The answer is never streamed: asking for a stream is refused rather than ignored.
  stream: z
    .literal(false, "streaming is not supported: send stream false or leave it out")
    .optional(),
  partial_images: z.literal(0, "partial images need streaming, which is not supported").optional(),
  // Polyforge's own fields beside OpenAI's, as the other doors take them.
  ...creativeFields,
  stylePassIds: creativeFields.stylePassIds.optional(),
  webhookUrl: generateRequestFields.shape.webhookUrl,
  reservationId: generateRequestFields.shape.reservationId,
  routing: generateRequestFields.shape.routing,
});

export const generationId = z.string().regex(/^gen_[0-9a-z]{26}$/, "not a generation id");

export const statusQuery = z
  .object({
    ids: z
      .string({ error: "give 1–50 generation ids, comma-separated" })
      .min(1, "give 1–50 generation ids, comma-separated")
      .transform((s) => [
        ...new Set(
          s
            .split(",")
            .map((id) => id.trim())
            .filter(Boolean),
        ),
      ])
      .pipe(z.array(z.string().min(1).max(64)).min(1, "at least one id").max(50, "at most 50 ids")),
  })
  .strict();

/** POST /v1/generate/batch: up to 20 bodies of POST /v1/generate. */
export const batchRequest = z
  .object({
    requests: z
      .array(generateRequest)
      .min(1, "at least one request")
      .max(MAX_BATCH_SIZE, `at most ${MAX_BATCH_SIZE} requests`),
  })
  .strict();

export const historyQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(100).default(20),
    cursor: z.string().max(200).optional(),
    mediaType: z.enum(["image", "video", "audio"]).optional(),
    status: z.enum(["pending", "processing", "completed", "failed"]).optional(),
    model: z.string().min(1).max(100).optional(),
    from: z.iso.datetime({ offset: true }).optional(),
    to: z.iso.datetime({ offset: true }).optional(),
  })
  .strict();

export const downloadQuery = z
  .object({
    id: generationId,
    model: z.string().min(1).max(100),
    expires: z.string().optional(),
    signature: z.string().optional(),
  })
  .strict();

export const jobParams = z.object({ id: generationId });

export const eventsParams = z.object({ id: generationId });

/** What the generation routes answer, and their entries in the OpenAPI document. */

const credits = creditsJson();
const timestamp = z.iso.datetime();

export const routing = z
  .object({
    upstream: z.string().nullable().describe("The channel that served the result, if any did."),
    failover: z
      .boolean()
      .describe(
        "Whether a channel other than the first one was tried (the first as the request's routing preferences order them).",
      ),
    attempts: z.array(
      z.object({
        channel: z.string(),
        outcome: z
          .union([z.enum(ATTEMPT_OUTCOMES), upstreamStatusCode])
          .describe(
            "ok, or the failure's code (timeout, upstream_5xx, …). circuit_open: skipped, its circuit open. probe_in_flight: passed over while another result probes it, and tried last once that probe ends.",
          ),
        ms: z.number(),
      }),
    ),
    preferences: routingPreferences
      .optional()
      .describe("The request's routing preferences, as it gave them."),
  })
  .meta({ id: "Routing" });

export const costBreakdown = z
  .object({ quoted: credits, charged: credits, refunded: credits })
  .meta({ id: "CostBreakdown" });

const resultError = z.object({
  code: z.union([z.enum(RESULT_FAILURE_CODES), upstreamStatusCode]),
  message: z.string().nullable(),
});

export const generationResult = z
  .object({
    model: z.string(),
    status: z.enum(["pending", "processing", "completed", "failed"]),
    progress: z.number().nullable().describe("0–100 where the upstream tells it."),
    imageUrl: z
      .string()
      .nullable()
      .optional()
      .describe(
        "An image result once completed: a signed URL that opens for 24 hours. Null once the output has expired (see `expiredAt`).",
      ),
    videoUrl: z.string().nullable().optional().describe("A video result, likewise."),
    audioUrl: z
      .string()
      .nullable()
      .optional()
      .describe("A music or sound-effect result, likewise (audio/wav or audio/mpeg)."),
    fps: z
      .number()
      .int()
      .nullable()
      .optional()
      .describe("A video result's frame rate: the request's `fps`, else the model's default."),
    cost: credits,
    charged: credits,
    refunded: credits,
    routing: routing.nullable(),
    error: resultError.nullable(),
    finishedAt: timestamp.nullable(),
    expiredAt: timestamp
      .nullable()
      .describe(
        "When the output was deleted after the retention period (OUTPUT_RETENTION_DAYS): its URL is then null and its download answers 410 output_expired. Null while the output is kept.",
      ),
  })
  .meta({ id: "GenerationResult" });

export const quoteBreakdown = z
  .object({
    models: z.array(
      z.object({ model: z.string(), credits: credits.describe("The model's price.") }),
    ),
    passFees: z.array(
      z.object({
        passId: z.string(),
        fee: credits.describe("Per model result (0 on the caller's own pass)."),
        uses: z.number().int().describe("Model results that pay it."),
        credits,
      }),
    ),
    total: credits.describe("What is held: every model's price and every pass fee."),
  })
  .meta({ id: "QuoteBreakdown" });

export const generation = z
  .object({
    generationId: z.string(),
    status: z.enum(["pending", "processing", "completed", "failed"]),
    mediaType: z.enum(["image", "video", "audio"]),
    prompt: z
      .string()
      .describe("The final prompt: the template filled in, the prompt, then each pass's fragment."),
    createdAt: timestamp,
    reservationId: z.string().nullable(),
    templateId: z.string().nullable(),
    stylePassIds: z.array(z.string()),
    cost: costBreakdown,
    quote: quoteBreakdown,
    results: z.array(generationResult),
  })
  .meta({ id: "Generation" });

export const quoteAnswer = z.object({
  network: z.enum(["live", "test"]),
  prompt: z.string().describe("The final prompt the generation would run with."),
  negativePrompt: z.string().nullable(),
  aspectRatio: z.string(),
  resolution: z.string(),
  quote: quoteBreakdown,
});

const accessToken = z
  .string()
  .describe("gat_…: reads this generation (status, events, video job) without an API key.");

export const generationSubmitted = z
  .object({ generationId: z.string(), cost: credits })
  .meta({ id: "GenerationSubmitted" });

export const paidGenerationSubmitted = z
  .object({ generationId: z.string(), cost: credits, accessToken, payment: paymentReceipt })
  .meta({ id: "PaidGenerationSubmitted" });

const batchId = z
  .string()
  .nullable()
  .describe("bat_…: the batch's hold (null when an Idempotency-Key replays an old batch).");

export const batchSubmitted = z
  .object({
    batchId,
    cost: credits.describe("The whole batch's quote."),
    generations: z.array(generationSubmitted),
  })
  .meta({ id: "BatchSubmitted" });

export const paidBatchSubmitted = z
  .object({
    batchId,
    cost: credits,
    generations: z.array(z.object({ generationId: z.string(), cost: credits, accessToken })),
    payment: paymentReceipt,
  })
  .meta({ id: "PaidBatchSubmitted" });

export const generationStatus = z.object({
  generations: z
    .record(z.string(), generation)
    .describe("The caller's generations among `ids`, keyed by generation id, in the order asked."),
  notFound: z.array(z.string()).describe("Ids that are unknown or not the caller's."),
});

export const generationPage = pageSchema(generation);

/** The OpenAI images answer's ids, also sent before the wait (103 Early Hints). */
const GENERATION_ID_HEADER = {
  description:
    "The generation ids this call started, comma-separated in the order of the images (absent while the payment is still confirming, and on an Idempotency-Key replay, whose body names them). Sent first in a `103 Early Hints` answer before the wait, so a client that gives up can still poll them.",
};

/** Paid with x402, an OpenAI-compatible answer also says how to poll and what was paid. */
const paidImages = {
  accessTokens: z.array(accessToken).optional(),
  payment: paymentReceipt.optional(),
};

export const imagesResponse = z.object({
  created: z.number().int().describe("Unix seconds."),
  data: z.array(
    z.union([z.object({ url: z.string() }).strict(), z.object({ b64_json: z.string() }).strict()]),
  ),
  credits,
  routing: routing.nullable(),
  generationIds: z.array(z.string()),
  ...paidImages,
});

export const imagesProcessing = z.object({
  id: z.string().describe("The first generation's id, to poll."),
  ids: z.array(z.string()),
  status: z.literal("processing"),
  credits,
  ...paidImages,
});

export const videoJobCreated = z.object({
  id: z.string(),
  object: z.literal("video.job"),
  status: z.literal("queued"),
  model: z.string(),
  credits,
  accessToken: accessToken.optional(),
  payment: paymentReceipt.optional(),
});

export const videoJob = z
  .object({
    id: z.string(),
    object: z.literal("video.job"),
    status: z.enum(["queued", "processing", "succeeded", "failed"]),
    progress: z.number().nullable(),
    model: z.string().nullable(),
    prompt: z.string(),
    videoUrl: z.string().nullable(),
    fps: z.number().int().nullable().describe("The frame rate it renders at."),
    credits: costBreakdown,
    routing: routing.nullable(),
    error: resultError.nullable(),
    createdAt: timestamp,
    finishedAt: timestamp.nullable(),
  })
  .meta({ id: "VideoJob" });

const storedFile = z.string().meta({ format: "binary" });
export const outputContentTypes = [
  "image/png",
  "image/jpeg",
  "image/webp",
  "image/gif",
  "video/mp4",
  "audio/wav",
  "audio/mpeg",
] as const;

/** Every refusal of quoting a request: against the catalog, its passes and its template. */
export const QUOTE_ERRORS: ErrorCode[] = [
  "invalid_model",
  "model_media_mismatch",
  "audio_model_not_generative",
  "duplicate_model",
  "too_many_models",
  "prompt_too_long",
  "invalid_resolution",
  "invalid_aspect_ratio",
  "duration_required",
  "invalid_duration",
  "invalid_fps",
  "pass_not_found",
  "pass_archived",
  "pass_media_mismatch",
  "template_not_found",
  "missing_template_variable",
  "unknown_template_variable",
  "invalid_template_variable",
  "model_unavailable",
  "unknown_channel",
  "no_channel_left",
];

/** Every refusal of a request that quotes a generation and then holds its credits. */
const SUBMIT_ERRORS: ErrorCode[] = [
  ...QUOTE_ERRORS,
  "unsafe_url",
  "invalid_reference_image",
  "insufficient_credits",
  "key_limit_exceeded",
  "not_found",
  "reservation_closed",
];

const generationExample = {
  generationId: "gen_01kaxyz0000000000000000000",
  status: "completed",
  mediaType: "image",
  prompt: "a lighthouse at dusk",
  createdAt: "2026-11-21T19:20:01.123Z",
  reservationId: null,
  templateId: null,
  stylePassIds: [],
  cost: { quoted: 4, charged: 4, refunded: 0 },
  quote: { models: [{ model: "gpt-image-2", credits: 4 }], passFees: [], total: 4 },
  results: [
    {
      model: "gpt-image-2",
      status: "completed",
      progress: 100,
      imageUrl:
        "http://localhost:3000/v1/download?id=gen_01kaxyz0000000000000000000&model=gpt-image-2&expires=…&signature=…",
      cost: 4,
      charged: 4,
      refunded: 0,
      routing: {
        upstream: "sandbox-primary",
        failover: false,
        attempts: [{ channel: "sandbox-primary", outcome: "ok", ms: 80 }],
      },
      error: null,
      finishedAt: "2026-11-21T19:20:02.001Z",
      expiredAt: null,
    },
  ],
};

export const generationContracts = {
  generate: route({
    method: "post",
    path: "/v1/generate",
    operationId: "generate",
    summary: "Start a generation on 1–6 models",
    description:
      "Holds each model's price, writes the generation and queues its jobs in one transaction; poll GET /v1/generate/status, stream GET /v1/generate/{id}/events, or pass a webhookUrl. Without an API key the call is paid per call with x402 at exactly its quote, and the answer adds an access token and the payment's receipt.",
    tag: "Generations",
    auth: ["apiKey", "x402"],
    body: {
      schema: generateRequest,
      example: {
        prompt: "a lighthouse at dusk",
        models: ["gpt-image-2", "nano-banana-pro"],
        resolution: "2K",
        aspectRatio: "16:9",
      },
    },
    idempotent: true,
    rateLimit: "generate",
    responses: {
      202: {
        description:
          "Accepted: with an API key `{ generationId, cost }`; paid with x402 also `accessToken` and `payment`; a payment still confirming on chain answers `payment_pending`.",
        schema: z.union([generationSubmitted, paidGenerationSubmitted, paymentPending]),
        example: { generationId: "gen_01kaxyz0000000000000000000", cost: 16 },
      },
    },
    errors: SUBMIT_ERRORS,
  }),
  quoteGeneration: route({
    method: "post",
    path: "/v1/generate/quote",
    operationId: "quoteGeneration",
    summary: "Price a generation without starting it",
    description:
      "Composes the request (template, prompt, style passes in order) and prices it exactly as POST /v1/generate would: each model's price, each pass's fee on every model result (none on the caller's own pass), and the total that a submit holds.",
    tag: "Generations",
    auth: ["apiKey"],
    body: {
      schema: generateRequest,
      example: { prompt: "a lighthouse at dusk", models: ["gpt-image-2"] },
    },
    rateLimit: "poll",
    responses: {
      200: {
        description: "The final prompt and the quote.",
        schema: quoteAnswer,
        example: {
          network: "test",
          prompt: "a lighthouse at dusk, ink wash",
          negativePrompt: null,
          aspectRatio: "1:1",
          resolution: "1K",
          quote: {
            models: [{ model: "gpt-image-2", credits: 4 }],
            passFees: [{ passId: "pass_01kaxyz0000000000000000000", fee: 2, uses: 1, credits: 2 }],
            total: 6,
          },
        },
      },
    },
    errors: QUOTE_ERRORS,
  }),
  generateBatch: route({
    method: "post",
    path: "/v1/generate/batch",
    operationId: "generateBatch",
    summary: "Start up to 20 generations in one call",
    description:
      "Each item is exactly the body of POST /v1/generate. The whole quote is held at once, so a batch is accepted whole or refused whole (an item's refusal names it: `requests.3.models`); each generation is then charged or refunded on its own. Without an API key the batch is paid per call with x402 at exactly its quote, and each generation gets its own access token.",
    tag: "Generations",
    auth: ["apiKey", "x402"],
    body: {
      schema: batchRequest,
      example: {
        requests: [
          { prompt: "a lighthouse at dusk", models: ["gpt-image-2"] },
          { prompt: "a lighthouse at dawn", models: ["gpt-image-2"] },
        ],
      },
    },
    idempotent: true,
    rateLimit: "batch",
    responses: {
      202: {
        description:
          "Accepted: the batch and its generations; paid with x402 each with an `accessToken`, and the `payment`; a payment still confirming on chain answers `payment_pending`.",
        schema: z.union([batchSubmitted, paidBatchSubmitted, paymentPending]),
        example: {
          batchId: "bat_01kaxyz0000000000000000000",
          cost: 8,
          generations: [
            { generationId: "gen_01kaxyz0000000000000000001", cost: 4 },
            { generationId: "gen_01kaxyz0000000000000000002", cost: 4 },
          ],
        },
      },
    },
    errors: SUBMIT_ERRORS,
  }),
  getGenerationStatus: route({
    method: "get",
    path: "/v1/generate/status",
    operationId: "getGenerationStatus",
    summary: "The status and results of up to 50 generations",
    tag: "Generations",
    auth: ["apiKey", "generationToken"],
    query: describeFields(statusQuery, { ids: "Generation ids, comma-separated (1–50)." }),
    rateLimit: "poll",
    responses: {
      200: {
        description:
          "The caller's generations among `ids`, keyed by id in the order asked; the rest in notFound.",
        schema: generationStatus,
        example: {
          generations: { [generationExample.generationId]: generationExample },
          notFound: [],
        },
      },
    },
    errors: [],
  }),
  listGenerations: route({
    method: "get",
    path: "/v1/history",
    operationId: "listGenerations",
    summary: "The caller's generations, newest first",
    tag: "Generations",
    auth: ["apiKey"],
    query: describeFields(historyQuery, {
      cursor: "nextCursor from the previous page.",
      model: "Only generations with a result of this model.",
      from: "Created at or after.",
      to: "Created before.",
    }),
    rateLimit: "poll",
    responses: {
      200: { description: "A page of generations.", schema: generationPage },
    },
    errors: [],
  }),
  downloadOutput: route({
    method: "get",
    path: "/v1/download",
    operationId: "downloadOutput",
    summary: "A result's image or video",
    description:
      "Opens with the signed URL a status read hands out (valid 24 hours, no key), or with the owner's API key. A bad or expired signature is 404, like a missing file. With object storage and STORAGE_DOWNLOADS=presigned, answers 302 to a short-lived presigned URL of the object instead of the bytes. An output older than OUTPUT_RETENTION_DAYS has been deleted: 410 output_expired.",
    tag: "Generations",
    auth: ["apiKey", "signedUrl"],
    query: describeFields(downloadQuery, {
      id: "The generation.",
      model: "The result's model.",
      expires: "From the signed URL (Unix seconds).",
      signature: "From the signed URL.",
    }),
    rateLimit: "poll",
    responses: {
      200: {
        description: "The stored output, with the type its bytes were checked to be.",
        schema: storedFile,
        contentTypes: outputContentTypes,
      },
      302: presignedRedirect,
    },
    errors: ["not_found", "output_expired"],
  }),
  streamGenerationEvents: route({
    method: "get",
    path: "/v1/generate/:id/events",
    operationId: "streamGenerationEvents",
    summary: "Wait on a generation as Server-Sent Events",
    description:
      "A `status` event with the whole generation object (as the status endpoint has it) each time a result starts, progresses or settles, then `done` with the final object, and the stream ends. When the serving instance shuts down (a deploy), the stream instead ends with a `reconnect` event carrying the object as it stands and a short `retry:`: reconnect (EventSource does so by itself) and another instance carries on.",
    tag: "Generations",
    auth: ["apiKey", "generationToken"],
    params: eventsParams,
    rateLimit: "poll",
    responses: {
      200: {
        description:
          "An event stream of `status` events and a last `done` event (or `reconnect`, when the instance shuts down first).",
        schema: z.string(),
        contentTypes: ["text/event-stream"],
        example: 'retry: 2000\n\nid: 1\nevent: status\ndata: {"generationId":"gen_…",…}\n\n',
      },
    },
    errors: ["not_found"],
  }),
  createImage: route({
    method: "post",
    path: "/v1/images/generations",
    operationId: "createImage",
    summary: "OpenAI-compatible image generation",
    description:
      "The OpenAI Images request and response over the same generations, ledger and routing, so OpenAI's SDK works unchanged (baseURL …/v1). Waits for the images; past the wait, or when the serving instance shuts down (a deploy) before they are ready, it answers 202 with the generation ids to poll (with `Connection: close`). Without an API key it is paid per call with x402. A client that stops waiting still gets its images, and is charged for them: the generation ids go out before the wait in a `103 Early Hints` answer (`X-Generation-Id`, and a `Link` to `GET /v1/generate/status`; paid with x402, only once the payment settled), the final answer (200, 202 or 502) carries the same `X-Generation-Id`, and `GET /v1/history` lists the generations.",
    tag: "OpenAI-compatible",
    auth: ["apiKey", "x402"],
    body: {
      schema: imagesRequest,
      example: { model: "nano-banana-2", prompt: "a lighthouse at dusk", size: "1536x1024" },
    },
    idempotent: true,
    rateLimit: "generate",
    responses: {
      200: {
        description: "The images.",
        schema: imagesResponse,
        headers: { "X-Generation-Id": GENERATION_ID_HEADER },
      },
      202: {
        description:
          "Still processing past the wait or at a shutdown of the instance, or the payment is still confirming.",
        schema: z.union([imagesProcessing, paymentPending]),
        headers: { "X-Generation-Id": GENERATION_ID_HEADER },
      },
    },
    errors: [...SUBMIT_ERRORS, "generation_failed"],
  }),
  createVideoJob: route({
    method: "post",
    path: "/v1/videos/jobs",
    operationId: "createVideoJob",
    summary: "Start a video job (one model, one video)",
    tag: "Video jobs",
    auth: ["apiKey", "x402"],
    body: {
      schema: videoJobRequest,
      example: { model: "sora-2-preview", prompt: "waves at night", duration: 4 },
    },
    idempotent: true,
    rateLimit: "generate",
    responses: {
      202: {
        description:
          "Queued (paid with x402: with `accessToken` and `payment`), or the payment is still confirming.",
        schema: z.union([videoJobCreated, paymentPending]),
      },
    },
    errors: SUBMIT_ERRORS,
  }),
  getVideoJob: route({
    method: "get",
    path: "/v1/videos/jobs/:id",
    operationId: "getVideoJob",
    summary: "A video job's status and result",
    tag: "Video jobs",
    auth: ["apiKey", "generationToken"],
    params: jobParams,
    rateLimit: "poll",
    responses: { 200: { description: "The job.", schema: videoJob } },
    errors: ["not_found"],
  }),
};
