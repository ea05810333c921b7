import { z } from "zod";
import { AppError } from "../../errors.js";
import type { Network } from "../../lib/network.js";
import {
  type AspectRatio,
  aspectRatios,
  type CatalogModel,
  findModel,
  priceOf,
  type Resolution,
} from "../catalog/models.js";
import { type Channel, channelsFor } from "../routing/channels.js";

export const MAX_PROMPT_LENGTH = 4000;
export const MAX_MODELS = 6;
export const MAX_REFERENCE_IMAGES = 8;

/** A render seed: the same prompt and seed render the same output. */
export const seedSchema = z
  .number()
  .int()
  .min(0)
  .max(2 ** 31 - 1)
  .optional();

/**
 * POST /v1/generate, as the public contract has it. zod checks shapes; `quote` then checks
 * every field against the catalog with a precise error code per problem.
 */
export const generateRequest = z
  .object({
    prompt: z.string().trim().min(1, "prompt is required"),
    mediaType: z.enum(["image", "video"]).default("image"),
    models: z.array(z.string().min(1).max(100)).min(1, "at least one model is required"),
    aspectRatio: z.string().default("1:1"),
    resolution: z.string().optional(),
    duration: z.number().int().positive().optional(),
    referenceImageUrls: z
      .array(z.url({ protocol: /^https?$/ }).max(2048))
      .max(MAX_REFERENCE_IMAGES)
      .default([]),
    stylePassIds: z.array(z.string().min(1)).max(10).default([]),
    templateId: z.string().min(1).optional(),
    reservationId: z.string().min(1).max(64).optional(),
    seed: seedSchema,
    /** Receives the generation, signed (Standard Webhooks), when it completes or fails. */
    webhookUrl: z
      .url({ protocol: /^https?$/ })
      .max(2048)
      .optional(),
  })
  .strict();

export type GenerateRequest = z.infer<typeof generateRequest>;

export interface QuotedModel {
  model: CatalogModel;
  credits: bigint;
}

export interface Quote {
  mediaType: "image" | "video";
  resolution: Resolution;
  aspectRatio: AspectRatio;
  duration: number | undefined;
  models: QuotedModel[];
  total: bigint;
}

const fail = (code: ConstructorParameters<typeof AppError>[0], message: string, field: string) =>
  new AppError(code, message, { field });

/** Validates a request against the catalog and the network's channels, and prices it. */
export function quote(
  request: GenerateRequest,
  network: Network,
  channels: readonly Channel[],
): Quote {
  if (request.prompt.length > MAX_PROMPT_LENGTH) {
    throw fail(
      "prompt_too_long",
      `The prompt has ${request.prompt.length} characters; the limit is ${MAX_PROMPT_LENGTH}.`,
      "prompt",
    );
  }
  if (request.models.length > MAX_MODELS) {
    throw fail(
      "too_many_models",
      `At most ${MAX_MODELS} models per generation; got ${request.models.length}.`,
      "models",
    );
  }
  if (request.stylePassIds.length) {
    throw fail(
      "pass_not_found",
      `Style pass ${request.stylePassIds[0]} does not exist.`,
      "stylePassIds",
    );
  }
  if (request.templateId)
    throw fail(
      "template_not_found",
      `Template ${request.templateId} does not exist.`,
      "templateId",
    );
  const mediaType = request.mediaType;
  if (!(aspectRatios as readonly string[]).includes(request.aspectRatio)) {
    throw fail(
      "invalid_aspect_ratio",
      `Aspect ratio ${request.aspectRatio} is not offered; use one of ${aspectRatios.join(", ")}.`,
      "aspectRatio",
    );
  }
  const aspectRatio = request.aspectRatio as AspectRatio;
  const resolution = (request.resolution ?? (mediaType === "image" ? "1K" : "720p")) as Resolution;
  if (mediaType === "video" && request.duration === undefined) {
    throw fail("duration_required", "A video generation needs a duration in seconds.", "duration");
  }
  if (mediaType === "image" && request.duration !== undefined) {
    throw fail("invalid_duration", "An image generation takes no duration.", "duration");
  }

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
    const credits = priceOf(model, { resolution, duration: request.duration });
    if (credits === undefined) {
      throw fail("invalid_resolution", `${model.id} has no price for these options.`, "resolution");
    }
    if (channelsFor(channels, model.id, network).length === 0) {
      throw fail(
        "model_unavailable",
        `${model.id} is not available on ${network} right now.`,
        "models",
      );
    }
    return { model, credits: BigInt(credits) };
  });
  return {
    mediaType,
    resolution,
    aspectRatio,
    duration: request.duration,
    models,
    total: models.reduce((sum, m) => sum + m.credits, 0n),
  };
}
