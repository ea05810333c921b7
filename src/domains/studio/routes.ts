import { Router } from "express";
import { z } from "zod";
import type { ServiceContext } from "../../context.js";
import { authenticate, keyScopeOf } from "../../http/auth.js";
import { idempotent } from "../../http/idempotency.js";
import { creditsToJson } from "../../lib/credits.js";
import { type ReservationView, reserveCredits, settleReservation } from "./service.js";

export const reserveRequest = z
  .object({
    credits: z.number().int().min(1).max(10_000_000),
    expiresInSeconds: z
      .number()
      .int()
      .min(60)
      .max(30 * 24 * 3600)
      .default(24 * 3600),
  })
  .strict();

export const settleRequest = z.object({ reservationId: z.string().min(1).max(64) }).strict();

/** A reservation on the wire (credits as JSON numbers). */
export const reservationJson = (r: ReservationView) => ({
  ...r,
  reservedCredits: creditsToJson(r.reservedCredits),
  availableCredits: creditsToJson(r.availableCredits),
  usedCredits: creditsToJson(r.usedCredits),
  returnedCredits: creditsToJson(r.returnedCredits),
});

export function studioRoutes(ctx: ServiceContext): Router {
  const router = Router();
  const auth = authenticate(ctx);

  router.post("/v1/studio/reserve", auth, idempotent(ctx), async (req, res) => {
    const input = reserveRequest.parse(req.body);
    const reservation = await reserveCredits(ctx, keyScopeOf(req), {
      credits: BigInt(input.credits),
      expiresInSeconds: input.expiresInSeconds,
    });
    res.status(201).json(reservationJson(reservation));
  });

  router.post("/v1/studio/settle", auth, async (req, res) => {
    const { reservationId } = settleRequest.parse(req.body);
    res.json(reservationJson(await settleReservation(ctx, keyScopeOf(req), reservationId)));
  });

  return router;
}
