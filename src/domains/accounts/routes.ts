import { Router } from "express";
import { z } from "zod";
import type { ServiceContext } from "../../context.js";
import { authenticate, callerOf } from "../../http/auth.js";
import { scopeOf } from "./caller.js";
import { getAccount } from "./service.js";
import { endSession, issueSignInNonce, signInWithWallet } from "./signin.js";

export const signInRequest = z
  .object({
    message: z.string().min(1).max(4096),
    signature: z
      .string()
      .regex(
        /^0x[0-9a-fA-F]+$/,
        "expected a 0x-prefixed hex signature",
      ) as z.ZodType<`0x${string}`>,
  })
  .strict();

export function accountRoutes(ctx: ServiceContext): Router {
  const router = Router();

  router.post("/v1/auth/nonce", async (_req, res) => {
    res.status(201).json(await issueSignInNonce(ctx));
  });

  router.post("/v1/auth/verify", async (req, res) => {
    const input = signInRequest.parse(req.body);
    const { account, sessionToken, expiresAt } = await signInWithWallet(ctx, input);
    res.status(201).json({
      sessionToken,
      expiresAt,
      account: {
        id: account.id,
        walletAddress: account.walletAddress,
        createdAt: account.createdAt,
      },
    });
  });

  router.post("/v1/auth/logout", authenticate(ctx, { sessions: true }), async (req, res) => {
    const caller = callerOf(req);
    if (caller.kind === "session") await endSession(ctx, caller.sessionId);
    res.status(204).end();
  });

  router.get("/v1/account", authenticate(ctx, { sessions: true }), async (req, res) => {
    res.json(await getAccount(ctx, scopeOf(callerOf(req))));
  });

  return router;
}
