import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { z } from "zod";
import type { PolyforgeApi } from "./api.js";
import { answer, reading } from "./tool-answer.js";

/** get_balance: the caller's credits as GET /v1/balance gives them. */
export function registerAccountTools(server: McpServer, api: PolyforgeApi): void {
  server.registerTool(
    "get_balance",
    {
      title: "Get balance",
      description:
        "Your credit balance (1 credit = $0.01), credits held by work in flight, and your membership tier.",
      inputSchema: {},
      outputSchema: {
        creditBalance: z.number(),
        heldCredits: z.number(),
        earnings: z.number(),
        membershipTier: z.string(),
        network: z.string(),
      },
      annotations: reading,
    },
    async () => answer(async () => ({ ...(await api.balance()) })),
  );
}
