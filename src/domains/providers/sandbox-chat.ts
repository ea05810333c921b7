import { createHash } from "node:crypto";
import { textOf } from "../chat/messages.js";
import { countPromptTokens, countTextTokens } from "../chat/tokens.js";
import { committedAfterFirstToken } from "./chat-stream.js";
import type { ChatEvent, ChatProvider, ChatTask } from "./chat-types.js";

/**
 * The offline chat provider: a reply built from the prompt and seed, the same words for the
 * same input, streamed a word at a time, with usage counted by our own tokenizer (so what it
 * reports is what billing would count).
 */

const WORDS = (
  "the a sandbox reply of light river stone quiet morning signal garden paper window " +
  "lantern orbit harbor meadow copper echo thread summit canvas ember tide forest"
).split(" ");

/** Replies are short: a sandbox answer of thousands of tokens would only slow tests down. */
const MAX_SANDBOX_WORDS = 48;

/** The reply's words, within `maxTokens` tokens; `capped` when the limit cut it short. */
export function sandboxReply(task: ChatTask): { text: string; capped: boolean } {
  const prompt = task.messages.map((m) => `${m.role}:${textOf(m)}`).join("\n");
  const digest = createHash("sha256")
    .update(`${task.upstreamModel}\n${prompt}\n${task.seed ?? 0}`)
    .digest();
  const lastUser = [...task.messages].reverse().find((m) => m.role === "user");
  const topic = (lastUser ? textOf(lastUser) : "").trim().split(/\s+/).slice(0, 6).join(" ");
  const wanted = 8 + ((digest[0] as number) % (MAX_SANDBOX_WORDS - 8));
  const words = [
    ...(topic ? [`On "${topic}":`] : []),
    ...Array.from({ length: wanted }, (_, i) => WORDS[(digest[i % 32] as number) % WORDS.length]),
  ];
  let text = "";
  for (const [i, word] of words.entries()) {
    const next = `${text}${i ? " " : ""}${word}`;
    if (countTextTokens(next) > task.maxTokens) return { text, capped: true };
    text = next;
  }
  return { text: `${text}.`, capped: false };
}

async function* events(task: ChatTask, signal: AbortSignal): AsyncGenerator<ChatEvent> {
  const { text, capped } = sandboxReply(task);
  // Word by word, each with its leading space, as upstreams stream.
  for (const piece of text.match(/\s*\S+/g) ?? []) {
    signal.throwIfAborted();
    yield { type: "delta", text: piece };
  }
  yield { type: "finish", reason: capped ? "length" : "stop" };
  yield {
    type: "usage",
    promptTokens: countPromptTokens(task.messages),
    completionTokens: countTextTokens(text),
  };
}

export const sandboxChatProvider: ChatProvider = {
  complete: (task, _channel, signal) => committedAfterFirstToken(events(task, signal)),
};
