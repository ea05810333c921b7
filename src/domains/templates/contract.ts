import { z } from "zod";
import { route } from "../../http/openapi/contract.js";
import { networks } from "../../lib/network.js";
import {
  createTemplateRequest,
  listTemplatesQuery,
  templateIdParams,
  templateVariable,
} from "./routes.js";

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
        schema: z.object({ data: z.array(promptTemplate), nextCursor: z.string().nullable() }),
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
