import { Router } from "express";
import { z } from "zod";
import type { AppContext } from "../../context.js";
import { AppError } from "../../errors.js";
import { authenticate, keyScopeOf } from "../../http/auth.js";
import { requiredIdempotencyKey } from "../../http/idempotency.js";
import { createPayout, listPayouts, payoutJson } from "./service.js";

export function payoutRoutes(ctx: AppContext): Router {
  const router = Router();
  const auth = authenticate(ctx);

  router.post("/v1/profile/payouts", auth, async (req, res) => {
    const input = payoutRequest.parse(req.body ?? {});
    const idempotency = requiredIdempotencyKey(req, input);
    const { payout, replayed } = await createPayout(ctx, keyScopeOf(req), {
      credits: input.credits === undefined ? undefined : BigInt(input.credits),
      idempotency,
    });
    if (payout.status === "failed") {
      throw new AppError(
        "payout_failed",
        `The payout's USDC transfer failed (${payout.failureReason}); no USDC moved and the earnings are available again.`,
        { payoutId: payout.id, reason: payout.failureReason ?? "unknown" },
      );
    }
    if (replayed) res.set("Idempotent-Replayed", "true");
    res.status(payout.status === "paid" ? 201 : 202).json(payoutJson(payout));
  });

  router.get("/v1/profile/payouts", auth, async (req, res) => {
    const query = payoutsQuery.parse(req.query);
    const page = await listPayouts(ctx, keyScopeOf(req), {
      limit: query.limit + 1,
      before: query.cursor,
    });
    const data = page.slice(0, query.limit);
    res.json({
      data: data.map(payoutJson),
      nextCursor: page.length > query.limit ? (data.at(-1)?.id ?? null) : null,
    });
  });

  return router;
}
