import type { ChatMessage } from "../chat/messages.js";
import { type ChannelEndpoint, ProviderError } from "./types.js";

/**
 * Chat adapters (issue 20, item 6), beside the image/video `Provider`. Every adapter streams
 * from its upstream and yields one normalised event shape, so a plain answer and a streamed one
 * are built from the same events (collectChat), and routing can fail over between OpenAI-format
 * and Anthropic-format channels before the first token.
 */

/** What a chat adapter is asked: validated, priced and routed. */
export interface ChatTask {
  /** The upstream's own model id for this channel. */
  upstreamModel: string;
  messages: ChatMessage[];
  /** The reply's token limit, already capped at the model's maximum (it is what was held). */
  maxTokens: number;
  temperature?: number | undefined;
  topP?: number | undefined;
  stop?: string[] | undefined;
  seed?: number | undefined;
}

/** OpenAI's finish reasons that a reply without tools can end with. */
export type FinishReason = "stop" | "length" | "content_filter";

export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
}

/**
 * One stream's events: text deltas (never empty), then, after the last delta, one `finish`
 * and at most one `usage` (when the upstream reports it), in either order.
 */
export type ChatEvent =
  | { type: "delta"; text: string }
  | { type: "finish"; reason: FinishReason }
  | ({ type: "usage" } & TokenUsage);

export interface ChatCallOptions {
  /** The longest wait for the stream's next chunk before it counts as hung. */
  idleTimeoutMs?: number;
}

export interface ChatProvider {
  /** Fails with a ProviderError; once a delta was yielded, with a StreamBrokenError. */
  complete(
    task: ChatTask,
    channel: ChannelEndpoint,
    signal: AbortSignal,
    options?: ChatCallOptions,
  ): AsyncIterable<ChatEvent>;
}

/**
 * A stream that failed after its first token. The caller has seen text from this channel, so
 * routing must not fail over (the reply would restart mid-sentence from another model) and
 * billing charges what was generated: `cause` is the failure as it would have been classified
 * before the first token, `delivered` the text already yielded.
 */
export class StreamBrokenError extends ProviderError {
  override readonly cause: ProviderError;
  constructor(
    cause: ProviderError,
    readonly delivered: string,
  ) {
    super(cause.kind, cause.code, `The upstream failed mid-stream: ${cause.message}`);
    this.name = "StreamBrokenError";
    this.cause = cause;
  }
}

/** A finished reply, as a plain (non-streamed) answer needs it. */
export interface ChatReply {
  text: string;
  finishReason: FinishReason;
  /** The upstream's report, when it made one; billing counts tokens itself otherwise. */
  usage: TokenUsage | undefined;
}

/** Reads a stream to its end: the plain answer is the streamed one, gathered. */
export async function collectChat(events: AsyncIterable<ChatEvent>): Promise<ChatReply> {
  let text = "";
  let finishReason: FinishReason | undefined;
  let usage: TokenUsage | undefined;
  for await (const event of events) {
    if (event.type === "delta") text += event.text;
    else if (event.type === "finish") finishReason = event.reason;
    else usage = { promptTokens: event.promptTokens, completionTokens: event.completionTokens };
  }
  if (!finishReason) {
    throw new ProviderError("retryable", "malformed_response", "The reply had no finish reason.");
  }
  return { text, finishReason, usage };
}
