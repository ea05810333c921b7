import { z } from "zod";
import { route } from "../http/openapi/contract.js";

/** The MCP endpoint's entries in the OpenAPI document. */

/** A JSON-RPC message; MCP's own schema says what each method carries. */
const jsonRpcMessage = z.looseObject({ jsonrpc: z.literal("2.0") });

/** How the MCP SDK refuses a request it cannot take (JSON-RPC, not our error shape). */
export const jsonRpcError = z.object({
  jsonrpc: z.literal("2.0"),
  error: z.object({ code: z.number().int(), message: z.string(), data: z.unknown().optional() }),
  id: z.union([z.string(), z.number(), z.null()]),
});

const sdkRefusal = (description: string) => ({ description, schema: jsonRpcError });

const notStateful = (method: "get" | "delete") =>
  route({
    method,
    path: "/mcp",
    operationId: method === "get" ? "mcpGetNotAllowed" : "mcpDeleteNotAllowed",
    summary: "Not offered: the MCP endpoint is stateless (POST only)",
    tag: "MCP",
    auth: [],
    responses: {},
    errors: ["method_not_allowed"],
  });

export const mcpContracts = {
  mcp: route({
    method: "post",
    path: "/mcp",
    operationId: "mcp",
    summary: "MCP over Streamable HTTP (stateless)",
    description:
      "The MCP tools (generate_image, generate_video, generate_audio, generate_text, get_generation, list_models, get_balance) with the caller's API key. Each POST is answered on its own: a request's answer, with its progress notifications, comes back as an event stream. Send `Accept: application/json, text/event-stream`.",
    tag: "MCP",
    auth: ["apiKey"],
    body: {
      schema: z.union([jsonRpcMessage, z.array(jsonRpcMessage)]),
      example: { jsonrpc: "2.0", id: 1, method: "tools/list", params: {} },
    },
    responses: {
      200: {
        description: "The JSON-RPC answer, as an event stream (or JSON).",
        schema: z.string(),
        contentTypes: ["text/event-stream"],
      },
      202: { description: "Notifications and responses only: accepted, no body." },
      400: sdkRefusal("Not a JSON-RPC message, or an unsupported protocol version."),
      406: sdkRefusal("The Accept header lacks application/json or text/event-stream."),
      413: sdkRefusal("The message is too large."),
      415: sdkRefusal("The body is not application/json."),
    },
    errors: [],
  }),
  mcpGetNotAllowed: notStateful("get"),
  mcpDeleteNotAllowed: notStateful("delete"),
};
