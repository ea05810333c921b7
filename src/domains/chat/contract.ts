import { z } from "zod";
import { route } from "../../http/openapi/contract.js";
import { creditsJson } from "../../lib/credits.js";
import { routingPreferences } from "../routing/preferences.js";
import { chatMessage } from "./messages.js";

/**
 * POST /v1/chat/completions in OpenAI's shapes (issue 20, item 2), so the official SDK works
 * unchanged with baseURL …/v1. Fields OpenAI has and we do not serve (tools, n > 1, logprobs)
 * are refused with a 400 naming them rather than ignored: a caller relying on one should know.
 */

const tokenLimit = z.number().int().min(1).max(1_000_000);

export const chatRequest = z
  .object({
    model: z.string().min(1).describe('A text model\'s id (GET /v1/models, `type: "text"`).'),
    messages: z.array(chatMessage).min(1).max(2_048),
    max_tokens: tokenLimit
      .optional()
      .describe("The reply's token limit; capped at the model's own maximum."),
    max_completion_tokens: tokenLimit.optional().describe("OpenAI's newer name for max_tokens."),
    temperature: z.number().min(0).max(2).optional(),
    top_p: z.number().min(0).max(1).optional(),
    stop: z
      .union([z.string().min(1), z.array(z.string().min(1)).max(4)])
      .optional()
      .transform((s) => (s === undefined ? undefined : typeof s === "string" ? [s] : s)),
    seed: z.number().int().optional(),
    n: z.literal(1).optional().describe("One reply per request."),
    stream: z.boolean().optional(),
    stream_options: z.object({ include_usage: z.boolean().optional() }).strict().nullish(),
    user: z.string().max(256).optional(),
    routing: routingPreferences.optional(),
  })
  .strict();

export type ChatRequest = z.output<typeof chatRequest>;

const routingJson = z
  .object({
    upstream: z.string().nullable(),
    failover: z.boolean(),
    attempts: z.array(z.object({ channel: z.string(), outcome: z.string(), ms: z.number().int() })),
    preferences: routingPreferences.optional(),
  })
  .describe("Which upstream channel served the reply, and every try before it.");

export const chatUsage = z.object({
  prompt_tokens: z.number().int(),
  completion_tokens: z.number().int(),
  total_tokens: z.number().int(),
  cost: creditsJson(
    "What the reply cost: credits, at most 4 decimals (usage rounds up to the unit).",
  ),
});

const chatCost = z
  .object({
    quoted: creditsJson("What was held: the prompt and the longest reply allowed."),
    charged: creditsJson("What the reply cost."),
    refunded: creditsJson("What returned to the balance: the hold less the charge."),
  })
  .describe("The hold and what became of it.");

const paymentReceipt = z
  .record(z.string(), z.unknown())
  .optional()
  .describe(
    "Paid with x402: the payment's receipt. The wallet paid the hold; what the reply did not use stays on the wallet's account as credits.",
  );

export const chatCompletion = z
  .object({
    id: z.string(),
    object: z.literal("chat.completion"),
    created: z.number().int(),
    model: z.string(),
    choices: z.array(
      z.object({
        index: z.number().int(),
        message: z.object({
          role: z.literal("assistant"),
          content: z.string(),
          refusal: z.null(),
        }),
        finish_reason: z.enum(["stop", "length", "content_filter"]),
        logprobs: z.null(),
      }),
    ),
    usage: chatUsage,
    cost: chatCost,
    routing: routingJson,
    payment: paymentReceipt,
  })
  .meta({ id: "ChatCompletion" });

export const chatContracts = {
  createChatCompletion: route({
    method: "post",
    path: "/v1/chat/completions",
    operationId: "createChatCompletion",
    summary: "OpenAI-compatible chat completion, plain or streamed",
    description:
      "OpenAI's chat completions request and answers (`chat.completion`, or with `stream: true` server-sent `chat.completion.chunk` events ending in `data: [DONE]`), so OpenAI's SDK works unchanged. Billed by usage: the prompt's tokens at the input rate plus the longest reply allowed (`max_tokens`, capped at the model's maximum) at the output rate are held first; a balance that cannot cover it is refused with 402 saying how many reply tokens it affords. The hold settles to the upstream's reported usage (our own count when it reports none), never above it, and the rest returns. A client that disconnects mid-stream is charged for the text generated until then; a failure before the first token is refunded in full and may fail over to another channel, after it the reply stays on its channel. Without an API key it is paid per call with x402: the wallet pays the hold, and what the reply does not use stays on the wallet's account as credits.",
    tag: "OpenAI-compatible",
    auth: ["apiKey", "x402"],
    body: {
      schema: chatRequest,
      example: {
        model: "gpt-5.4-mini",
        messages: [{ role: "user", content: "Name three lighthouses." }],
        max_tokens: 200,
      },
    },
    rateLimit: "generate",
    responses: {
      200: {
        description:
          "The reply; with `stream: true` a `text/event-stream` of `chat.completion.chunk` events, the last (with `stream_options.include_usage`) carrying `usage` and `cost`.",
        schema: chatCompletion,
        contentTypes: ["application/json", "text/event-stream"],
      },
    },
    errors: [
      "invalid_model",
      "model_media_mismatch",
      "prompt_too_long",
      "context_length_exceeded",
      "insufficient_credits",
      "key_limit_exceeded",
      "model_unavailable",
      "unknown_channel",
      "no_channel_left",
      "completion_failed",
    ],
  }),
};
