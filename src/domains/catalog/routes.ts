import { Router } from "express";
import type { z } from "zod";
import type { AppContext } from "../../context.js";
import { mountOn } from "../../http/mount.js";
import { creditsToJson } from "../../lib/credits.js";
import { MAX_REFERENCE_IMAGES } from "../generations/request.js";
import { type AudioModel, audioModels } from "./audio-models.js";
import { type catalogAudioModel, catalogContracts, type catalogTextModel } from "./contract.js";
import { catalog, priceTable } from "./models.js";
import { type TextModel, textModels } from "./text-models.js";

/** A text model as the catalog lists it: prices in credits per million tokens. */
function textModelJson(m: TextModel): z.output<typeof catalogTextModel> {
  return {
    id: m.id,
    name: m.name,
    type: m.type,
    aliases: [] as string[],
    capabilities: { imageInput: m.imageInput },
    limits: { contextLength: m.contextLength, maxOutputTokens: m.maxOutputTokens },
    pricing: {
      unit: "credits" as const,
      per: "1M tokens" as const,
      input: creditsToJson(m.price.input),
      output: creditsToJson(m.price.output),
    },
  };
}

/** An audio model as the catalog lists it: its kind and its price per unit, in credits. */
function audioModelJson(m: AudioModel): z.output<typeof catalogAudioModel> {
  const base = { id: m.id, name: m.name, type: m.type, aliases: [] as string[] };
  switch (m.kind) {
    case "speech":
      return {
        ...base,
        kind: m.kind,
        capabilities: { voices: [...m.voices], formats: [...m.formats] },
        limits: { maxInputCharacters: m.maxInputCharacters },
        pricing: {
          unit: "credits" as const,
          per: "1M characters" as const,
          credits: creditsToJson(m.price.perMillionCharacters),
        },
      };
    case "transcription":
      return {
        ...base,
        kind: m.kind,
        capabilities: {},
        limits: { maxSeconds: m.maxSeconds },
        pricing: {
          unit: "credits" as const,
          per: "minute" as const,
          credits: creditsToJson(m.price.perMinute),
        },
      };
    default:
      return {
        ...base,
        kind: m.kind,
        capabilities: { durations: { min: m.durations.min, max: m.durations.max } },
        limits: {},
        pricing: {
          unit: "credits" as const,
          per: m.price.per,
          credits: creditsToJson(m.price.units),
        },
      };
  }
}

/** The public catalog as GET /v1/models (and MCP's list_models) show it. */
export function catalogJson() {
  return {
    data: [
      ...mediaModelsJson(),
      ...textModels.map(textModelJson),
      ...audioModels.map(audioModelJson),
    ],
  };
}

/** Image and video models, exactly as they were listed before text and audio joined. */
function mediaModelsJson() {
  return catalog.map((m) => ({
    id: m.id,
    name: m.name,
    type: m.type,
    aliases: m.aliases,
    capabilities: {
      resolutions: m.resolutions,
      aspectRatios: m.aspectRatios,
      durations: m.type === "video" ? m.durations : undefined,
      fps: m.fps && { options: m.fps.options, default: m.fps.default },
    },
    limits: { maxPromptLength: m.maxPromptLength, maxReferenceImages: MAX_REFERENCE_IMAGES },
    pricing: {
      unit: "credits",
      range: { min: m.range[0], max: m.range[1] },
      table: priceTable(m),
    },
  }));
}

/** GET /v1/models: the public catalog, no key needed. */
export function catalogRoutes(ctx: AppContext): Router {
  const router = Router();
  const body = catalogJson();
  mountOn(router, ctx)(catalogContracts.listModels, async () => ({
    status: 200,
    headers: { "cache-control": "public, max-age=300" },
    body,
  }));
  return router;
}
