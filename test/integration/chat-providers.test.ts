import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { ChatMessage } from "../../src/domains/chat/messages.js";
import { countPromptTokens, countTextTokens } from "../../src/domains/chat/tokens.js";
import { anthropicChatProvider } from "../../src/domains/providers/anthropic-chat.js";
import {
  type ChatEvent,
  type ChatProvider,
  type ChatTask,
  collectChat,
  StreamBrokenError,
} from "../../src/domains/providers/chat-types.js";
import { openaiChatProvider } from "../../src/domains/providers/openai-chat.js";
import { sandboxChatProvider } from "../../src/domains/providers/sandbox-chat.js";
import { ProviderError } from "../../src/domains/providers/types.js";
import { clearFaults, type Fault, type Simulator, startSimulator } from "../simulator/upstream.js";

const messages: ChatMessage[] = [
  { role: "system", content: "Be brief." },
  { role: "user", content: "tell me about the quiet harbor at dawn" },
];
const task = (over: Partial<ChatTask> = {}): ChatTask => ({
  upstreamModel: "sim-model",
  messages,
  maxTokens: 100,
  ...over,
});

let sim: Simulator;
beforeAll(async () => {
  sim = await startSimulator();
});
afterAll(() => sim.close());
beforeEach(() => {
  clearFaults(sim);
  sim.calls.length = 0;
});

/** The stream's events, or the error it ended with beside the events before it. */
async function run(
  provider: ChatProvider,
  channel: { id: string; baseUrl: string; apiKey: string },
  t = task(),
  signal = AbortSignal.timeout(5_000),
): Promise<{ events: ChatEvent[]; error?: unknown }> {
  const events: ChatEvent[] = [];
  try {
    for await (const e of provider.complete(t, channel, signal, { idleTimeoutMs: 300 })) {
      events.push(e);
    }
    return { events };
  } catch (error) {
    return { events, error };
  }
}

const adapters = [
  { name: "OpenAI chat completions", provider: openaiChatProvider, path: "/openai" },
  { name: "Anthropic Messages", provider: anthropicChatProvider, path: "/anthropic" },
] as const;

describe.each(adapters)("the $name adapter against the simulator", ({ provider, path }) => {
  const channel = () => ({ id: "sim", baseUrl: `${sim.url}${path}`, apiKey: "sk-sim" });
  const failWith = (fault: Fault) => {
    sim.script.push(fault);
  };

  it("streams the reply as deltas, then its finish reason and reported usage", async () => {
    const { events, error } = await run(provider, channel());
    expect(error).toBeUndefined();
    const deltas = events.filter((e) => e.type === "delta");
    expect(deltas.length).toBeGreaterThan(3);
    const reply = await collectChat(
      provider.complete(task(), channel(), AbortSignal.timeout(5_000)),
    );
    expect(reply.text).toBe("Simulated reply to: tell me about the quiet harbor at dawn");
    expect(reply.finishReason).toBe("stop");
    // The simulator counts a token a word and 3 a turn: 11 reply words; the prompt's 10 words
    // in 2 turns on OpenAI, 1 on Anthropic (its system prompt is no turn).
    const promptTokens = path === "/openai" ? 10 + 6 : 10 + 3;
    expect(reply.usage).toEqual({ promptTokens, completionTokens: 11 });
    // Deltas come first; finish and usage after the last one.
    const lastDelta = events.findLastIndex((e) => e.type === "delta");
    expect(
      events
        .slice(lastDelta + 1)
        .map((e) => e.type)
        .sort(),
    ).toEqual(["finish", "usage"]);
  });

  it("speaks the upstream's request format", async () => {
    await run(provider, channel(), task({ temperature: 0.5, stop: ["\n\n"], seed: 7 }));
    const input = sim.calls[0]?.input as Record<string, unknown>;
    expect(input.model).toBe("sim-model");
    expect(input.stream).toBe(true);
    if (path === "/openai") {
      expect(input).toMatchObject({
        max_completion_tokens: 100,
        stream_options: { include_usage: true },
        stop: ["\n\n"],
        seed: 7,
        messages,
      });
    } else {
      expect(input).toMatchObject({
        max_tokens: 100,
        system: "Be brief.",
        stop_sequences: ["\n\n"],
        temperature: 0.5,
        messages: [{ role: "user", content: "tell me about the quiet harbor at dawn" }],
      });
      expect(input.seed).toBeUndefined();
    }
  });

  it("reports a reply cut at max tokens as finishing for length", async () => {
    const reply = await collectChat(
      provider.complete(task({ maxTokens: 3 }), channel(), AbortSignal.timeout(5_000)),
    );
    expect(reply).toMatchObject({ text: "Simulated reply to:", finishReason: "length" });
    expect(reply.usage?.completionTokens).toBe(3);
  });

  it.each([
    ["error500", "retryable", "upstream_500"],
    ["rateLimit", "retryable", "rate_limited"],
    ["unknownModel", "channel", "upstream_404"],
    ["streamErrorFirst", "retryable", "upstream_failed"],
    ["malformedChunk", "retryable", "malformed_response"],
  ] as const)(
    "fails before the first token on %s: %s %s, failover still allowed",
    async (fault, kind, code) => {
      failWith(fault);
      const { events, error } = await run(provider, channel());
      expect(events.filter((e) => e.type === "delta")).toEqual([]);
      expect(error).toBeInstanceOf(ProviderError);
      expect(error).not.toBeInstanceOf(StreamBrokenError);
      expect(error).toMatchObject({ kind, code });
      if (fault === "rateLimit") expect((error as ProviderError).retryAfterMs).toBe(1_000);
    },
  );

  it("times out an upstream that never answers, before the first token", async () => {
    failWith("hang");
    const { error } = await run(provider, channel(), task(), AbortSignal.timeout(300));
    expect(error).not.toBeInstanceOf(StreamBrokenError);
    expect(error).toMatchObject({ kind: "retryable", code: "timeout" });
  });

  it.each([
    ["streamError", "upstream_failed"],
    ["streamCut", "connection_error"],
    ["streamHang", "timeout"],
  ] as const)(
    "after the first token, %s is a StreamBrokenError (%s) holding what was delivered",
    async (fault, code) => {
      failWith(fault);
      const { events, error } = await run(provider, channel());
      const delivered = events.flatMap((e) => (e.type === "delta" ? [e.text] : [])).join("");
      expect(delivered).toBe("Simulated reply");
      expect(error).toBeInstanceOf(StreamBrokenError);
      expect(error).toMatchObject({ kind: "retryable", code, delivered });
      expect((error as StreamBrokenError).cause.code).toBe(code);
    },
  );

  it("leaves the upstream's stream when the consumer stops reading (a client gone)", async () => {
    const iterator = provider.complete(task(), channel(), AbortSignal.timeout(5_000));
    for await (const event of iterator) {
      expect(event.type).toBe("delta");
      break;
    }
    // The simulator is free for the next call at once.
    const reply = await collectChat(
      provider.complete(task(), channel(), AbortSignal.timeout(5_000)),
    );
    expect(reply.finishReason).toBe("stop");
  });
});

describe("the Anthropic adapter's translation", () => {
  it("keys its requests with x-api-key and anthropic-version", async () => {
    const { error } = await run(anthropicChatProvider, {
      id: "sim",
      baseUrl: `${sim.url}/anthropic`,
      apiKey: "",
    });
    expect(error).toMatchObject({ kind: "channel", code: "upstream_401" });
  });
});

describe("the sandbox chat provider", () => {
  const channel = { id: "sandbox-primary" };
  const reply = (t: ChatTask) =>
    collectChat(sandboxChatProvider.complete(t, channel, AbortSignal.timeout(5_000)));

  it("answers the same prompt and seed with the same words, another seed with others", async () => {
    const a = await reply(task({ seed: 1 }));
    expect(await reply(task({ seed: 1 }))).toEqual(a);
    expect((await reply(task({ seed: 2 }))).text).not.toBe(a.text);
    expect(a.text).toMatch(/^On "tell me about the quiet harbor": /);
    expect(a.finishReason).toBe("stop");
  });

  it("reports usage as our tokenizer counts it, and keeps within max tokens", async () => {
    const full = await reply(task());
    expect(full.usage).toEqual({
      promptTokens: countPromptTokens(messages),
      completionTokens: countTextTokens(full.text),
    });
    const short = await reply(task({ maxTokens: 5 }));
    expect(short.finishReason).toBe("length");
    expect(short.usage?.completionTokens).toBeLessThanOrEqual(5);
    expect(full.text.startsWith(short.text)).toBe(true);
  });

  it("streams word by word", async () => {
    const events: ChatEvent[] = [];
    for await (const e of sandboxChatProvider.complete(task(), channel, AbortSignal.timeout(5_000)))
      events.push(e);
    expect(events.filter((e) => e.type === "delta").length).toBeGreaterThan(5);
  });
});
