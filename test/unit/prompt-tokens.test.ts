import { encodeChat } from "gpt-tokenizer/encoding/o200k_base";
import { describe, expect, it } from "vitest";
import {
  type ChatMessage,
  chatMessage,
  hasImages,
  textOf,
} from "../../src/domains/chat/messages.js";
import { countPromptTokens, countTextTokens, IMAGE_TOKENS } from "../../src/domains/chat/tokens.js";

describe("countPromptTokens", () => {
  it("counts text with o200k_base: 'Hello, world!' is 4 tokens", () => {
    expect(countTextTokens("Hello, world!")).toBe(4);
    expect(countTextTokens("")).toBe(0);
  });

  it("adds OpenAI's framing: 3 a message, its role, and 3 to prime the reply", () => {
    const messages = [
      { role: "system", content: "You are helpful." }, // 3 + 1 + 4
      { role: "user", content: "Hello, world!" }, // 3 + 1 + 4
    ] satisfies ChatMessage[];
    expect(countPromptTokens(messages)).toBe(3 + 8 + 8);
    // The same count as the tokenizer's own chat encoding of GPT-4o.
    expect(countPromptTokens(messages)).toBe(encodeChat(messages, "gpt-4o").length);
    expect(countPromptTokens([])).toBe(3);
  });

  it("counts a name 1 token beyond its text", () => {
    const plain = countPromptTokens([{ role: "user", content: "hi" }]);
    expect(countPromptTokens([{ role: "user", content: "hi", name: "alice" }])).toBe(
      plain + 1 + countTextTokens("alice"),
    );
  });

  it("counts text parts as their text and a string as one text part", () => {
    const asString = countPromptTokens([{ role: "user", content: "a long day at the sea" }]);
    const asParts = countPromptTokens([
      {
        role: "user",
        content: [
          { type: "text", text: "a long day" },
          { type: "text", text: " at the sea" },
        ],
      },
    ]);
    expect(asParts).toBe(asString);
  });

  it("counts each image part at a stated fixed cost: 765, or 85 at low detail", () => {
    const base = countPromptTokens([{ role: "user", content: [{ type: "text", text: "what?" }] }]);
    const image = (detail?: "low" | "high"): ChatMessage => ({
      role: "user",
      content: [
        { type: "text", text: "what?" },
        { type: "image_url", image_url: { url: "https://example.com/a.png", detail } },
      ],
    });
    expect(countPromptTokens([image()])).toBe(base + IMAGE_TOKENS.default);
    expect(countPromptTokens([image("high")])).toBe(base + 765);
    expect(countPromptTokens([image("low")])).toBe(base + 85);
    expect(hasImages([image()])).toBe(true);
    expect(textOf(image())).toBe("what?");
  });

  it("takes an assistant turn with null content", () => {
    expect(countPromptTokens([{ role: "assistant", content: null }])).toBe(3 + 3 + 1);
  });

  it("parses OpenAI's message shapes and refuses others", () => {
    expect(chatMessage.safeParse({ role: "user", content: "hi" }).success).toBe(true);
    expect(
      chatMessage.safeParse({
        role: "user",
        content: [{ type: "image_url", image_url: { url: "data:image/png;base64,AA==" } }],
      }).success,
    ).toBe(true);
    // Images come from users only; unknown roles and part types are refused.
    expect(
      chatMessage.safeParse({
        role: "system",
        content: [{ type: "image_url", image_url: { url: "https://x/a.png" } }],
      }).success,
    ).toBe(false);
    expect(chatMessage.safeParse({ role: "tool", content: "x" }).success).toBe(false);
    expect(chatMessage.safeParse({ role: "user", content: [{ type: "audio" }] }).success).toBe(
      false,
    );
  });
});

describe("a long run without whitespace", () => {
  it("is counted in pieces: a count that errs high, never low, and never stalls", () => {
    const run = "a".repeat(100_000);
    // 200 characters a piece: each piece's own count, summed.
    expect(countTextTokens(run)).toBe(500 * countTextTokens("a".repeat(200)));
    expect(countTextTokens(`start ${"b".repeat(450)} end`)).toBe(
      countTextTokens("start ") +
        2 * countTextTokens("b".repeat(200)) +
        countTextTokens("b".repeat(50)) +
        countTextTokens(" end"),
    );
    // Text without such runs is counted as one piece, exactly.
    expect(countTextTokens("hello world")).toBe(2);
  });
});
