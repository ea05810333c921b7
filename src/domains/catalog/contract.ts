import { z } from "zod";
import { route } from "../../http/openapi/contract.js";
import { aspectRatios, imageResolutions, videoResolutions } from "./models.js";

/** What the catalog route answers, and its entry in the OpenAPI document. */

const resolution = z.enum([...imageResolutions, ...videoResolutions]);

export const catalogModel = z
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
