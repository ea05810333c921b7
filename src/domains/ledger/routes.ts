import { Router } from "express";
import { z } from "zod";
import type { ServiceContext } from "../../context.js";
import { AppError } from "../../errors.js";
import { authenticate, keyScopeOf } from "../../http/auth.js";
import { creditsToJson } from "../../lib/credits.js";
import { type EntryCursor, getBalance, listEntries, transferKinds } from "./service.js";

export const transactionsQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(100).default(20),
    cursor: z.string().max(64).optional(),
    kind: z.enum(transferKinds).optional(),
  })
  .strict();

// Cursors are opaque to clients: the last entry's (seq, side), base64url-encoded.
const encodeCursor = (entry: EntryCursor) =>
  Buffer.from(`s${entry.seq}.${entry.side}`).toString("base64url");
function decodeCursor(cursor: string): EntryCursor {
  const match = /^s(\d{1,18})\.([01])$/.exec(Buffer.from(cursor, "base64url").toString());
  if (!match) throw new AppError("invalid_request", "Invalid cursor.");
  return { seq: BigInt(match[1] as string), side: match[2] === "1" ? 1 : 0 };
}

export function ledgerRoutes(ctx: ServiceContext): Router {
  const router = Router();
  const auth = authenticate(ctx);

  router.get("/v1/balance", auth, async (req, res) => {
    const scope = keyScopeOf(req);
    const balance = await getBalance(ctx, scope.accountId, scope.network);
    res.json({
      creditBalance: creditsToJson(balance.creditBalance),
      heldCredits: creditsToJson(balance.heldCredits),
      earnings: creditsToJson(balance.earnings),
      membershipTier: balance.membershipTier,
      network: balance.network,
    });
  });

  router.get("/v1/transactions", auth, async (req, res) => {
    const query = transactionsQuery.parse(req.query);
    const scope = keyScopeOf(req);
    const entries = await listEntries(ctx, scope.accountId, scope.network, {
      limit: query.limit + 1,
      before: query.cursor === undefined ? undefined : decodeCursor(query.cursor),
      kind: query.kind,
    });
    const page = entries.slice(0, query.limit);
    const last = page.at(-1);
    res.json({
      data: page.map((e) => ({
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
      nextCursor: entries.length > query.limit && last ? encodeCursor(last) : null,
    });
  });

  return router;
}
