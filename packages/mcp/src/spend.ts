import { unitsToDollars } from "./config.js";

/**
 * The wallet's spending caps, in USDC base units. The day's total is kept in this process's
 * memory, per UTC day: it starts again at 0 when the MCP client restarts the server.
 */
export interface SpendGuard {
  /** Counts `amount` against today's total, or says which cap it would break (nothing counted). */
  reserve(amount: bigint): { code: string; message: string } | undefined;
  /** Takes back an amount reserved but not paid (the API refused the payment). */
  release(amount: bigint): void;
  /** Today's total and the caps. */
  today(): { day: string; spent: bigint; maxPerCall: bigint; maxPerDay: bigint };
  dollars(units: bigint): string;
}

export function spendGuard(
  maxPerCall: bigint,
  maxPerDay: bigint,
  now: () => Date = () => new Date(),
): SpendGuard {
  let day = "";
  let spent = 0n;
  const roll = () => {
    const today = now().toISOString().slice(0, 10);
    if (today !== day) {
      day = today;
      spent = 0n;
    }
  };
  const $ = (units: bigint) => `$${unitsToDollars(units)}`;
  return {
    reserve(amount) {
      roll();
      if (amount > maxPerCall) {
        return {
          code: "max_per_call_exceeded",
          message: `This call asks ${$(amount)} USDC, over POLYFORGE_MAX_PER_CALL (${$(maxPerCall)}); nothing was paid.`,
        };
      }
      if (spent + amount > maxPerDay) {
        return {
          code: "max_per_day_exceeded",
          message: `This call asks ${$(amount)} USDC and ${$(spent)} was paid today (UTC): over POLYFORGE_MAX_PER_DAY (${$(maxPerDay)}); nothing was paid.`,
        };
      }
      spent += amount;
      return undefined;
    },
    release(amount) {
      spent = spent >= amount ? spent - amount : 0n;
    },
    today() {
      roll();
      return { day, spent, maxPerCall, maxPerDay };
    },
    dollars: unitsToDollars,
  };
}
