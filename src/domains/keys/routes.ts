import { Router } from "express";
import { z } from "zod";
import type { ServiceContext } from "../../context.js";
import { authenticate, callerOf } from "../../http/auth.js";
import { idempotent } from "../../http/idempotency.js";
import { networks } from "../../lib/network.js";
import { scopeOf } from "../accounts/caller.js";
import { createApiKey, listApiKeys, revokeApiKey } from "./service.js";

export const createApiKeyRequest = z
  .object({
    name: z
      .string()
      .trim()
      .min(1)
      .max(100)
      .regex(/^[^\p{Cc}]*$/u, "must not contain control characters"),
    network: z.enum(networks).optional(),
  })
  .strict();

export const listApiKeysQuery = z.object({ network: z.enum(networks).optional() }).strict();

export const apiKeyIdParams = z.object({ id: z.string().min(1).max(64) });

export function keyRoutes(ctx: ServiceContext): Router {
  const router = Router();
  // Keys are managed with an API key (its own network only) or a wallet sign-in session.
  const auth = authenticate(ctx, { sessions: true });

  // The secret is shown once: a replay of the same Idempotency-Key answers without it.
  const createOnce = idempotent(ctx, { secret: ["key"] });
  router.post("/v1/api-keys", auth, createOnce, async (req, res) => {
    const input = createApiKeyRequest.parse(req.body);
    const { apiKey, key } = await createApiKey(ctx, scopeOf(callerOf(req)), input);
    res.status(201).json({ ...apiKey, key });
  });

  router.get("/v1/api-keys", auth, async (req, res) => {
    const filter = listApiKeysQuery.parse(req.query);
    res.json({ data: await listApiKeys(ctx, scopeOf(callerOf(req)), filter) });
  });

  router.delete("/v1/api-keys/:id", auth, async (req, res) => {
    const { id } = apiKeyIdParams.parse(req.params);
    res.json(await revokeApiKey(ctx, scopeOf(callerOf(req)), id));
  });

  return router;
}
