import type { ServiceContext } from "../../context.js";
import { AppError, notFound } from "../../errors.js";
import { newId } from "../../lib/ids.js";
import type { NetworkScope } from "../accounts/caller.js";
import { userLedgerAccount } from "../ledger/accounts.js";
import {
  getHold,
  type Hold,
  placeHold,
  RESERVATION_HOLD_KIND,
  voidHold,
} from "../ledger/service.js";

/**
 * Batch studio: a reservation is a ledger hold that generations draw from (a generation's own
 * hold then takes its credits from the reservation instead of the balance). Settling returns
 * what is left. A generation that fails refunds to the balance, not to the reservation.
 */

function view(hold: Hold) {
  return {
    reservationId: hold.id,
    network: hold.network,
    status: hold.status === "pending" ? "active" : hold.status === "voided" ? "settled" : "expired",
    reservedCredits: hold.amount,
    availableCredits: hold.available,
    usedCredits: hold.drawn,
    returnedCredits: hold.released,
    expiresAt: hold.expiresAt,
    createdAt: hold.createdAt,
    settledAt: hold.resolvedAt,
  };
}
export type ReservationView = ReturnType<typeof view>;

export async function reserveCredits(
  ctx: ServiceContext,
  scope: NetworkScope,
  input: { credits: bigint; expiresInSeconds: number },
): Promise<ReservationView> {
  const { hold } = await placeHold(ctx, {
    id: newId("res"),
    network: scope.network,
    ownerId: scope.accountId,
    apiKeyId: scope.apiKeyId,
    amount: input.credits,
    expiresAt: new Date(ctx.clock().getTime() + input.expiresInSeconds * 1000),
    kind: RESERVATION_HOLD_KIND,
    reference: "studio reservation",
  });
  return view(hold);
}

async function ownReservation(ctx: ServiceContext, scope: NetworkScope, reservationId: string) {
  const hold = await getHold(ctx, reservationId);
  if (
    !hold ||
    hold.kind !== RESERVATION_HOLD_KIND ||
    hold.accountId !== userLedgerAccount(scope.accountId, scope.network)
  ) {
    throw notFound("Reservation");
  }
  return hold;
}

/** One of the caller's reservations, as it stands. */
export async function getReservation(
  ctx: ServiceContext,
  scope: NetworkScope,
  reservationId: string,
): Promise<ReservationView> {
  return view(await ownReservation(ctx, scope, reservationId));
}

/** Ends a reservation and returns its unused credits. Settling twice reports the same result. */
export async function settleReservation(
  ctx: ServiceContext,
  scope: NetworkScope,
  reservationId: string,
): Promise<ReservationView> {
  const hold = await ownReservation(ctx, scope, reservationId);
  if (hold.status !== "pending") return view(hold);
  try {
    const { hold: settled } = await voidHold(ctx, {
      holdId: hold.id,
      id: `settle:${hold.id}`,
      reference: "studio settle",
    });
    return view(settled);
  } catch (err) {
    // The expiry sweeper got there first; report what it did.
    if (err instanceof AppError && err.code === "hold_already_resolved") {
      return view(await ownReservation(ctx, scope, reservationId));
    }
    throw err;
  }
}
