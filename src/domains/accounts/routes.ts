import { Router } from "express";
import type { ServiceContext } from "../../context.js";
import { mountOn } from "../../http/mount.js";
import { scopeOf } from "./caller.js";
import { accountContracts } from "./contract.js";
import { getAccount } from "./service.js";
import { endSession, issueSignInNonce, signInWithWallet } from "./signin.js";

export function accountRoutes(ctx: ServiceContext): Router {
  const router = Router();
  const mount = mountOn(router, ctx);

  mount(accountContracts.createSignInNonce, async () => ({
    status: 201,
    body: await issueSignInNonce(ctx),
  }));

  mount(accountContracts.signIn, async ({ body }) => {
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

  mount(accountContracts.signOut, async ({ caller }) => {
    if (caller.kind === "session") await endSession(ctx, caller.sessionId);
    return { status: 204, body: undefined };
  });

  mount(accountContracts.getAccount, async ({ caller }) => ({
    status: 200,
    body: await getAccount(ctx, scopeOf(caller)),
  }));

  return router;
}
