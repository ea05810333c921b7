import { z } from "zod";
import { AppError } from "../../errors.js";
import { creditUnits } from "../../lib/credits.js";
import type { Network } from "../../lib/network.js";
import {
  type AudioGenerationModel,
  audioGenerationCost,
  findAudioModel,
} from "../catalog/audio-models.js";
import {
  type AspectRatio,
  aspectRatios,
  type CatalogModel,
  findModel,
  MAX_PROMPT_LENGTH,
  type MediaType,
  priceOf,
  type Resolution,
} from "../catalog/models.js";
import type { PassDefaults } from "../passes/schema.js";
import type { AppliedPass } from "../passes/service.js";
import { makesAudioGeneration } from "../providers/audio-providers.js";
import { providers } from "../providers/index.js";
import { type Channel, channelsFor } from "../routing/channels.js";
import { checkPreferences, routingPreferences } from "../routing/preferences.js";

/** What a request's template and style passes make of it, before it is priced. */
export interface Composition {
  prompt: string;
  negativePrompt: string | null;
  passes: AppliedPass[];
  /** Options the passes default, for those the request leaves out (the first pass that sets one wins). */
  defaults: PassDefaults;
}

export const MAX_MODELS = 6;
export const MAX_REFERENCE_IMAGES = 8;

/** A render seed: the same prompt and seed render the same output. */
export const seedSchema = z
  .number()
  .int()
  .min(0)
  .max(2 ** 31 - 1)
  .optional();

/** Style passes and a template: the same fields on every generation door. */
export const creativeFields = {
  stylePassIds: z.array(z.string().min(1).max(64)).max(10),
  templateId: z.string().min(1).max(64).optional(),
  /** Values of the template's `{{variables}}`; the template's defaults fill the rest. */
  templateVariables: z
    .record(z.string().min(1).max(64), z.string().max(MAX_PROMPT_LENGTH))
    .optional(),
};

/**
 * POST /v1/generate, as the public contract has it. zod checks shapes; `quote` then checks
 * every field against the catalog with a precise error code per problem.
 */
export const generateRequestFields = z
  .object({
    // The length is checked when quoting, on the final prompt and against each model's limit.
    prompt: z
      .string()
      .trim()
      .min(1, "prompt is required")
      .optional()
      .describe(
        "1–10,000 characters, with the template and passes' text (less where a model's limits.maxPromptLength says so). Optional with a template: the template's text comes first, then this.",
      ),
    mediaType: z
      .enum(["image", "video", "audio"])
      .optional()
      .describe(
        "Without it: video when every model is a video model, audio when every one is a music or sound-effect model, else image.",
      ),
    models: z.array(z.string().min(1).max(100)).min(1, "at least one model is required"),
    /** 1:1 unless a style pass gives another default. */
    aspectRatio: z.string().optional(),
    resolution: z.string().optional(),
    duration: z
      .number()
      .int()
      .positive()
      .optional()
      .describe(
        "Seconds. Required for video (one of each model's capabilities.durations) and audio (within each model's capabilities.durations min–max); an image takes none.",
      ),
    fps: z
      .number()
      .int()
      .positive()
      .optional()
      .describe(
        "Video only: frames a second, one that every model offers (capabilities.fps in GET /v1/models); without it each model's default. The price does not depend on it.",
      ),
    referenceImageUrls: z
      .array(z.url({ protocol: /^https?$/ }).max(2048))
      .max(MAX_REFERENCE_IMAGES)
      .default([]),
    ...creativeFields,
    stylePassIds: creativeFields.stylePassIds.default([]),
    reservationId: z.string().min(1).max(64).optional(),
    seed: seedSchema,
    /** Receives the generation, signed (Standard Webhooks), when it completes or fails. */
    webhookUrl: z
      .url({ protocol: /^https?$/ })
      .max(2048)
      .optional(),
    routing: routingPreferences.optional(),
  })
  .strict();

/** The checks across fields: a prompt or a template, and template values only with one. */
export function refineGenerateRequest(
  request: {
    prompt?: string | undefined;
    templateId?: string | undefined;
    templateVariables?: unknown;
  },
  issues: z.core.$RefinementCtx,
) {
  if (request.prompt === undefined && request.templateId === undefined) {
    issues.addIssue({ code: "custom", path: ["prompt"], message: "prompt is required" });
  }
  if (request.templateVariables !== undefined && request.templateId === undefined) {
    issues.addIssue({
      code: "custom",
      path: ["templateVariables"],
      message: "templateVariables need a templateId",
    });
  }
}

/** POST /v1/generate's body (`generateRequestFields` is its shape, to derive others from). */
export const generateRequest = generateRequestFields.superRefine(refineGenerateRequest);

export type GenerateRequest = z.infer<typeof generateRequest>;

/**
 * The request's media type: the one it names, else what its models make. Only a request whose
 * every model is a known video model is a video request unasked; any other (mixed, unknown
 * models) stays an image request, and quoting then names the model that does not fit.
 */
export function mediaTypeOf(request: {
  mediaType?: GenerationMediaType | undefined;
  models: readonly string[];
}): GenerationMediaType {
  if (request.mediaType) return request.mediaType;
  if (request.models.every((name) => findModel(name)?.type === "video")) return "video";
  return request.models.every((name) => audioGenerationModel(name)) ? "audio" : "image";
}

/** What /v1/generate makes: images, videos, and (music and sound effects) audio. */
export type GenerationMediaType = MediaType | "audio";

/** A music or sound-effect model by id: the audio models /v1/generate runs. */
export function audioGenerationModel(name: string): AudioGenerationModel | undefined {
  const model = findAudioModel(name);
  return model && (model.kind === "music" || model.kind === "sound_effect") ? model : undefined;
}

export interface QuotedModel {
  model: CatalogModel | AudioGenerationModel;
  /** The frame rate it renders at (video only): the request's, else the model's default. */
  fps: number | undefined;
  /** The model's own price. */
  credits: bigint;
  /** What its result holds and is charged: the model's price and every pass fee. */
  cost: bigint;
}

export interface Quote {
  mediaType: GenerationMediaType;
  /** The final prompt: template, the caller's prompt, then each pass's fragment. */
  prompt: string;
  negativePrompt: string | null;
  resolution: Resolution;
  aspectRatio: AspectRatio;
  duration: number | undefined;
  /** The frame rate the caller chose, if any (each model's own is on its entry). */
  fps: number | undefined;
  models: QuotedModel[];
  /** The passes applied, in order, with the fee each model result pays for each. */
  passes: AppliedPass[];
  total: bigint;
}

/** The channels a job can run on: those whose provider has an adapter for the media (see run.ts). */
const makesImagesOrVideo = (channel: Channel) => providers[channel.provider] !== undefined;

const fail = (code: ConstructorParameters<typeof AppError>[0], message: string, field: string) =>
  new AppError(code, message, { field });

/**
 * Validates a request, with its composition (template and passes, see compose.ts), against the
 * catalog and the network's channels, and prices it: each model's price plus every pass fee,
 * per model result.
 */
export function quote(
  request: GenerateRequest,
  network: Network,
  channels: readonly Channel[],
  composition: Composition,
): Quote {
  if (!composition.prompt) {
    throw fail("invalid_request", "The composed prompt is empty.", "prompt");
  }
  // A template's text is the caller's only through the values they filled in.
  const promptField = request.templateId ? "templateVariables" : "prompt";
  if (composition.prompt.length > MAX_PROMPT_LENGTH) {
    throw new AppError(
      "prompt_too_long",
      `The prompt has ${composition.prompt.length.toLocaleString("en-US")} characters; the limit is ${MAX_PROMPT_LENGTH.toLocaleString("en-US")}.`,
      { field: promptField, limit: MAX_PROMPT_LENGTH },
    );
  }
  if (request.models.length > MAX_MODELS) {
    throw fail(
      "too_many_models",
      `At most ${MAX_MODELS} models per generation; got ${request.models.length}.`,
      "models",
    );
  }
  const mediaType = mediaTypeOf(request);
  if (mediaType === "audio") return quoteAudio(request, network, channels, composition);
  if (request.mediaType === undefined) {
    // Unasked, the models decide; ones that disagree are the error, not the options that follow.
    const known = request.models.flatMap((name) => findModel(name) ?? []);
    const image = known.find((m) => m.type === "image");
    const video = known.find((m) => m.type === "video");
    if (image && video) {
      throw fail(
        "model_media_mismatch",
        `${image.id} makes images and ${video.id} makes videos; one generation makes one media type.`,
        "models",
      );
    }
  }
  const requestedRatio = request.aspectRatio ?? composition.defaults.aspectRatio ?? "1:1";
  if (!(aspectRatios as readonly string[]).includes(requestedRatio)) {
    throw fail(
      "invalid_aspect_ratio",
      `Aspect ratio ${requestedRatio} is not offered; use one of ${aspectRatios.join(", ")}.`,
      "aspectRatio",
    );
  }
  const aspectRatio = requestedRatio as AspectRatio;
  const resolution = (request.resolution ??
    composition.defaults.resolution ??
    (mediaType === "image" ? "1K" : "720p")) as Resolution;
  if (mediaType === "video" && request.duration === undefined) {
    throw fail("duration_required", "A video generation needs a duration in seconds.", "duration");
  }
  if (mediaType === "image" && request.duration !== undefined) {
    throw fail("invalid_duration", "An image generation takes no duration.", "duration");
  }
  if (mediaType === "image" && request.fps !== undefined) {
    throw fail("invalid_fps", "An image generation takes no fps.", "fps");
  }

  const passFees = composition.passes.reduce((sum, p) => sum + p.fee, 0n);
  const seen = new Set<string>();
  const models: QuotedModel[] = request.models.map((name) => {
    const model = findModel(name);
    if (!model)
      throw fail("invalid_model", `Unknown model ${name}. GET /v1/models lists them.`, "models");
    if (seen.has(model.id))
      throw fail("duplicate_model", `Model ${model.id} is listed twice.`, "models");
    seen.add(model.id);
    if (model.type !== mediaType) {
      throw fail(
        "model_media_mismatch",
        `${model.id} makes ${model.type}s, not ${mediaType}s.`,
        "models",
      );
    }
    if (!model.resolutions.includes(resolution)) {
      throw fail(
        "invalid_resolution",
        `${model.id} offers ${model.resolutions.join(", ")}, not ${resolution}.`,
        "resolution",
      );
    }
    if (!model.aspectRatios.includes(aspectRatio)) {
      throw fail(
        "invalid_aspect_ratio",
        `${model.id} offers ${model.aspectRatios.join(", ")}, not ${aspectRatio}.`,
        "aspectRatio",
      );
    }
    if (mediaType === "video" && !model.durations.includes(request.duration as number)) {
      throw fail(
        "invalid_duration",
        `${model.id} offers ${model.durations.join(", ")} seconds, not ${request.duration}.`,
        "duration",
      );
    }
    if (request.fps !== undefined && !model.fps?.options.includes(request.fps)) {
      throw fail(
        "invalid_fps",
        `${model.id} renders at ${model.fps?.options.join(", ")} fps, not ${request.fps}.`,
        "fps",
      );
    }
    if (composition.prompt.length > model.maxPromptLength) {
      throw new AppError(
        "prompt_too_long",
        `The prompt has ${composition.prompt.length.toLocaleString("en-US")} characters; ${model.id} takes at most ${model.maxPromptLength.toLocaleString("en-US")}.`,
        { field: promptField, model: model.id, limit: model.maxPromptLength },
      );
    }
    const credits = priceOf(model, { resolution, duration: request.duration });
    if (credits === undefined) {
      throw fail("invalid_resolution", `${model.id} has no price for these options.`, "resolution");
    }
    if (channelsFor(channels, model.id, network).filter(makesImagesOrVideo).length === 0) {
      throw fail(
        "model_unavailable",
        `${model.id} is not available on ${network} right now.`,
        "models",
      );
    }
    const fps = mediaType === "video" ? (request.fps ?? model.fps?.default) : undefined;
    // The catalog prices in whole credits; the ledger counts units.
    const price = creditUnits(credits);
    return { model, fps, credits: price, cost: price + passFees };
  });
  checkPreferences(
    channels,
    models.map((m) => m.model.id),
    network,
    request.routing,
    makesImagesOrVideo,
  );
  return {
    mediaType,
    prompt: composition.prompt,
    negativePrompt: composition.negativePrompt,
    resolution,
    aspectRatio,
    duration: request.duration,
    fps: request.fps,
    models,
    passes: composition.passes,
    total: models.reduce((sum, m) => sum + m.cost, 0n),
  };
}

/**
 * A music or sound-effect request: its models are audio generation models (not speech or
 * transcription, which have their own doors), its duration one each offers; priced exactly by
 * audioGenerationCost, in units. Images' options (resolution, aspect ratio, fps, reference
 * images) do not apply and are refused when given.
 */
function quoteAudio(
  request: GenerateRequest,
  network: Network,
  channels: readonly Channel[],
  composition: Composition,
): Quote {
  if (request.duration === undefined) {
    throw fail("duration_required", "An audio generation needs a duration in seconds.", "duration");
  }
  const duration = request.duration;
  if (request.fps !== undefined) throw fail("invalid_fps", "Audio takes no fps.", "fps");
  if (request.resolution !== undefined) {
    throw fail("invalid_resolution", "Audio takes no resolution.", "resolution");
  }
  if (request.aspectRatio !== undefined) {
    throw fail("invalid_aspect_ratio", "Audio takes no aspect ratio.", "aspectRatio");
  }
  if (request.referenceImageUrls.length > 0) {
    throw fail("invalid_request", "Audio takes no reference images.", "referenceImageUrls");
  }
  const passFees = composition.passes.reduce((sum, p) => sum + p.fee, 0n);
  const seen = new Set<string>();
  const models: QuotedModel[] = request.models.map((name) => {
    const known = findAudioModel(name);
    const visual = findModel(name);
    if (!known && !visual)
      throw fail("invalid_model", `Unknown model ${name}. GET /v1/models lists them.`, "models");
    if (visual) {
      throw fail(
        "model_media_mismatch",
        `${visual.id} makes ${visual.type}s, not audio.`,
        "models",
      );
    }
    const model = audioGenerationModel(name);
    if (!model) {
      const door = known?.kind === "speech" ? "/v1/audio/speech" : "/v1/audio/transcriptions";
      throw fail(
        "audio_model_not_generative",
        `${name} is a ${known?.kind} model, used through POST ${door}; /v1/generate makes music and sound effects.`,
        "models",
      );
    }
    if (seen.has(model.id))
      throw fail("duplicate_model", `Model ${model.id} is listed twice.`, "models");
    seen.add(model.id);
    const price = audioGenerationCost(model, duration);
    if (price === undefined) {
      throw fail(
        "invalid_duration",
        `${model.id} makes ${model.durations.min}–${model.durations.max} seconds, not ${duration}.`,
        "duration",
      );
    }
    if (channelsFor(channels, model.id, network).filter(makesAudioGeneration).length === 0) {
      throw fail(
        "model_unavailable",
        `${model.id} is not available on ${network} right now.`,
        "models",
      );
    }
    return { model, fps: undefined, credits: price, cost: price + passFees };
  });
  checkPreferences(
    channels,
    models.map((m) => m.model.id),
    network,
    request.routing,
    makesAudioGeneration,
  );
  return {
    mediaType: "audio",
    prompt: composition.prompt,
    negativePrompt: composition.negativePrompt,
    // Stored with the request like an image's; no audio adapter reads them.
    resolution: "1K",
    aspectRatio: "1:1",
    duration,
    fps: undefined,
    models,
    passes: composition.passes,
    total: models.reduce((sum, m) => sum + m.cost, 0n),
  };
}

/** A quote as the API shows it: what each model costs, what each pass adds, the total held. */
export function quoteBreakdown(priced: Quote) {
  const results = BigInt(priced.models.length);
  return {
    models: priced.models.map((m) => ({ model: m.model.id, credits: m.credits })),
    passFees: priced.passes.map((p) => ({
      passId: p.id,
      fee: p.fee,
      uses: priced.models.length,
      credits: p.fee * results,
    })),
    total: priced.total,
  };
}
