import { z } from "zod";
import { route } from "../../http/openapi/contract.js";
import { aspectRatios, imageResolutions, videoResolutions } from "./models.js";

/** What the catalog route answers, and its entry in the OpenAPI document. */

const resolution = z.enum([...imageResolutions, ...videoResolutions]);

export const catalogMediaModel = z
  .object({
    id: z.string(),
    name: z.string(),
    type: z.enum(["image", "video"]),
    aliases: z.array(z.string()),
    capabilities: z.object({
      resolutions: z.array(resolution),
      aspectRatios: z.array(z.enum(aspectRatios)),
      durations: z.array(z.number().int()).optional().describe("Seconds; video models only."),
      fps: z
        .object({
          options: z
            .array(z.number().int())
            .describe("Frame rates it renders at; a request's `fps` picks one."),
          default: z.number().int().describe("The frame rate used when a request names none."),
        })
        .optional()
        .describe("Video models only."),
    }),
    limits: z.object({
      maxPromptLength: z
        .number()
        .int()
        .describe(
          "The longest prompt this model takes, in characters (the final prompt, with template and passes): 10,000 unless its upstream takes less.",
        ),
      maxReferenceImages: z.number().int(),
    }),
    pricing: z.object({
      unit: z.literal("credits"),
      range: z.object({ min: z.number(), max: z.number() }),
      table: z.array(
        z.object({
          resolution,
          duration: z.number().int().optional(),
          credits: z.number().int(),
        }),
      ),
    }),
  })
  .meta({ id: "CatalogMediaModel" });

const credits = (describe: string) =>
  z.number().describe(`Credits (1 credit = $0.01), at most 4 decimals: ${describe}`);

export const catalogTextModel = z
  .object({
    id: z.string(),
    name: z.string(),
    type: z.literal("text"),
    aliases: z.array(z.string()),
    capabilities: z.object({
      imageInput: z.boolean().describe("Whether a message may carry image parts."),
    }),
    limits: z.object({
      contextLength: z.number().int().describe("Tokens the model reads and writes together."),
      maxOutputTokens: z
        .number()
        .int()
        .describe("The most tokens one reply has; a larger max_tokens is capped to it."),
    }),
    pricing: z.object({
      unit: z.literal("credits"),
      per: z.literal("1M tokens"),
      input: credits("per million prompt tokens."),
      output: credits("per million completion tokens."),
    }),
  })
  .meta({ id: "CatalogTextModel" });

const audioBase = {
  id: z.string(),
  name: z.string(),
  type: z.literal("audio"),
  aliases: z.array(z.string()),
};

const speechModel = z.object({
  ...audioBase,
  kind: z.literal("speech").describe("Text to speech: POST /v1/audio/speech."),
  capabilities: z.object({ voices: z.array(z.string()), formats: z.array(z.string()) }),
  limits: z.object({ maxInputCharacters: z.number().int() }),
  pricing: z.object({
    unit: z.literal("credits"),
    per: z.literal("1M characters"),
    credits: credits("per million characters of input."),
  }),
});

const transcriptionModel = z.object({
  ...audioBase,
  kind: z.literal("transcription").describe("Speech to text: POST /v1/audio/transcriptions."),
  capabilities: z.object({}),
  limits: z.object({ maxSeconds: z.number().int().describe("The longest file, in seconds.") }),
  pricing: z.object({
    unit: z.literal("credits"),
    per: z.literal("minute"),
    credits: credits("per minute of audio, billed by the started second."),
  }),
});

const audioGenerationModel = z.object({
  ...audioBase,
  kind: z
    .enum(["music", "sound_effect"])
    .describe('Generated through POST /v1/generate with mediaType "audio" and a duration.'),
  capabilities: z.object({
    durations: z
      .object({ min: z.number().int(), max: z.number().int() })
      .describe("Whole seconds a request's duration may take, inclusive."),
  }),
  limits: z.object({}),
  pricing: z.object({
    unit: z.literal("credits"),
    per: z
      .enum(["clip", "second", "minute"])
      .describe("Per clip of any length, per second of output, or per started minute."),
    credits: credits("per clip, second or started minute."),
  }),
});

export const catalogAudioModel = z
  .discriminatedUnion("kind", [speechModel, transcriptionModel, audioGenerationModel])
  .meta({ id: "CatalogAudioModel" });

export const catalogModel = z
  .discriminatedUnion("type", [catalogMediaModel, catalogTextModel, catalogAudioModel])
  .describe("A model; `type` says which: image, video, text or audio.")
  .meta({ id: "CatalogModel" });

export const catalogContracts = {
  listModels: route({
    method: "get",
    path: "/v1/models",
    operationId: "listModels",
    summary: "The catalog: models, capabilities and prices",
    tag: "Catalog",
    auth: [],
    responses: {
      200: {
        description: "Every model.",
        schema: z.object({ data: z.array(catalogModel) }),
      },
    },
    errors: [],
  }),
};
