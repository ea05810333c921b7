import { Router } from "express";
import type { AppContext } from "../../context.js";
import { keyScopeOf } from "../../http/auth.js";
import { mountOn } from "../../http/mount.js";
import { creditsToJson } from "../../lib/credits.js";
import { studioContracts } from "./contract.js";
import { type ReservationView, reserveCredits, settleReservation } from "./service.js";

/** A reservation on the wire (credits as JSON numbers). */
export const reservationJson = (r: ReservationView) => ({
  ...r,
  reservedCredits: creditsToJson(r.reservedCredits),
  availableCredits: creditsToJson(r.availableCredits),
  usedCredits: creditsToJson(r.usedCredits),
  returnedCredits: creditsToJson(r.returnedCredits),
});

export function studioRoutes(ctx: AppContext): Router {
  const router = Router();
  const mount = mountOn(router, ctx);

  mount(studioContracts.reserveCredits, async ({ ctx, caller, body }) => {
    const reservation = await reserveCredits(ctx, keyScopeOf(caller), {
      credits: body.credits,
      expiresInSeconds: body.expiresInSeconds,
    });
    return { status: 201, body: reservationJson(reservation) };
  });

  mount(studioContracts.settleReservation, async ({ ctx, caller, body }) => ({
    status: 200,
    body: reservationJson(await settleReservation(ctx, keyScopeOf(caller), body.reservationId)),
  }));

  return router;
}
