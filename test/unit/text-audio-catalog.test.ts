import { describe, expect, it } from "vitest";
import {
  type AudioGenerationModel,
  audioGenerationCost,
  audioModels,
  audioUpstreamModels,
  characterCount,
  findAudioModel,
  type SpeechModel,
  speechCost,
  type TranscriptionModel,
  transcriptionCost,
} from "../../src/domains/catalog/audio-models.js";
import { catalog } from "../../src/domains/catalog/models.js";
import {
  affordableReplyTokens,
  chatCost,
  chatHoldFor,
  findTextModel,
  type TextModel,
  textModels,
  textUpstreamModels,
} from "../../src/domains/catalog/text-models.js";
import { ceilDiv } from "../../src/domains/catalog/units.js";
import { channelsFor, defaultChannels } from "../../src/domains/routing/channels.js";
import { UNITS_PER_CREDIT } from "../../src/lib/credits.js";

const text = (id: string) => findTextModel(id) as TextModel;
const speech = (id: string) => findAudioModel(id) as SpeechModel;
const transcriber = (id: string) => findAudioModel(id) as TranscriptionModel;
const clip = (id: string) => findAudioModel(id) as AudioGenerationModel;

/** Every [price, market] pair a model carries. */
function pricePairs(model: TextModel | (typeof audioModels)[number]): Array<[bigint, bigint]> {
  if (model.type === "text") {
    return [
      [model.price.input, model.market.input],
      [model.price.output, model.market.output],
    ];
  }
  if (model.kind === "speech") {
    return [[model.price.perMillionCharacters, model.market.perMillionCharacters]];
  }
  if (model.kind === "transcription") return [[model.price.perMinute, model.market.perMinute]];
  expect(model.price.per, model.id).toBe(model.market.per);
  return [[model.price.units, model.market.units]];
}

describe("the text and audio catalog", () => {
  it("carries 12 text and 12 audio models, which with image and video make 50 or more", () => {
    expect(textModels).toHaveLength(12);
    expect(audioModels).toHaveLength(12);
    const ids = [...catalog, ...textModels, ...audioModels].map((m) => m.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.length).toBeGreaterThanOrEqual(50);
    const kinds = new Set(audioModels.map((m) => m.kind));
    expect(kinds).toEqual(new Set(["speech", "transcription", "music", "sound_effect"]));
  });

  it("prices each model at exactly 70% of its published market price, so inside [0, market]", () => {
    for (const model of [...textModels, ...audioModels]) {
      for (const [price, market] of pricePairs(model)) {
        expect(price, model.id).toBeGreaterThan(0n);
        expect(price, model.id).toBeLessThanOrEqual(market);
        // Exact: no market price of ours loses a fraction of a unit to the discount.
        expect(price * 10n, model.id).toBe(market * 7n);
      }
    }
  });

  it("states prices in the ledger's fine unit: $1 per million tokens is 1,000,000 units", () => {
    // shared/catalog.md: Claude Haiku 4.5 at $1 / $5 → $0.70 / $3.50 per million tokens.
    expect(text("claude-haiku-4.5").price).toEqual({ input: 700_000n, output: 3_500_000n });
    expect(text("gpt-5.5").price).toEqual({ input: 3_500_000n, output: 21_000_000n });
    expect(text("gpt-oss-120b").price).toEqual({ input: 27_300n, output: 126_000n });
    expect(UNITS_PER_CREDIT).toBe(10_000n);
  });

  it("gives each text model sane limits and an upstream id on an OpenAI-format channel", () => {
    for (const model of textModels) {
      expect(model.maxOutputTokens, model.id).toBeLessThanOrEqual(model.contextLength);
      expect(model.upstreamIds.gateway, model.id).toMatch(/^[a-z-]+\/[a-z0-9.-]+$/);
      expect(model.upstreamIds.sandbox).toBe(model.id);
    }
    // Every Claude model is on Anthropic's own API and on a gateway: routing can fail over
    // between the two formats.
    const anthropic = textUpstreamModels("anthropic");
    expect(Object.keys(anthropic).sort()).toEqual([
      "claude-haiku-4.5",
      "claude-opus-5",
      "claude-sonnet-5",
    ]);
    expect(anthropic["claude-haiku-4.5"]).toBe("claude-haiku-4-5");
    expect(textUpstreamModels("openai")).toEqual({
      "gpt-5.5": "gpt-5.5",
      "gpt-5.4-mini": "gpt-5.4-mini",
    });
    expect(Object.keys(textUpstreamModels("gateway"))).toHaveLength(12);
  });

  it("has every new model served offline by the default sandbox channels in test mode", () => {
    for (const model of [...textModels, ...audioModels]) {
      expect(
        channelsFor(defaultChannels, model.id, "test").map((c) => c.id),
        model.id,
      ).toEqual(["sandbox-primary", "sandbox-backup"]);
      expect(channelsFor(defaultChannels, model.id, "live"), model.id).toEqual([]);
    }
    expect(Object.keys(audioUpstreamModels("sandbox"))).toHaveLength(12);
    expect(audioUpstreamModels("openai")["whisper-1"]).toBe("whisper-1");
  });

  it("gives audio models their voices, formats and durations", () => {
    for (const model of audioModels) {
      if (model.kind === "speech") {
        expect(model.voices.length, model.id).toBeGreaterThan(0);
        expect(model.formats.length, model.id).toBeGreaterThan(0);
        expect(model.maxInputCharacters, model.id).toBeLessThanOrEqual(4_096);
      } else if (model.kind !== "transcription") {
        expect(model.durations.min, model.id).toBeGreaterThan(0);
        expect(model.durations.max, model.id).toBeGreaterThanOrEqual(model.durations.min);
      }
    }
    expect(speech("gpt-4o-mini-tts").voices).toContain("marin");
    expect(speech("tts-1").voices).not.toContain("marin");
  });
});

describe("usage pricing", () => {
  it("rounds up once, over the whole amount", () => {
    expect(ceilDiv(0n, 7n)).toBe(0n);
    expect(ceilDiv(7n, 7n)).toBe(1n);
    expect(ceilDiv(8n, 7n)).toBe(2n);
    expect(() => ceilDiv(-1n, 7n)).toThrow(RangeError);
  });

  it("charges a chat its usage: prompt × input + completion × output, rounded up to the unit", () => {
    const haiku = text("claude-haiku-4.5"); // 700,000 / 3,500,000 units per million
    // 1,000 × 0.7 + 300 × 3.5 = 700 + 1,050 = 1,750 units, exactly.
    expect(chatCost(haiku, { promptTokens: 1_000, completionTokens: 300 })).toBe(1_750n);
    // One prompt token is 0.7 units: a part unit rounds up to a whole one.
    expect(chatCost(haiku, { promptTokens: 1, completionTokens: 0 })).toBe(1n);
    // Rounded once over the sum (0.7 + 3.5 = 4.2 → 5), not per part (1 + 4 = 5 here, but:
    expect(chatCost(haiku, { promptTokens: 1, completionTokens: 1 })).toBe(5n);
    // 3 × 0.7 + 1 × 3.5 = 5.6 → 6, where rounding each part would give 3 + 4 = 7).
    expect(chatCost(haiku, { promptTokens: 3, completionTokens: 1 })).toBe(6n);
    expect(chatCost(haiku, { promptTokens: 0, completionTokens: 0 })).toBe(0n);
    // 300 tokens of gpt-oss-120b: 300 × 0.126 = 37.8 → 38 units, a fraction of a credit.
    const oss = text("gpt-oss-120b");
    expect(chatCost(oss, { promptTokens: 0, completionTokens: 300 })).toBe(38n);
    expect(() => chatCost(oss, { promptTokens: -1, completionTokens: 0 })).toThrow(RangeError);
    expect(() => chatCost(oss, { promptTokens: 1.5, completionTokens: 0 })).toThrow(RangeError);
  });

  it("holds the prompt plus the longest reply allowed, capped at the model's maximum", () => {
    const haiku = text("claude-haiku-4.5");
    expect(chatHoldFor(haiku, 1_000, 300)).toBe(1_750n);
    // max_tokens above the model's 64,000 is capped to it; none given is the model's maximum.
    const full = chatCost(haiku, { promptTokens: 1_000, completionTokens: 64_000 });
    expect(chatHoldFor(haiku, 1_000, 1_000_000)).toBe(full);
    expect(chatHoldFor(haiku, 1_000)).toBe(full);
    // The settled cost never exceeds the hold, for any reply within the limit.
    for (const completion of [0, 1, 299, 300]) {
      expect(
        chatCost(haiku, { promptTokens: 1_000, completionTokens: completion }),
      ).toBeLessThanOrEqual(chatHoldFor(haiku, 1_000, 300));
    }
  });

  it("says how long a reply a balance affords", () => {
    const haiku = text("claude-haiku-4.5");
    // 10,000 units = 1 credit: 1,000 prompt tokens cost 700, leaving 9,300 / 3.5 = 2,657 tokens.
    const tokens = affordableReplyTokens(haiku, 1_000, 10_000n);
    expect(tokens).toBe(2_657);
    expect(chatHoldFor(haiku, 1_000, tokens)).toBeLessThanOrEqual(10_000n);
    expect(chatHoldFor(haiku, 1_000, tokens + 1)).toBeGreaterThan(10_000n);
    expect(affordableReplyTokens(haiku, 1_000, 100n)).toBe(0);
    expect(affordableReplyTokens(haiku, 0, 10n ** 12n)).toBe(haiku.maxOutputTokens);
  });

  it("prices speech per character, known before the call", () => {
    // tts-1: $10.50 per million characters = 10.5 units a character.
    expect(speechCost(speech("tts-1"), 4_096)).toBe(43_008n);
    expect(speechCost(speech("tts-1"), 1)).toBe(11n); // 10.5 → 11
    expect(speechCost(speech("tts-1"), 0)).toBe(0n);
    expect(speechCost(speech("eleven-v3"), 1_000)).toBe(70_000n); // $0.07 per 1,000
    // Code points, not UTF-16 halves: "👋 hi" is 4 characters.
    expect(characterCount("👋 hi")).toBe(4);
  });

  it("prices transcription per second of audio, the length rounded up to the second", () => {
    const whisper = transcriber("whisper-1"); // 4,200 units a minute = 70 a second
    expect(transcriptionCost(whisper, 60)).toBe(4_200n);
    expect(transcriptionCost(whisper, 1)).toBe(70n);
    expect(transcriptionCost(whisper, 0.2)).toBe(70n);
    expect(transcriptionCost(whisper, 61.2)).toBe(62n * 70n);
    expect(transcriptionCost(whisper, 0)).toBe(0n);
    expect(transcriptionCost(transcriber("gpt-4o-mini-transcribe"), 61)).toBe(61n * 35n);
    expect(() => transcriptionCost(whisper, Number.NaN)).toThrow(RangeError);
  });

  it("prices music and sound effects per clip, per started minute or per second", () => {
    expect(audioGenerationCost(clip("stable-audio-2.5"), 30)).toBe(140_000n);
    expect(audioGenerationCost(clip("stable-audio-2.5"), 191)).toBeUndefined();
    expect(audioGenerationCost(clip("stable-audio-2.5"), 2.5)).toBeUndefined();
    const music = clip("elevenlabs-music-v2"); // 420,000 units per started minute
    expect(audioGenerationCost(music, 60)).toBe(420_000n);
    expect(audioGenerationCost(music, 61)).toBe(840_000n);
    expect(audioGenerationCost(music, 10)).toBe(420_000n);
    expect(audioGenerationCost(music, 9)).toBeUndefined();
    const perSecond: AudioGenerationModel = {
      ...clip("beatoven-sound-effects"),
      price: { per: "second", units: 1_400n },
    };
    expect(audioGenerationCost(perSecond, 5)).toBe(7_000n);
  });
});
