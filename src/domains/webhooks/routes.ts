import { Router } from "express";
import type { AppContext } from "../../context.js";
import { mountOn } from "../../http/mount.js";
import { webhookContracts } from "./contract.js";
import { getWebhookSecret, rotateWebhookSecret, secretView } from "./service.js";

const noStore = { "cache-control": "no-store" };

/** The account's webhook signing secret: an API key or a wallet session may read and rotate it. */
export function webhookRoutes(ctx: AppContext): Router {
  const router = Router();
  const mount = mountOn(router, ctx);

  mount(webhookContracts.getWebhookSecret, async ({ ctx, caller }) => {
    const row = await getWebhookSecret(ctx, caller.accountId);
    return { status: 200, headers: noStore, body: secretView(row, ctx.clock()) };
  });

  mount(webhookContracts.rotateWebhookSecret, async ({ ctx, caller }) => {
    const row = await rotateWebhookSecret(ctx, caller.accountId);
    return { status: 200, headers: noStore, body: secretView(row, ctx.clock()) };
  });

  return router;
}
