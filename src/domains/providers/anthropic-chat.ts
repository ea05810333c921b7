import { z } from "zod";
import { type ChatMessage, partsOf, textOf } from "../chat/messages.js";
import { committedAfterFirstToken, endedEarly, malformedChunk, openStream } from "./chat-stream.js";
import type { ChatEvent, ChatProvider, ChatTask, FinishReason } from "./chat-types.js";
import { CONTENT_POLICY, contentPolicyRefusal } from "./http.js";
import { readEvents } from "./sse.js";
import { ProviderError } from "./types.js";

/**
 * Anthropic Messages, streamed: POST /v1/messages with `stream: true`, answered with
 * message_start, content_block_start/delta/stop, message_delta and message_stop events (and
 * pings), normalised to the same ChatEvents as the OpenAI adapter.
 */

export const ANTHROPIC_VERSION = "2023-06-01";

const usage = z.object({
  input_tokens: z.number().int().optional(),
  output_tokens: z.number().int().optional(),
  cache_creation_input_tokens: z.number().int().nullish(),
  cache_read_input_tokens: z.number().int().nullish(),
});
const streamEvent = z.discriminatedUnion("type", [
  z.object({ type: z.literal("message_start"), message: z.object({ usage }) }),
  z.object({ type: z.literal("content_block_start") }),
  z.object({
    type: z.literal("content_block_delta"),
    // Only text deltas carry reply text; thinking and signature deltas do not.
    delta: z.object({ type: z.string(), text: z.string().optional() }),
  }),
  z.object({ type: z.literal("content_block_stop") }),
  z.object({
    type: z.literal("message_delta"),
    delta: z.object({ stop_reason: z.string().nullish() }),
    usage: usage.optional(),
  }),
  z.object({ type: z.literal("message_stop") }),
  z.object({ type: z.literal("ping") }),
  z.object({
    type: z.literal("error"),
    error: z.object({ type: z.string(), message: z.string() }),
  }),
]);

function finishReasonOf(stopReason: string | null | undefined): FinishReason {
  if (stopReason === "max_tokens" || stopReason === "model_context_window_exceeded")
    return "length";
  if (stopReason === "refusal") return "content_filter";
  return "stop"; // end_turn, stop_sequence, and tool or pause reasons we never ask for
}

type AnthropicBlock =
  | { type: "text"; text: string }
  | {
      type: "image";
      source: { type: "url"; url: string } | { type: "base64"; media_type: string; data: string };
    };

function imageSource(url: string): Extract<AnthropicBlock, { type: "image" }>["source"] {
  const inline = /^data:([^;,]+);base64,(.*)$/s.exec(url);
  return inline
    ? { type: "base64", media_type: inline[1] as string, data: inline[2] as string }
    : { type: "url", url };
}

function contentOf(message: ChatMessage): string | AnthropicBlock[] {
  if (typeof message.content === "string") return message.content;
  return partsOf(message).map((part) =>
    part.type === "text"
      ? { type: "text", text: part.text }
      : { type: "image", source: imageSource(part.image_url.url) },
  );
}

/** OpenAI-shaped messages as Anthropic takes them: system turns apart, the rest in order. */
export function anthropicBody(task: ChatTask) {
  const system = task.messages
    .filter((m) => m.role === "system")
    .map(textOf)
    .join("\n\n");
  const messages = task.messages
    .filter((m) => m.role !== "system" && m.content !== null)
    .map((m) => ({ role: m.role as "user" | "assistant", content: contentOf(m) }));
  return {
    model: task.upstreamModel,
    max_tokens: task.maxTokens,
    ...(system && { system }),
    messages,
    // Anthropic's current models take temperature or top_p, not both: temperature wins.
    ...(task.temperature !== undefined
      ? { temperature: Math.min(task.temperature, 1) }
      : task.topP !== undefined && { top_p: task.topP }),
    ...(task.stop?.length && { stop_sequences: task.stop }),
    stream: true,
  };
}

/** Anthropic's error types that a retry may cure; any other in a stream is the request's. */
const RETRYABLE_ERRORS = new Set(["overloaded_error", "api_error", "rate_limit_error"]);

async function* events(
  task: ChatTask,
  channel: { baseUrl?: string | undefined; apiKey?: string | undefined },
  signal: AbortSignal,
  idleTimeoutMs: number | undefined,
): AsyncGenerator<ChatEvent> {
  const body = await openStream(
    `${channel.baseUrl}/v1/messages`,
    {
      "content-type": "application/json",
      "x-api-key": channel.apiKey ?? "",
      "anthropic-version": ANTHROPIC_VERSION,
    },
    anthropicBody(task),
    signal,
  );
  let promptTokens: number | undefined;
  for await (const sse of readEvents(body, idleTimeoutMs)) {
    let json: unknown;
    try {
      json = JSON.parse(sse.data);
    } catch {
      throw malformedChunk("JSON");
    }
    const parsed = streamEvent.safeParse(json);
    // Event types added after this adapter was written are skipped, as Anthropic asks.
    if (!parsed.success) {
      const type = (json as { type?: unknown } | null)?.type;
      if (typeof type === "string" && !streamEvent.options.some((o) => o.shape.type.value === type))
        continue;
      throw malformedChunk("an Anthropic stream event");
    }
    const event = parsed.data;
    switch (event.type) {
      case "message_start": {
        const u = event.message.usage;
        promptTokens =
          (u.input_tokens ?? 0) +
          (u.cache_creation_input_tokens ?? 0) +
          (u.cache_read_input_tokens ?? 0);
        break;
      }
      case "content_block_delta":
        if (event.delta.type === "text_delta" && event.delta.text)
          yield { type: "delta", text: event.delta.text };
        break;
      case "message_delta":
        yield { type: "finish", reason: finishReasonOf(event.delta.stop_reason) };
        // output_tokens in message_delta is the running total for the whole reply.
        if (promptTokens !== undefined && event.usage?.output_tokens !== undefined) {
          yield { type: "usage", promptTokens, completionTokens: event.usage.output_tokens };
        }
        break;
      case "message_stop":
        return;
      case "error": {
        const { type, message } = event.error;
        if (CONTENT_POLICY.test(message)) throw contentPolicyRefusal();
        throw new ProviderError(
          RETRYABLE_ERRORS.has(type) ? "retryable" : "channel",
          type === "rate_limit_error" ? "rate_limited" : "upstream_failed",
          `Upstream error (${type}): ${message}`,
        );
      }
    }
  }
  throw endedEarly();
}

export const anthropicChatProvider: ChatProvider = {
  complete: (task, channel, signal, options) =>
    committedAfterFirstToken(events(task, channel, signal, options?.idleTimeoutMs)),
};
