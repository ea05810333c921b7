import { describe, expect, it } from "vitest";
import { z } from "zod";
import * as tools from "../../packages/mcp/src/schemas.js";
import { speechFormats } from "../../src/domains/catalog/audio-models.js";
import {
  aspectRatios,
  imageResolutions,
  videoResolutions,
} from "../../src/domains/catalog/models.js";
import { chatMessage } from "../../src/domains/chat/messages.js";
import { generateRequestFields, MAX_MODELS } from "../../src/domains/generations/request.js";

/**
 * The MCP tools (packages/mcp, which may not import the server) keep their own copy of the
 * API's request fields: they must take exactly what the API takes, whatever they describe.
 */
// A fresh registry leaves out what .describe() and .meta() say (and the API's $defs ids).
const accepted = (schema: z.ZodType) =>
  JSON.parse(
    JSON.stringify(z.toJSONSchema(schema, { io: "input", metadata: z.registry() }), (key, value) =>
      key === "default" || key === "$schema" ? undefined : value,
    ),
  );

const request = generateRequestFields.shape;

describe("the MCP tools' input fields", () => {
  it("are POST /v1/generate's own, routing preferences included", () => {
    const { aspectRatio, ...shared } = tools.generateFields;
    for (const [name, field] of Object.entries(shared)) {
      expect({ name, schema: accepted(field) }).toEqual({
        name,
        schema: accepted(request[name as keyof typeof shared]),
      });
    }
    // Narrowed on purpose: the catalog's ratios as an enum, for agents to choose from.
    expect(accepted(aspectRatio).enum).toContain("16:9");
    expect(accepted(shared.routing).properties.sort.enum).toEqual(["price", "latency"]);
    expect(accepted(tools.models("x"))).toEqual(accepted(request.models.max(MAX_MODELS)));
  });

  it("offer the catalog's own resolutions, aspect ratios and speech formats", () => {
    expect(tools.imageResolutions).toEqual(imageResolutions);
    expect(tools.videoResolutions).toEqual(videoResolutions);
    expect(tools.aspectRatios).toEqual(aspectRatios);
    expect(tools.speechFormats).toEqual(speechFormats);
  });

  it("take chat messages as POST /v1/chat/completions does", () => {
    expect(accepted(tools.chatMessage)).toEqual(accepted(chatMessage));
  });
});
