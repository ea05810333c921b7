import { Router } from "express";
import type { AppContext } from "../../context.js";
import { mountOn } from "../../http/mount.js";
import { scopeOf } from "./caller.js";
import { accountContracts } from "./contract.js";
import { getAccount } from "./service.js";
import { endSession, issueSignInNonce, signInWithWallet } from "./signin.js";

export function accountRoutes(ctx: AppContext): Router {
  const router = Router();
  const mount = mountOn(router, ctx);

  mount(accountContracts.createSignInNonce, async () => ({
    status: 201,
    body: await issueSignInNonce(ctx),
  }));

  mount(accountContracts.signIn, async ({ ctx, body }) => {
    const { account, sessionToken, expiresAt } = await signInWithWallet(ctx, body);
    return {
      status: 201,
      body: {
        sessionToken,
        expiresAt,
        account: {
          id: account.id,
          walletAddress: account.walletAddress,
          createdAt: account.createdAt,
        },
      },
    };
  });

  mount(accountContracts.signOut, async ({ ctx, caller }) => {
    if (caller.kind === "session") await endSession(ctx, caller.sessionId);
    return { status: 204, body: undefined };
  });

  mount(accountContracts.getAccount, async ({ ctx, caller }) => ({
    status: 200,
    body: await getAccount(ctx, scopeOf(caller)),
  }));

  return router;
}
