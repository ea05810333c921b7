import { encode } from "gpt-tokenizer/encoding/o200k_base";
import { type ChatMessage, partsOf } from "./messages.js";

/**
 * Counts a prompt's tokens offline, for the hold placed before a chat call and for settling
 * when the upstream reports no usage (issue 20, item 3). It uses o200k_base, the encoding of
 * OpenAI's current models; other families tokenize differently, so for them it is an estimate
 * (the upstream's reported usage is what settles when there is one).
 *
 * Framing follows OpenAI's published recipe for its chat models: each message costs 3 tokens
 * beyond its role and content, a `name` 1 more, and every reply is primed with 3.
 */

const TOKENS_PER_MESSAGE = 3;
const TOKENS_PER_NAME = 1;
const REPLY_PRIMING = 3;

/**
 * Images are counted at a fixed cost, since their size is not known without fetching them:
 * OpenAI's price of a 1024×1024 image at high detail on GPT-4o (85 + 4 tiles × 170 = 765),
 * and its flat 85 at low detail.
 */
export const IMAGE_TOKENS = { low: 85, default: 765 } as const;

/**
 * A run this long without whitespace is encoded in pieces: byte-pair encoding one long piece
 * takes time that grows much faster than its length (10,000 "a"s, 0.2 s; 40,000, 2 s), which
 * one request could use to stall the process. Each cut can add a token, never remove one, so
 * such a count errs high: safe for a hold.
 */
const MAX_RUN = 200;
const LONG_RUN = new RegExp(`\\S{${MAX_RUN + 1},}`, "g");
const PIECE = new RegExp(`[\\s\\S]{1,${MAX_RUN}}`, "g");

export function countTextTokens(text: string): number {
  if (text.search(LONG_RUN) === -1) return encode(text).length;
  let tokens = 0;
  let at = 0;
  for (const run of text.matchAll(LONG_RUN)) {
    tokens += encode(text.slice(at, run.index)).length;
    for (const piece of run[0].match(PIECE) ?? []) tokens += encode(piece).length;
    at = run.index + run[0].length;
  }
  return tokens + encode(text.slice(at)).length;
}

export function countPromptTokens(messages: readonly ChatMessage[]): number {
  let tokens = REPLY_PRIMING;
  for (const message of messages) {
    tokens += TOKENS_PER_MESSAGE + countTextTokens(message.role);
    if (message.name) tokens += TOKENS_PER_NAME + countTextTokens(message.name);
    for (const part of partsOf(message)) {
      if (part.type === "text") tokens += countTextTokens(part.text);
      else tokens += part.image_url.detail === "low" ? IMAGE_TOKENS.low : IMAGE_TOKENS.default;
    }
  }
  return tokens;
}
