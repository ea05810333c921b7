import { Router } from "express";
import type { AppContext } from "../../context.js";
import { AppError } from "../../errors.js";
import { keyScopeOf } from "../../http/auth.js";
import { pageOf } from "../../http/cursor.js";
import { mountOn } from "../../http/mount.js";
import { creditsToJson } from "../../lib/credits.js";
import { ledgerContracts } from "./contract.js";
import { type EntryCursor, getBalance, listEntries } from "./service.js";

// Cursors are opaque to clients: the last entry's (seq, side), base64url-encoded.
const encodeCursor = (entry: EntryCursor) =>
  Buffer.from(`s${entry.seq}.${entry.side}`).toString("base64url");
function decodeCursor(cursor: string): EntryCursor {
  const match = /^s(\d{1,18})\.([01])$/.exec(Buffer.from(cursor, "base64url").toString());
  if (!match) throw new AppError("invalid_request", "Invalid cursor.");
  return { seq: BigInt(match[1] as string), side: match[2] === "1" ? 1 : 0 };
}

export function ledgerRoutes(ctx: AppContext): Router {
  const router = Router();
  const mount = mountOn(router, ctx);

  mount(ledgerContracts.getBalance, async ({ ctx, caller }) => {
    const scope = keyScopeOf(caller);
    const balance = await getBalance(ctx, scope.accountId, scope.network);
    return {
      status: 200,
      body: {
        creditBalance: creditsToJson(balance.creditBalance),
        heldCredits: creditsToJson(balance.heldCredits),
        earnings: creditsToJson(balance.earnings),
        membershipTier: balance.membershipTier,
        network: balance.network,
      },
    };
  });

  mount(ledgerContracts.listTransactions, async ({ ctx, caller, query }) => {
    const scope = keyScopeOf(caller);
    const page = await pageOf(
      query.limit,
      (limit) =>
        listEntries(ctx, scope.accountId, scope.network, {
          limit,
          before: query.cursor === undefined ? undefined : decodeCursor(query.cursor),
          kind: query.kind,
        }),
      encodeCursor,
    );
    return {
      status: 200,
      body: {
        data: page.data.map((e) => ({
          id: e.id,
          kind: e.kind,
          account: e.account,
          amount: creditsToJson(e.amount),
          balanceAfter: creditsToJson(e.balanceAfter),
          reference: e.reference,
          holdId: e.holdId,
          metadata: e.metadata,
          createdAt: e.createdAt,
        })),
        nextCursor: page.nextCursor,
      },
    };
  });

  return router;
}
