import { Router } from "express";
import type { AppContext } from "../../context.js";
import { mountOn } from "../../http/mount.js";
import { scopeOf } from "../accounts/caller.js";
import { keyContracts } from "./contract.js";
import { createApiKey, listApiKeys, revokeApiKey, updateApiKeyLimits } from "./service.js";

// Keys are managed with an API key (its own network only) or a wallet sign-in session.
export function keyRoutes(ctx: AppContext): Router {
  const router = Router();
  const mount = mountOn(router, ctx);

  // The secret is shown once: a replay of the same Idempotency-Key answers without it.
  mount(
    keyContracts.createApiKey,
    async ({ ctx, caller, body }) => {
      const { apiKey, key } = await createApiKey(ctx, scopeOf(caller), body);
      return { status: 201, body: { ...apiKey, key } };
    },
    { secret: ["key"] },
  );

  mount(keyContracts.listApiKeys, async ({ ctx, caller, query }) => ({
    status: 200,
    body: { data: await listApiKeys(ctx, scopeOf(caller), query) },
  }));

  mount(keyContracts.updateApiKey, async ({ ctx, caller, params, body }) => ({
    status: 200,
    body: await updateApiKeyLimits(ctx, scopeOf(caller), params.id, body.limits),
  }));

  mount(keyContracts.revokeApiKey, async ({ ctx, caller, params }) => ({
    status: 200,
    body: await revokeApiKey(ctx, scopeOf(caller), params.id),
  }));

  return router;
}
