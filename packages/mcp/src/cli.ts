#!/usr/bin/env node
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { loadConfig } from "./config.js";
import { httpApi } from "./http-api.js";
import { createMcpServer } from "./tools.js";

/**
 * polyforge-mcp: Polyforge's tools over stdio for Claude Desktop, Cursor and other MCP clients,
 * talking to the HTTP API at POLYFORGE_API_URL. stdout carries the protocol only; messages go
 * to stderr.
 */
try {
  const config = loadConfig(process.env);
  const server = createMcpServer(httpApi(config), {
    onInternalError: (err) =>
      process.stderr.write(`polyforge-mcp: a tool failed: ${(err as Error)?.stack ?? err}\n`),
  });
  await server.connect(new StdioServerTransport());
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(1);
}
