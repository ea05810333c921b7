import { z } from "zod";
import { pageSchema } from "../../http/cursor.js";
import { route } from "../../http/openapi/contract.js";
import { networks } from "../../lib/network.js";
import { MAX_PROMPT_LENGTH } from "../catalog/models.js";

const MAX_VARIABLES = 20;
/** The table's own check (prompt_templates_text_length) holds a template's text to this. */
const MAX_TEMPLATE_TEXT_LENGTH = 4000;
const variableName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, "a variable name is letters, digits and _");

export const templateVariable = z
  .object({
    default: z.string().max(MAX_PROMPT_LENGTH).optional(),
    maxLength: z.number().int().min(1).max(MAX_PROMPT_LENGTH).default(200),
    allowed: z
      .array(z.string().min(1).max(MAX_PROMPT_LENGTH))
      .min(1)
      .max(50)
      .optional()
      .describe("When set, the only values accepted."),
  })
  .strict();

export const createTemplateRequest = z
  .object({
    name: z.string().trim().min(1).max(80),
    description: z.string().trim().max(2000).default(""),
    text: z
      .string()
      .trim()
      .min(1)
      .max(MAX_TEMPLATE_TEXT_LENGTH)
      .describe("The prompt, with {{variables}} where each generation fills in its own values."),
    variables: z
      .record(variableName, templateVariable)
      .default({})
      .refine((v) => Object.keys(v).length <= MAX_VARIABLES, `at most ${MAX_VARIABLES} variables`),
    visibility: z.enum(["public", "unlisted"]).default("public"),
  })
  .strict();

export const templateIdParams = z.object({
  id: z.string().regex(/^tpl_[0-9a-z]{26}$/, "not a template id"),
});

export const listTemplatesQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(100).default(20),
    cursor: z.string().max(200).optional(),
    creator: z
      .string()
      .regex(/^(me|acc_[0-9a-z]{26})$/, "an account id, or me")
      .optional(),
  })
  .strict();

/** What the prompt template routes answer, and their OpenAPI entries. */

export const promptTemplate = z
  .object({
    id: z.string(),
    creatorId: z.string(),
    network: z.enum(networks),
    name: z.string(),
    description: z.string(),
    text: z.string(),
    variables: z.record(z.string(), templateVariable),
    visibility: z.enum(["public", "unlisted"]),
    createdAt: z.iso.datetime(),
  })
  .meta({ id: "PromptTemplate" });

const templateExample = {
  id: "tpl_01kaxyz0000000000000000000",
  creatorId: "acc_01kaxyz0000000000000000000",
  network: "test",
  name: "Product shot",
  description: "",
  text: "studio photo of {{product}} on a {{surface}} surface",
  variables: { product: { maxLength: 80 }, surface: { default: "marble", maxLength: 40 } },
  visibility: "public",
  createdAt: "2026-11-21T19:20:01.123Z",
};

export const templateContracts = {
  createTemplate: route({
    method: "post",
    path: "/v1/templates",
    operationId: "createTemplate",
    summary: "Save a prompt template",
    description:
      "Text with {{variables}}, each declared with an optional default, a maximum length and optionally the only values allowed. Generations use it with templateId and templateVariables: the filled-in text comes first in the prompt.",
    tag: "Creators",
    auth: ["apiKey"],
    body: {
      schema: createTemplateRequest,
      example: {
        name: "Product shot",
        text: "studio photo of {{product}} on a {{surface}} surface",
        variables: { product: { maxLength: 80 }, surface: { default: "marble" } },
      },
    },
    idempotent: true,
    responses: {
      201: { description: "The template.", schema: promptTemplate, example: templateExample },
    },
    errors: ["invalid_template"],
  }),
  listTemplates: route({
    method: "get",
    path: "/v1/templates",
    operationId: "listTemplates",
    summary: "Browse prompt templates, newest first",
    description: "Public templates on the key's network and your own.",
    tag: "Creators",
    auth: ["apiKey"],
    query: listTemplatesQuery,
    responses: {
      200: {
        description: "A page of templates.",
        schema: pageSchema(promptTemplate),
        example: { data: [templateExample], nextCursor: null },
      },
    },
    errors: [],
  }),
  getTemplate: route({
    method: "get",
    path: "/v1/templates/:id",
    operationId: "getTemplate",
    summary: "One prompt template",
    tag: "Creators",
    auth: ["apiKey"],
    params: templateIdParams,
    responses: {
      200: { description: "The template.", schema: promptTemplate, example: templateExample },
    },
    errors: ["not_found"],
  }),
};
