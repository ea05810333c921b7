import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { registerAccountTools } from "./account-tools.js";
import type { PolyforgeApi } from "./api.js";
import { registerCatalogTools } from "./catalog-tools.js";
import { registerGenerationTools, type ToolOptions } from "./generation-tools.js";
import { registerTextTools } from "./text-tools.js";

export type { ToolOptions };

/**
 * The MCP tools: the same ones over stdio (`polyforge mcp`) and Streamable HTTP (`/mcp`).
 * Generating submits, then waits for the result with exponential backoff, telling the client
 * its progress; a generation that outlives the wait comes back with its id and status, for
 * get_generation later. API refusals come back as tool errors carrying the API's code.
 */
export function createMcpServer(api: PolyforgeApi, options: ToolOptions = {}): McpServer {
  const server = new McpServer({ name: "polyforge", version: "0.1.0" });
  // Registration order is the order clients list the tools in.
  registerGenerationTools(server, api, options);
  registerTextTools(server, api);
  registerCatalogTools(server, api);
  registerAccountTools(server, api);
  return server;
}
