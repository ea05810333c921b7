import { belowMarket, ceilDiv, countOf, MILLION } from "./units.js";

/**
 * Audio models: speech (TTS), transcription, music and sound effects, in one price table in
 * the ledger's fine unit (units.ts: 1 unit = $0.000001). As for text, each price is 70% of the
 * published market price it carries, checked by a unit test.
 */

/** What `/v1/audio/speech` may answer with (issue 20, item 4). */
export const speechFormats = ["mp3", "wav", "opus", "flac", "pcm"] as const;
export type SpeechFormat = (typeof speechFormats)[number];

/** OpenAI's speech voices; gpt-4o-mini-tts adds the last four. */
const openaiVoices = ["alloy", "ash", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer"];
const openaiMiniTtsVoices = [...openaiVoices, "ballad", "verse", "marin", "cedar"];
/** ElevenLabs' default library voices, as fal's eleven-v3 takes them. */
const elevenVoices = ["Aria", "Roger", "Sarah", "Laura", "Charlie", "George", "River", "Liam"];

/** Where a model is served, by kind of channel, with that upstream's own id (see text-models). */
export interface AudioUpstreamIds {
  openai?: string;
  fal?: string;
  sandbox: string;
}
export type AudioUpstreamKind = keyof AudioUpstreamIds;

interface AudioBase {
  id: string;
  name: string;
  type: "audio";
  upstreamIds: AudioUpstreamIds;
}

export interface SpeechModel extends AudioBase {
  kind: "speech";
  /** Units per million characters of input (characters as characterCount counts them). */
  price: { perMillionCharacters: bigint };
  market: { perMillionCharacters: bigint };
  voices: readonly string[];
  formats: readonly SpeechFormat[];
  maxInputCharacters: number;
}

export interface TranscriptionModel extends AudioBase {
  kind: "transcription";
  /** Units per minute of audio, billed by the second (see transcriptionCost). */
  price: { perMinute: bigint };
  market: { perMinute: bigint };
  /** The longest file the upstream takes, in seconds. */
  maxSeconds: number;
}

/**
 * How a generated clip is priced: by each second of output, by each started minute (a part
 * minute costs a whole one, as the upstream bills it), or one price per clip of any length.
 */
export type ClipPrice =
  | { per: "second"; units: bigint }
  | { per: "minute"; units: bigint }
  | { per: "clip"; units: bigint };

export interface AudioGenerationModel extends AudioBase {
  kind: "music" | "sound_effect";
  price: ClipPrice;
  market: ClipPrice;
  /** Allowed output durations, whole seconds, inclusive. */
  durations: { min: number; max: number };
}

export type AudioModel = SpeechModel | TranscriptionModel | AudioGenerationModel;

const speech = (
  id: string,
  name: string,
  marketPerMillionCharacters: bigint,
  spec: Pick<SpeechModel, "voices" | "formats" | "maxInputCharacters"> & {
    upstreamIds: Omit<AudioUpstreamIds, "sandbox">;
  },
): SpeechModel => ({
  id,
  name,
  type: "audio",
  kind: "speech",
  price: { perMillionCharacters: belowMarket(marketPerMillionCharacters) },
  market: { perMillionCharacters: marketPerMillionCharacters },
  voices: spec.voices,
  formats: spec.formats,
  maxInputCharacters: spec.maxInputCharacters,
  upstreamIds: { ...spec.upstreamIds, sandbox: id },
});

const transcription = (
  id: string,
  name: string,
  marketPerMinute: bigint,
  upstreamIds: Omit<AudioUpstreamIds, "sandbox">,
): TranscriptionModel => ({
  id,
  name,
  type: "audio",
  kind: "transcription",
  price: { perMinute: belowMarket(marketPerMinute) },
  market: { perMinute: marketPerMinute },
  // OpenAI takes files up to 25 MB, about 25 minutes of 128 kbit/s MP3.
  maxSeconds: 1_500,
  upstreamIds: { ...upstreamIds, sandbox: id },
});

const generation = (
  id: string,
  name: string,
  kind: AudioGenerationModel["kind"],
  market: ClipPrice,
  durations: AudioGenerationModel["durations"],
  fal: string,
): AudioGenerationModel => ({
  id,
  name,
  type: "audio",
  kind,
  price: { per: market.per, units: belowMarket(market.units) } as ClipPrice,
  market,
  durations,
  upstreamIds: { fal, sandbox: id },
});

const allFormats = speechFormats;

// Market prices: shared/catalog.md's (OpenAI's and fal's list prices), except tts-1-hd
// (OpenAI's list price) and the sound-effects model (fal's). gpt-4o-mini-tts and the gpt-4o
// transcribe models are listed per token; they are billed here by what the issue asks (per
// character, per second) at the per-character and per-minute prices OpenAI publishes beside
// the token ones: $15 per million characters, $0.006 and $0.003 per minute.
export const audioModels: readonly AudioModel[] = [
  speech("gpt-4o-mini-tts", "GPT-4o mini TTS", 15_000_000n, {
    voices: openaiMiniTtsVoices,
    formats: allFormats,
    maxInputCharacters: 4_096,
    upstreamIds: { openai: "gpt-4o-mini-tts" },
  }),
  speech("tts-1", "TTS-1", 15_000_000n, {
    voices: openaiVoices,
    formats: allFormats,
    maxInputCharacters: 4_096,
    upstreamIds: { openai: "tts-1" },
  }),
  speech("tts-1-hd", "TTS-1 HD", 30_000_000n, {
    voices: openaiVoices,
    formats: allFormats,
    maxInputCharacters: 4_096,
    upstreamIds: { openai: "tts-1-hd" },
  }),
  // $0.10 per 1,000 characters; eleven-v3 takes up to 3,000 characters a request.
  speech("eleven-v3", "ElevenLabs v3", 100_000_000n, {
    voices: elevenVoices,
    formats: ["mp3", "wav", "pcm"],
    maxInputCharacters: 3_000,
    upstreamIds: { fal: "fal-ai/elevenlabs/tts/eleven-v3" },
  }),
  transcription("whisper-1", "Whisper", 6_000n, { openai: "whisper-1" }),
  transcription("gpt-4o-transcribe", "GPT-4o transcribe", 6_000n, {
    openai: "gpt-4o-transcribe",
  }),
  transcription("gpt-4o-mini-transcribe", "GPT-4o mini transcribe", 3_000n, {
    openai: "gpt-4o-mini-transcribe",
  }),
  generation(
    "elevenlabs-music-v2",
    "ElevenLabs Music v2",
    "music",
    { per: "minute", units: 600_000n }, // $0.60 per started minute
    { min: 10, max: 300 },
    "fal-ai/elevenlabs/music",
  ),
  generation(
    "stable-audio-2.5",
    "Stable Audio 2.5",
    "music",
    { per: "clip", units: 200_000n }, // $0.20
    { min: 1, max: 190 },
    "fal-ai/stable-audio-25/text-to-audio",
  ),
  generation(
    "minimax-music-2.5",
    "MiniMax Music 2.5",
    "music",
    { per: "clip", units: 150_000n }, // $0.15
    { min: 10, max: 240 },
    "fal-ai/minimax-music/v2.5",
  ),
  generation(
    "minimax-music-1.5",
    "MiniMax Music 1.5",
    "music",
    { per: "clip", units: 30_000n }, // $0.03
    { min: 10, max: 240 },
    "fal-ai/minimax-music/v1.5",
  ),
  generation(
    "beatoven-sound-effects",
    "Beatoven Sound Effects",
    "sound_effect",
    { per: "clip", units: 100_000n }, // $0.10 per request
    { min: 1, max: 35 },
    "beatoven/sound-effect-generation",
  ),
];

const byId = new Map(audioModels.map((m) => [m.id, m]));

export const findAudioModel = (id: string): AudioModel | undefined => byId.get(id);

/** Our id → the upstream's id for every audio model that kind of channel serves. */
export function audioUpstreamModels(kind: AudioUpstreamKind): Record<string, string> {
  const models: Record<string, string> = {};
  for (const model of audioModels) {
    const upstream = model.upstreamIds[kind];
    if (upstream) models[model.id] = upstream;
  }
  return models;
}

/**
 * Characters as speech is billed: Unicode code points, so an emoji or an accented letter
 * written as one character is one, not the two UTF-16 halves JavaScript's length counts.
 */
export const characterCount = (input: string): number => [...input].length;

/** A speech request's cost in units, known exactly before the call: rounded up once. */
export function speechCost(model: SpeechModel, characters: number): bigint {
  return ceilDiv(countOf("characters", characters) * model.price.perMillionCharacters, MILLION);
}

/**
 * A transcription's cost in units. The audio's length rounds up to the whole second (as OpenAI
 * bills it: a 61.2 s file is 62 s), then the cost rounds up to the unit.
 */
export function transcriptionCost(model: TranscriptionModel, seconds: number): bigint {
  if (!(Number.isFinite(seconds) && seconds >= 0)) {
    throw new RangeError(`seconds must be a finite number >= 0, not ${seconds}`);
  }
  return ceilDiv(BigInt(Math.ceil(seconds)) * model.price.perMinute, 60n);
}

export const offersDuration = (model: AudioGenerationModel, seconds: number): boolean =>
  Number.isInteger(seconds) && seconds >= model.durations.min && seconds <= model.durations.max;

/** A music or sound-effect clip's cost in units, or undefined when it does not offer `seconds`. */
export function audioGenerationCost(
  model: AudioGenerationModel,
  seconds: number,
): bigint | undefined {
  if (!offersDuration(model, seconds)) return undefined;
  const price = model.price;
  switch (price.per) {
    case "clip":
      return price.units;
    case "second":
      return BigInt(seconds) * price.units;
    case "minute":
      return ceilDiv(BigInt(seconds), 60n) * price.units;
  }
}
