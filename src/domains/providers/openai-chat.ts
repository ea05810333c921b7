import { z } from "zod";
import { committedAfterFirstToken, endedEarly, malformedChunk, openStream } from "./chat-stream.js";
import type { ChatEvent, ChatProvider, ChatTask, FinishReason } from "./chat-types.js";
import { CONTENT_POLICY, contentPolicyRefusal, jsonHeaders } from "./http.js";
import { readEvents } from "./sse.js";
import { ProviderError } from "./types.js";

/**
 * OpenAI chat completions, streamed: POST /v1/chat/completions with `stream: true` and
 * `stream_options.include_usage`, answered with `chat.completion.chunk` events and `[DONE]`.
 * Also what OpenAI-compatible gateways speak, so one adapter serves every model there.
 */

const usage = z.object({ prompt_tokens: z.number().int(), completion_tokens: z.number().int() });
const chunk = z.object({
  object: z.literal("chat.completion.chunk"),
  choices: z.array(
    z.object({
      delta: z.object({ content: z.string().nullish() }).optional(),
      finish_reason: z.string().nullish(),
    }),
  ),
  usage: usage.nullish(),
});
/** What OpenAI sends in place of a chunk when the request fails after it began streaming. */
const streamedError = z.object({ error: z.object({ message: z.string() }).loose() });

/** tool_calls and function_call cannot happen without tools; they end the text like `stop`. */
function finishReasonOf(reason: string): FinishReason {
  return reason === "length" || reason === "content_filter" ? reason : "stop";
}

export function openaiChatBody(task: ChatTask) {
  return {
    model: task.upstreamModel,
    messages: task.messages,
    // OpenAI's current name; its reasoning models refuse the older `max_tokens`.
    max_completion_tokens: task.maxTokens,
    ...(task.temperature !== undefined && { temperature: task.temperature }),
    ...(task.topP !== undefined && { top_p: task.topP }),
    ...(task.stop?.length && { stop: task.stop }),
    ...(task.seed !== undefined && { seed: task.seed }),
    stream: true,
    stream_options: { include_usage: true },
  };
}

async function* events(
  task: ChatTask,
  channel: { baseUrl?: string | undefined; apiKey?: string | undefined },
  signal: AbortSignal,
  idleTimeoutMs: number | undefined,
): AsyncGenerator<ChatEvent> {
  const body = await openStream(
    `${channel.baseUrl}/v1/chat/completions`,
    jsonHeaders(`Bearer ${channel.apiKey ?? ""}`),
    openaiChatBody(task),
    signal,
  );
  for await (const sse of readEvents(body, idleTimeoutMs)) {
    if (sse.data === "[DONE]") return;
    let json: unknown;
    try {
      json = JSON.parse(sse.data);
    } catch {
      throw malformedChunk("JSON");
    }
    const failed = streamedError.safeParse(json);
    if (failed.success) {
      const message = failed.data.error.message;
      if (CONTENT_POLICY.test(message)) throw contentPolicyRefusal();
      throw new ProviderError("retryable", "upstream_failed", `Upstream error: ${message}`);
    }
    const parsed = chunk.safeParse(json);
    if (!parsed.success) throw malformedChunk("a chat.completion.chunk");
    const choice = parsed.data.choices[0];
    if (choice?.delta?.content) yield { type: "delta", text: choice.delta.content };
    if (choice?.finish_reason)
      yield { type: "finish", reason: finishReasonOf(choice.finish_reason) };
    if (parsed.data.usage) {
      yield {
        type: "usage",
        promptTokens: parsed.data.usage.prompt_tokens,
        completionTokens: parsed.data.usage.completion_tokens,
      };
    }
  }
  throw endedEarly();
}

export const openaiChatProvider: ChatProvider = {
  complete: (task, channel, signal, options) =>
    committedAfterFirstToken(events(task, channel, signal, options?.idleTimeoutMs)),
};
