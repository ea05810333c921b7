import type { Command } from "commander";
import { pino } from "pino";
import { loadConfig, processEnv } from "../config.js";
import { AppError } from "../errors.js";
import { stopOnSignals } from "../lib/shutdown.js";
import { createLogger } from "../logger.js";
import { runStdioServer } from "../mcp/stdio.js";

export function addMcpCommand(program: Command) {
  program
    .command("mcp")
    .description(
      "The MCP server over stdio (Claude Desktop, Cursor…), talking to the API at POLYFORGE_API_URL with POLYFORGE_API_KEY",
    )
    .action(async () => {
      const config = loadConfig(processEnv());
      // stdout is the protocol's: logs go to stderr.
      const logger = createLogger(config, pino.destination(2));
      if (!config.mcp.apiKey) {
        throw new AppError(
          "missing_api_key",
          "Set POLYFORGE_API_KEY to an API key (and POLYFORGE_API_URL to the API, default http://localhost:3000).",
        );
      }
      const server = await runStdioServer({ apiUrl: config.mcp.apiUrl, apiKey: config.mcp.apiKey });
      logger.info({ apiUrl: config.mcp.apiUrl }, "MCP server on stdio");
      stopOnSignals(logger, 5_000, [["MCP server", () => server.close()]]);
    });
}
