import { belowMarket, ceilDiv, countOf, MILLION } from "./units.js";

/**
 * Text (chat) models: one price table, in the ledger's fine unit (units.ts: 1 unit =
 * $0.000001, so a rate per million tokens is its dollar price times a million). Each price is
 * 70% of the published market price it carries (shared/catalog.md: "around 30% below market"),
 * which a unit test checks, so a price cannot drift from its source.
 */

/**
 * Where a model is served, by kind of channel, with that upstream's own model id:
 * `openai` and `anthropic` are the vendors' own APIs, `gateway` an OpenAI-compatible
 * aggregator (vendor/model ids), `sandbox` the offline provider (our own id, as its "*" channel
 * serves every model under it). A deployment's channel maps our id to one of these.
 */
export interface TextUpstreamIds {
  openai?: string;
  anthropic?: string;
  gateway: string;
  sandbox: string;
}
export type TextUpstreamKind = keyof TextUpstreamIds;

/** Units per million tokens. */
export interface TokenRates {
  input: bigint;
  output: bigint;
}

export interface TextModel {
  id: string;
  name: string;
  type: "text";
  /** Tokens the model reads and writes together. */
  contextLength: number;
  /** The most tokens one reply can have; a request's max_tokens above it is capped to it. */
  maxOutputTokens: number;
  /** Whether a message may carry image parts. */
  imageInput: boolean;
  /** What we charge, units per million tokens. */
  price: TokenRates;
  /** The published market price it is derived from, units per million tokens. */
  market: TokenRates;
  upstreamIds: TextUpstreamIds;
}

interface TextSpec {
  /** Market price per million tokens, in units ($5 = 5_000_000n). */
  market: [input: bigint, output: bigint];
  contextLength: number;
  maxOutputTokens: number;
  imageInput: boolean;
  upstreamIds: Omit<TextUpstreamIds, "sandbox">;
}

const text = (id: string, name: string, spec: TextSpec): TextModel => ({
  id,
  name,
  type: "text",
  contextLength: spec.contextLength,
  maxOutputTokens: spec.maxOutputTokens,
  imageInput: spec.imageInput,
  price: { input: belowMarket(spec.market[0]), output: belowMarket(spec.market[1]) },
  market: { input: spec.market[0], output: spec.market[1] },
  upstreamIds: { ...spec.upstreamIds, sandbox: id },
});

// Market prices: the first ten are shared/catalog.md's (a large text gateway's list prices);
// Qwen and Mistral, which it asks for without prices, carry their vendors' list prices.
export const textModels: readonly TextModel[] = [
  text("gpt-5.5", "GPT-5.5", {
    market: [5_000_000n, 30_000_000n], // $5 / $30
    contextLength: 400_000,
    maxOutputTokens: 128_000,
    imageInput: true,
    upstreamIds: { openai: "gpt-5.5", gateway: "openai/gpt-5.5" },
  }),
  text("gpt-5.4-mini", "GPT-5.4 mini", {
    market: [750_000n, 4_500_000n], // $0.75 / $4.50
    contextLength: 400_000,
    maxOutputTokens: 128_000,
    imageInput: true,
    upstreamIds: { openai: "gpt-5.4-mini", gateway: "openai/gpt-5.4-mini" },
  }),
  text("claude-opus-5", "Claude Opus 5", {
    market: [5_000_000n, 25_000_000n], // $5 / $25
    contextLength: 200_000,
    maxOutputTokens: 64_000,
    imageInput: true,
    upstreamIds: { anthropic: "claude-opus-5", gateway: "anthropic/claude-opus-5" },
  }),
  text("claude-sonnet-5", "Claude Sonnet 5", {
    market: [3_000_000n, 15_000_000n], // $3 / $15
    contextLength: 200_000,
    maxOutputTokens: 64_000,
    imageInput: true,
    upstreamIds: { anthropic: "claude-sonnet-5", gateway: "anthropic/claude-sonnet-5" },
  }),
  text("claude-haiku-4.5", "Claude Haiku 4.5", {
    market: [1_000_000n, 5_000_000n], // $1 / $5
    contextLength: 200_000,
    maxOutputTokens: 64_000,
    imageInput: true,
    // Anthropic's own id spells the version with a dash.
    upstreamIds: { anthropic: "claude-haiku-4-5", gateway: "anthropic/claude-haiku-4.5" },
  }),
  text("gemini-3.1-pro-preview", "Gemini 3.1 Pro", {
    market: [2_000_000n, 12_000_000n], // $2 / $12
    contextLength: 1_048_576,
    maxOutputTokens: 65_536,
    imageInput: true,
    upstreamIds: { gateway: "google/gemini-3.1-pro-preview" },
  }),
  text("gemini-3.5-flash", "Gemini 3.5 Flash", {
    market: [1_500_000n, 9_000_000n], // $1.50 / $9
    contextLength: 1_048_576,
    maxOutputTokens: 65_536,
    imageInput: true,
    upstreamIds: { gateway: "google/gemini-3.5-flash" },
  }),
  text("deepseek-v4-pro", "DeepSeek V4 Pro", {
    market: [435_000n, 870_000n], // $0.435 / $0.87
    contextLength: 131_072,
    maxOutputTokens: 65_536,
    imageInput: false,
    upstreamIds: { gateway: "deepseek/deepseek-v4-pro" },
  }),
  text("llama-4-maverick", "Llama 4 Maverick", {
    market: [150_000n, 600_000n], // $0.15 / $0.60
    contextLength: 1_048_576,
    maxOutputTokens: 16_384,
    imageInput: true,
    upstreamIds: { gateway: "meta-llama/llama-4-maverick" },
  }),
  text("gpt-oss-120b", "gpt-oss-120b", {
    market: [39_000n, 180_000n], // $0.039 / $0.18
    contextLength: 131_072,
    maxOutputTokens: 32_768,
    imageInput: false,
    upstreamIds: { gateway: "openai/gpt-oss-120b" },
  }),
  text("qwen3-235b-a22b", "Qwen3 235B A22B", {
    market: [700_000n, 2_800_000n], // $0.70 / $2.80
    contextLength: 131_072,
    maxOutputTokens: 32_768,
    imageInput: false,
    upstreamIds: { gateway: "qwen/qwen3-235b-a22b" },
  }),
  text("mistral-medium-3", "Mistral Medium 3", {
    market: [400_000n, 2_000_000n], // $0.40 / $2
    contextLength: 131_072,
    maxOutputTokens: 32_768,
    imageInput: true,
    upstreamIds: { gateway: "mistralai/mistral-medium-3" },
  }),
];

const byId = new Map(textModels.map((m) => [m.id, m]));

export const findTextModel = (id: string): TextModel | undefined => byId.get(id);

/**
 * Our id → the upstream's id, for every text model that kind of channel serves: the `models`
 * map of a CHANNELS entry.
 */
export function textUpstreamModels(kind: TextUpstreamKind): Record<string, string> {
  const models: Record<string, string> = {};
  for (const model of textModels) {
    const upstream = model.upstreamIds[kind];
    if (upstream) models[model.id] = upstream;
  }
  return models;
}

export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
}

/** What a reply cost, in units: prompt × input rate + completion × output rate, rounded up once. */
export function chatCost(model: TextModel, usage: TokenUsage): bigint {
  const prompt = countOf("promptTokens", usage.promptTokens);
  const completion = countOf("completionTokens", usage.completionTokens);
  return ceilDiv(prompt * model.price.input + completion * model.price.output, MILLION);
}

/** The reply length a request may reach: its max_tokens, capped at the model's maximum. */
export function replyTokenLimit(model: TextModel, maxTokens?: number): number {
  if (maxTokens === undefined) return model.maxOutputTokens;
  countOf("maxTokens", maxTokens);
  return Math.min(maxTokens, model.maxOutputTokens);
}

/**
 * What to hold before a chat call whose cost is known only after it (issue 20, item 3): the
 * prompt at the input rate plus the longest reply it may get at the output rate. The settled
 * cost (chatCost of the real usage) can never exceed it, since completion ≤ that longest reply.
 */
export function chatHoldFor(model: TextModel, promptTokens: number, maxTokens?: number): bigint {
  return chatCost(model, {
    promptTokens,
    completionTokens: replyTokenLimit(model, maxTokens),
  });
}

/**
 * The longest reply a balance pays for after the prompt, for a 402 that says how many tokens
 * the caller can afford: 0 when the prompt alone is not covered.
 */
export function affordableReplyTokens(
  model: TextModel,
  promptTokens: number,
  balanceUnits: bigint,
): number {
  // cost(n) = ⌈(prompt·in + n·out) / 1e6⌉ ≤ balance  ⇔  prompt·in + n·out ≤ balance·1e6.
  const budget = balanceUnits * MILLION - countOf("promptTokens", promptTokens) * model.price.input;
  if (budget < 0n) return 0;
  const tokens = budget / model.price.output;
  return Number(tokens > BigInt(model.maxOutputTokens) ? BigInt(model.maxOutputTokens) : tokens);
}
