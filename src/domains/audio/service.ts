import { ulid } from "ulid";
import type { AppContext, ServiceContext } from "../../context.js";
import { AppError } from "../../errors.js";
import type { Network } from "../../lib/network.js";
import { sha256Hex } from "../../lib/secrets.js";
import type { Routing } from "../../ports.js";
import type { NetworkScope } from "../accounts/caller.js";
import {
  type AudioModel,
  characterCount,
  findAudioModel,
  type SpeechFormat,
  type SpeechModel,
  speechCost,
  type TranscriptionModel,
  transcriptionCost,
} from "../catalog/audio-models.js";
import { findModel } from "../catalog/models.js";
import { findTextModel } from "../catalog/text-models.js";
import { IDEMPOTENCY_TTL_HOURS } from "../idempotency/service.js";
import { getHold, type HoldInput, placeHold, postHold, voidHold } from "../ledger/service.js";
import { audioSeconds } from "../providers/audio-duration.js";
import { speechProviders, transcriptionProviders } from "../providers/audio-providers.js";
import type { Transcription } from "../providers/audio-types.js";
import type { ProviderError, ProviderOutput } from "../providers/types.js";
import { checkPreferences, type RoutingPreferences } from "../routing/preferences.js";
import { type CallResult, type ChannelCall, routeCall } from "../routing/router.js";
import { MAX_SPEECH_INPUT } from "./contract.js";

/**
 * Speech and transcription, the doors that wait (DESIGN §5): quote exactly, hold the quote,
 * route the call over the model's channels, post the hold on success and void it on failure.
 * The quote is the charge: speech is priced by its input's characters and a transcription by
 * its file's seconds, both known before the call, so a failover can never cost more.
 */

export const SPEECH_HOLD_KIND = "speech";
export const TRANSCRIPTION_HOLD_KIND = "transcription";
/** Past it the sweeper voids a hold whose process died mid-call: the crash costs nothing. */
const HOLD_TTL_MS = 60 * 60 * 1000;
/** How many failed attempts one Idempotency-Key may have before it is refused as in use. */
const MAX_ATTEMPTS_PER_KEY = 100;

/** What a call was charged, and who served it. */
export interface AudioCharge {
  charged: bigint;
  upstream: string | null;
  failover: boolean;
  /** An Idempotency-Key replay: the first answer, charged once. */
  replayed: boolean;
}

/** An Idempotency-Key, its owner (account and network) and what the request asked (a hash). */
export interface AudioIdempotency {
  key: string;
  hash: string;
}

function modelOf<K extends AudioModel["kind"]>(
  id: string,
  kind: K,
): Extract<AudioModel, { kind: K }> {
  const model = findAudioModel(id);
  if (model?.kind === kind) return model as Extract<AudioModel, { kind: K }>;
  if (model || findModel(id) || findTextModel(id)) {
    throw new AppError(
      "model_media_mismatch",
      `${id} is not a ${kind} model. GET /v1/models lists them.`,
      { field: "model" },
    );
  }
  throw new AppError("invalid_model", `Unknown model ${id}. GET /v1/models lists them.`, {
    field: "model",
  });
}

/** The speech request as priced: checked against the model, quoted exactly. */
export function quoteSpeech(input: {
  model: string;
  input: string;
  voice: string;
  response_format: SpeechFormat;
}): { model: SpeechModel; characters: number; cost: bigint } {
  const model = modelOf(input.model, "speech");
  const characters = characterCount(input.input);
  const max = Math.min(MAX_SPEECH_INPUT, model.maxInputCharacters);
  if (characters > max) {
    throw new AppError(
      "prompt_too_long",
      `input is ${characters} characters; ${model.id} takes at most ${max}.`,
      { field: "input", max, characters },
    );
  }
  if (!model.voices.includes(input.voice)) {
    throw new AppError(
      "invalid_voice",
      `${model.id} has no voice ${input.voice}. Voices: ${model.voices.join(", ")}.`,
      { field: "voice", voices: model.voices },
    );
  }
  if (!model.formats.includes(input.response_format)) {
    throw new AppError(
      "invalid_audio_format",
      `${model.id} does not answer ${input.response_format}. Formats: ${model.formats.join(", ")}.`,
      { field: "response_format", formats: model.formats },
    );
  }
  return { model, characters, cost: speechCost(model, characters) };
}

/** The transcription as priced: its seconds read from the file's header, quoted exactly. */
export function quoteTranscription(
  modelId: string,
  file: Buffer,
): { model: TranscriptionModel; seconds: number; cost: bigint } {
  const model = modelOf(modelId, "transcription");
  const exact = audioSeconds(file);
  if (exact === undefined || !Number.isFinite(exact)) {
    throw new AppError(
      "invalid_audio",
      "The file's length cannot be read: send a WAV or MP3 file (its duration is read from its header and is what is billed).",
      { field: "file", reason: "unreadable" },
    );
  }
  if (exact <= 0) {
    throw new AppError("invalid_audio", "The file holds no audio.", {
      field: "file",
      reason: "empty",
    });
  }
  const seconds = Math.ceil(exact);
  if (seconds > model.maxSeconds) {
    throw new AppError(
      "invalid_audio",
      `The file is ${seconds} seconds long; ${model.id} takes at most ${model.maxSeconds}.`,
      { field: "file", reason: "too_long", max: model.maxSeconds },
    );
  }
  return { model, seconds, cost: transcriptionCost(model, seconds) };
}

/** A routing failure as the caller sees it; the hold is already voided. */
function failed(error: ProviderError, routing: Routing): AppError {
  if (error.code === "model_unavailable" && routing.attempts.length === 0) {
    return new AppError("model_unavailable", "No upstream channel serves this model now.", {
      field: "model",
    });
  }
  if (error.kind === "caller" && error.code === "unsupported_media") {
    return new AppError("invalid_request", `${error.message} Nothing was charged.`, {
      field: "file",
      reason: error.code,
    });
  }
  return new AppError(
    "generation_failed",
    error.kind === "caller"
      ? `The upstream refused the request (${error.code}); its credits were refunded.`
      : "Every upstream channel failed; the credits held were refunded.",
    { reason: error.code, routing: { upstream: routing.upstream, failover: routing.failover } },
  );
}

/** What a charged call stored for a replay of its Idempotency-Key. */
interface StoredAnswer {
  contentType: string;
  charged: string;
  upstream: string | null;
  failover: boolean;
}

const answerKeys = (holdId: string) => ({
  bytes: `audio/${holdId}.bin`,
  meta: `audio/${holdId}.json`,
});

type Claim =
  | { holdId: string; fresh: true }
  | { holdId: string; fresh: false; answer: StoredAnswer; bytes: Buffer };

/**
 * The hold for this call. Without an Idempotency-Key, a new one. With one, the hold is named
 * after the key (and a counter of failed tries), so no retry, concurrent request or takeover
 * can place a second: a pending one is still running (409), a posted one is replayed from what
 * it stored (no second charge), a voided one frees the next name so the retry runs again. A
 * settled one older than the key's lifetime is passed over: the key may be used afresh.
 */
async function claimHold(
  ctx: AppContext,
  scope: NetworkScope,
  kind: string,
  idempotency: AudioIdempotency | undefined,
): Promise<Claim> {
  if (!idempotency) return { holdId: newAudioHoldId(), fresh: true };
  const base = `aud_${sha256Hex(`${scope.accountId}\n${scope.network}\n${kind}\n${idempotency.key}`).slice(0, 40)}`;
  const reference = `${kind}:${idempotency.hash}`;
  // A key lives as long as every door's (24 hours): a settled hold older than that is passed over.
  const expiredBefore = ctx.clock().getTime() - IDEMPOTENCY_TTL_HOURS * 3600_000;
  for (let n = 0; n < MAX_ATTEMPTS_PER_KEY; n++) {
    const holdId = `${base}_${n}`;
    const hold = await getHold(ctx, holdId);
    if (!hold) return { holdId, fresh: true };
    if (hold.status !== "pending" && hold.createdAt.getTime() <= expiredBefore) continue;
    if (hold.reference !== reference) {
      throw new AppError(
        "idempotency_key_reused",
        "That Idempotency-Key was used with a different request.",
      );
    }
    if (hold.status === "pending") {
      throw new AppError(
        "idempotency_key_in_flight",
        "A request with that Idempotency-Key is still in progress.",
      );
    }
    if (hold.status === "posted") {
      const keys = answerKeys(holdId);
      const [meta, bytes] = await Promise.all([
        ctx.storage.get(keys.meta),
        ctx.storage.get(keys.bytes),
      ]);
      if (!meta || !bytes) throw new Error(`the answer of ${holdId} is not stored`);
      return { holdId, fresh: false, answer: JSON.parse(meta.toString("utf8")), bytes };
    }
  }
  throw new AppError(
    "idempotency_key_in_flight",
    "That Idempotency-Key has failed too many times; use a new one.",
  );
}

/** One priced audio call: what it holds, and how to make it on a channel. */
export interface AudioPlan<T> {
  kind: typeof SPEECH_HOLD_KIND | typeof TRANSCRIPTION_HOLD_KIND;
  model: AudioModel;
  cost: bigint;
  serves: (provider: string) => boolean;
  /** The caller's routing preferences (checkAudioRouting refuses ones the network cannot honour). */
  routing: RoutingPreferences | undefined;
  call: ChannelCall<T>;
  /** The answer as stored for a replay: its bytes and what to say about them. */
  store: (value: T) => { bytes: Buffer; contentType: string };
}

/** Where the call's hold comes from: placed here (with an Idempotency-Key or not), or paid. */
export type HoldSource = { idempotency?: AudioIdempotency | undefined } | { paidHoldId: string };

/** The hold of a plan: its quote, for its kind, expiring after the sweeper's hour. */
export function audioHoldInput(
  ctx: ServiceContext,
  scope: NetworkScope,
  plan: Pick<AudioPlan<unknown>, "kind" | "model" | "cost">,
  holdId: string,
  idempotency?: AudioIdempotency,
): HoldInput {
  return {
    id: holdId,
    network: scope.network,
    ownerId: scope.accountId,
    apiKeyId: scope.apiKeyId,
    amount: plan.cost,
    expiresAt: new Date(ctx.clock().getTime() + HOLD_TTL_MS),
    kind: plan.kind,
    reference: idempotency ? `${plan.kind}:${idempotency.hash}` : `${plan.kind}:${plan.model.id}`,
  };
}

export const newAudioHoldId = () => `aud_${ulid()}`;

/** Refuses routing preferences the network's channels cannot honour: before any hold or payment. */
export function checkAudioRouting(
  ctx: AppContext,
  plan: Pick<AudioPlan<unknown>, "model" | "serves" | "routing">,
  network: Network,
): void {
  checkPreferences(
    ctx.generations.routing.channels,
    [plan.model.id],
    network,
    plan.routing,
    (channel) => plan.serves(channel.provider),
  );
}

const chargeOf = (answer: StoredAnswer, replayed: boolean): AudioCharge => ({
  charged: BigInt(answer.charged),
  upstream: answer.upstream,
  failover: answer.failover,
  replayed,
});

/**
 * Holds the plan's cost (or takes the hold a payment placed), routes its call, and posts the
 * hold on success or voids it on any failure (a full refund). With an Idempotency-Key, the
 * answer is stored before the post so a replay can give it again.
 */
async function chargedCall<T>(
  ctx: AppContext,
  scope: NetworkScope,
  plan: AudioPlan<T>,
  source: HoldSource,
): Promise<{ bytes: Buffer; answer: StoredAnswer; charge: AudioCharge }> {
  if ("paidHoldId" in source) return runOnHold(ctx, scope, plan, source.paidHoldId, false);
  checkAudioRouting(ctx, plan, scope.network);
  const { idempotency } = source;
  const claim = await claimHold(ctx, scope, plan.kind, idempotency);
  if (!claim.fresh) {
    return { bytes: claim.bytes, answer: claim.answer, charge: chargeOf(claim.answer, true) };
  }
  const { holdId } = claim;
  const placed = await placeHold(ctx, audioHoldInput(ctx, scope, plan, holdId, idempotency)).catch(
    (err: unknown) => {
      // Another request with the same key placed it first, a moment ago.
      if (err instanceof AppError && err.code === "idempotency_conflict") {
        throw new AppError(
          "idempotency_key_in_flight",
          "A request with that Idempotency-Key is still in progress.",
        );
      }
      throw err;
    },
  );
  if (placed.replayed) {
    throw new AppError(
      "idempotency_key_in_flight",
      "A request with that Idempotency-Key is still in progress.",
    );
  }
  return runOnHold(ctx, scope, plan, holdId, idempotency !== undefined);
}

async function runOnHold<T>(
  ctx: AppContext,
  scope: NetworkScope,
  plan: AudioPlan<T>,
  holdId: string,
  storeForReplay: boolean,
): Promise<{ bytes: Buffer; answer: StoredAnswer; charge: AudioCharge }> {
  const refund = () =>
    voidHold(ctx, { holdId, id: `${holdId}/void` }).catch((err: unknown) => {
      // Left pending, the hold is voided by the sweeper at its expiry: still a full refund.
      ctx.logger.error({ err, holdId }, "audio hold not voided; the sweeper will");
    });

  let result: CallResult<T>;
  let stored: ReturnType<typeof plan.store>;
  try {
    result = await routeCall(ctx, ctx.generations.routing, {
      model: plan.model.id,
      network: scope.network,
      serves: (channel) => plan.serves(channel.provider),
      preferences: plan.routing,
      call: plan.call,
    });
    if (!result.ok) throw failed(result.error, result.routing);
    stored = plan.store(result.value);
  } catch (err) {
    await refund();
    throw err;
  }
  const answer: StoredAnswer = {
    contentType: stored.contentType,
    charged: plan.cost.toString(),
    upstream: result.routing.upstream,
    failover: result.routing.failover,
  };
  try {
    if (storeForReplay) {
      const keys = answerKeys(holdId);
      await ctx.storage.put(keys.bytes, stored.bytes);
      await ctx.storage.put(keys.meta, Buffer.from(JSON.stringify(answer)));
    }
    await postHold(ctx, { holdId, id: `${holdId}/post`, amount: plan.cost });
  } catch (err) {
    await refund();
    throw err;
  }
  ctx.logger.info(
    { holdId, model: plan.model.id, charged: answer.charged, upstream: answer.upstream },
    `${plan.kind} charged`,
  );
  return { bytes: stored.bytes, answer, charge: chargeOf(answer, false) };
}

export interface SpeechInput {
  model: string;
  input: string;
  voice: string;
  response_format: SpeechFormat;
  speed?: number | undefined;
  instructions?: string | undefined;
  routing?: RoutingPreferences | undefined;
}

/** A speech request checked and priced (4xx here, before any hold or payment). */
export function planSpeech(input: SpeechInput): AudioPlan<ProviderOutput> {
  const { model, cost } = quoteSpeech(input);
  return {
    kind: SPEECH_HOLD_KIND,
    model,
    cost,
    serves: (provider) => provider in speechProviders,
    routing: input.routing,
    call: (channel, upstreamModel, signal) => {
      const provider = speechProviders[channel.provider];
      if (!provider) throw new Error(`no speech adapter for ${channel.provider}`);
      return provider.speak(
        {
          upstreamModel,
          input: input.input,
          voice: input.voice,
          format: input.response_format,
          speed: input.speed,
          instructions: input.instructions,
        },
        channel,
        signal,
      );
    },
    store: (output) => ({ bytes: output.bytes, contentType: output.contentType }),
  };
}

/** Speech from text, charged exactly speechCost of its characters. */
export async function createSpeech(
  ctx: AppContext,
  scope: NetworkScope,
  plan: AudioPlan<ProviderOutput>,
  source: HoldSource = {},
): Promise<{ audio: Buffer; contentType: string; charge: AudioCharge }> {
  const { bytes, answer, charge } = await chargedCall(ctx, scope, plan, source);
  return { audio: bytes, contentType: answer.contentType, charge };
}

export interface TranscriptionInput {
  model: string;
  file: Buffer;
  filename: string;
  contentType: string;
  language?: string | undefined;
  prompt?: string | undefined;
  routing?: RoutingPreferences | undefined;
}

/** A transcription checked and priced by its file's seconds (4xx here, before anything). */
export function planTranscription(
  input: TranscriptionInput,
): AudioPlan<Transcription> & { seconds: number } {
  const { model, seconds, cost } = quoteTranscription(input.model, input.file);
  return {
    kind: TRANSCRIPTION_HOLD_KIND,
    model,
    cost,
    seconds,
    serves: (provider) => provider in transcriptionProviders,
    routing: input.routing,
    call: (channel, upstreamModel, signal) => {
      const provider = transcriptionProviders[channel.provider];
      if (!provider) throw new Error(`no transcription adapter for ${channel.provider}`);
      return provider.transcribe(
        {
          upstreamModel,
          file: input.file,
          filename: input.filename,
          contentType: input.contentType,
          language: input.language,
          prompt: input.prompt,
        },
        channel,
        signal,
      );
    },
    store: (t) => ({ bytes: Buffer.from(t.text, "utf8"), contentType: "text/plain" }),
  };
}

/** Text from audio, charged exactly transcriptionCost of the file's seconds. */
export async function createTranscription(
  ctx: AppContext,
  scope: NetworkScope,
  plan: AudioPlan<Transcription> & { seconds: number },
  source: HoldSource = {},
): Promise<{ text: string; seconds: number; charge: AudioCharge }> {
  const { bytes, charge } = await chargedCall(ctx, scope, plan, source);
  return { text: bytes.toString("utf8"), seconds: plan.seconds, charge };
}
