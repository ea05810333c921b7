import type { ServiceContext } from "../../context.js";
import { AppError } from "../../errors.js";
import type { NetworkScope } from "../accounts/caller.js";
import { countPendingHoldReferences } from "../ledger/service.js";

/** The kind of a generation result's hold; its reference is the generation's id. */
export const GENERATION_HOLD_KIND = "generation";

/** How long a caller refused for too many generations in flight is told to wait. */
const IN_FLIGHT_RETRY_SECONDS = 5;

/**
 * The cap on one account's generations waiting or running on a network, so one caller cannot
 * fill the queue. A generation is in flight while any of its results holds credits. A submit
 * checks inside its transaction, after its holds are placed (which locks the account's balance
 * row, so the count includes every concurrent submit that committed first); `adding` counts
 * generations not placed yet (a paid call's check before its payment settles).
 */
export async function assertInFlightCapacity(
  ctx: ServiceContext,
  owner: NetworkScope,
  adding = 0,
): Promise<void> {
  const max = ctx.config.rateLimits.maxInFlightGenerations;
  const total = (await countPendingHoldReferences(ctx, owner, GENERATION_HOLD_KIND)) + adding;
  if (total > max) throw tooManyInFlight(total, max);
}

/** The refusal of a request that would make `total` generations in flight, over `max`. */
export const tooManyInFlight = (total: number, max: number) =>
  new AppError(
    "too_many_in_flight",
    `Too many generations in flight: this request would make ${total}, and at most ${max} may wait or run at once. Retry when some finish.`,
    { inFlight: total, max },
    { headers: { "Retry-After": String(IN_FLIGHT_RETRY_SECONDS) } },
  );
