import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { Router } from "express";
import type { AppContext } from "../context.js";
import { AppError } from "../errors.js";
import { authenticate, keyScopeOf } from "../http/auth.js";
import { localApi } from "./local-api.js";
import { createMcpServer } from "./tools.js";

/**
 * The MCP tools over Streamable HTTP at /mcp, with the caller's API key. Stateless: each POST
 * gets its own server and transport over the caller's scope, so any API process can answer
 * any request; a tool call's progress streams back in that POST's own event stream.
 */
export function mcpRoutes(ctx: AppContext): Router {
  const router = Router();
  router.post("/mcp", authenticate(ctx), async (req, res) => {
    const server = createMcpServer(localApi(ctx, keyScopeOf(req)));
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on("close", () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  });
  router.all("/mcp", () => {
    throw new AppError(
      "method_not_allowed",
      "The MCP endpoint is stateless: POST only.",
      undefined,
      {
        headers: { allow: "POST" },
      },
    );
  });
  return router;
}
