import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { Router } from "express";
import { createMcpServer } from "../../packages/mcp/src/tools.js";
import type { AppContext } from "../context.js";
import { keyScopeOf } from "../http/auth.js";
import { mountOn, refuseOtherMethods } from "../http/mount.js";
import { mcpContracts } from "./contract.js";
import { localApi } from "./local-api.js";

/**
 * The MCP tools over Streamable HTTP at /mcp, with the caller's API key. Stateless: each POST
 * gets its own server and transport over the caller's scope, so any API process can answer
 * any request; a tool call's progress streams back in that POST's own event stream.
 */
export function mcpRoutes(ctx: AppContext): Router {
  const router = Router();
  // The SDK reads the JSON-RPC body itself and answers its own refusals.
  mountOn(router, ctx)(
    mcpContracts.mcp,
    async ({ caller, req, res }) => {
      const server = createMcpServer(localApi(ctx, keyScopeOf(caller)), {
        onInternalError: (err) => ctx.logger.error({ err }, "MCP tool failed"),
      });
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
      res.on("close", () => {
        void transport.close();
        void server.close();
      });
      await server.connect(transport);
      await transport.handleRequest(req, res, req.body);
      return undefined;
    },
    { parseBody: false },
  );
  refuseOtherMethods(
    router,
    [mcpContracts.mcpGetNotAllowed, mcpContracts.mcpDeleteNotAllowed],
    "POST",
    "The MCP endpoint is stateless: POST only.",
  );
  return router;
}
