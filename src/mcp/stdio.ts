import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { createMcpServer } from "../../packages/mcp/src/tools.js";
import { httpApi } from "./api.js";

/**
 * `polyforge mcp`: the tools over stdio for Claude Desktop, Cursor and other MCP clients,
 * talking to the HTTP API. stdout carries the protocol only; logs go to stderr.
 */
export async function runStdioServer(options: { apiUrl: string; apiKey: string }) {
  const server = createMcpServer(httpApi(options.apiUrl, options.apiKey), {
    // stdout is the protocol's: a tool's unexpected failure is told on stderr, as the logs are.
    onInternalError: (err) =>
      process.stderr.write(`polyforge mcp: a tool failed: ${(err as Error)?.stack ?? err}\n`),
  });
  await server.connect(new StdioServerTransport());
  return server;
}
