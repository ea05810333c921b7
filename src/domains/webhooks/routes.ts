import { Router } from "express";
import type { AppContext } from "../../context.js";
import { authenticate, callerOf } from "../../http/auth.js";
import { getWebhookSecret, rotateWebhookSecret, secretView } from "./service.js";

/** The account's webhook signing secret: an API key or a wallet session may read and rotate it. */
export function webhookRoutes(ctx: AppContext): Router {
  const router = Router();
  const auth = authenticate(ctx, { sessions: true });

  router.get("/v1/webhooks/secret", auth, async (req, res) => {
    const row = await getWebhookSecret(ctx, callerOf(req).accountId);
    res.set("cache-control", "no-store").json(secretView(row, ctx.clock()));
  });

  router.post("/v1/webhooks/secret/rotate", auth, async (req, res) => {
    const row = await rotateWebhookSecret(ctx, callerOf(req).accountId);
    res.set("cache-control", "no-store").json(secretView(row, ctx.clock()));
  });

  return router;
}
