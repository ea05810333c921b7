import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { createMcpServer } from "../../packages/mcp/src/tools.js";
import { httpApi } from "./api.js";

/**
 * `polyforge mcp`: the tools over stdio for Claude Desktop, Cursor and other MCP clients,
 * talking to the HTTP API. stdout carries the protocol only; logs go to stderr.
 */
export async function runStdioServer(options: { apiUrl: string; apiKey: string }) {
  const server = createMcpServer(httpApi(options.apiUrl, options.apiKey));
  await server.connect(new StdioServerTransport());
  return server;
}
