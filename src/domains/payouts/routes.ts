import { Router } from "express";
import type { AppContext } from "../../context.js";
import { AppError } from "../../errors.js";
import { keyScopeOf } from "../../http/auth.js";
import { pageOf } from "../../http/cursor.js";
import { mountOn } from "../../http/mount.js";
import { payoutContracts } from "./contract.js";
import { createPayout, listPayouts, payoutJson } from "./service.js";

export function payoutRoutes(ctx: AppContext): Router {
  const router = Router();
  const mount = mountOn(router, ctx);

  mount(
    payoutContracts.createPayout,
    async ({ ctx, caller, body, idempotency }) => {
      const { payout, replayed } = await createPayout(ctx, keyScopeOf(caller), {
        credits: body.credits,
        idempotency,
      });
      if (payout.status === "failed") {
        throw new AppError(
          "payout_failed",
          `The payout's USDC transfer failed (${payout.failureReason}); no USDC moved and the earnings are available again.`,
          { payoutId: payout.id, reason: payout.failureReason ?? "unknown" },
        );
      }
      const headers: Record<string, string> = replayed ? { "Idempotent-Replayed": "true" } : {};
      const answer = payoutJson(payout);
      return payout.status === "paid"
        ? { status: 201, headers, body: answer }
        : { status: 202, headers, body: answer };
    },
    { emptyBody: {} },
  );

  mount(payoutContracts.listPayouts, async ({ ctx, caller, query }) => {
    const page = await pageOf(
      query.limit,
      (limit) => listPayouts(ctx, keyScopeOf(caller), { limit, before: query.cursor }),
      (last) => last.id,
    );
    return { status: 200, body: { data: page.data.map(payoutJson), nextCursor: page.nextCursor } };
  });

  return router;
}
