import { classify } from "../routing/router.js";
import type { ChatEvent } from "./chat-types.js";
import { StreamBrokenError } from "./chat-types.js";
import { failure } from "./http.js";
import { ProviderError } from "./types.js";

/** Shared by the streaming chat adapters. */

/** POSTs a JSON body and answers the streamed response body, or throws what its status means. */
export async function openStream(
  url: string,
  headers: Record<string, string>,
  body: unknown,
  signal: AbortSignal,
): Promise<ReadableStream<Uint8Array>> {
  const res = await fetch(url, {
    method: "POST",
    headers: { ...headers, accept: "text/event-stream" },
    body: JSON.stringify(body),
    signal,
  });
  if (!res.ok) throw await failure(res);
  if (!res.body) throw endedEarly();
  return res.body;
}

/** The stream closed before its terminator (OpenAI's [DONE], Anthropic's message_stop). */
export const endedEarly = () =>
  new ProviderError(
    "retryable",
    "connection_error",
    "The upstream's stream ended before it finished.",
  );

/** A chunk that does not parse as the format's JSON event. */
export const malformedChunk = (what: string) =>
  new ProviderError("retryable", "malformed_response", `A streamed chunk was not ${what}.`);

/**
 * Classifies every failure of a stream and, once a delta has gone out, wraps it in a
 * StreamBrokenError: the one place that decides whether failover is still allowed.
 */
export async function* committedAfterFirstToken(
  events: AsyncIterable<ChatEvent>,
): AsyncGenerator<ChatEvent> {
  let delivered = "";
  let started = false;
  try {
    for await (const event of events) {
      if (event.type === "delta") {
        if (event.text === "") continue;
        started = true;
        delivered += event.text;
      }
      yield event;
    }
  } catch (err) {
    if (err instanceof StreamBrokenError) throw err;
    const error = classify(err);
    throw started ? new StreamBrokenError(error, delivered) : error;
  }
}
