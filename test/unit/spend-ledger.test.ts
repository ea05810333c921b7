import { describe, expect, it } from "vitest";
import { SpendLedger } from "../../packages/client/src/x402.js";

/** The client's day total of x402 payments, which its maxPerDay is checked against. */
describe("SpendLedger", () => {
  it("a refused payment is taken back only from the day it was counted on", () => {
    let now = new Date("2026-12-04T23:59:59Z");
    const ledger = new SpendLedger(() => now);
    const day = ledger.add(400_000n);
    ledger.add(100_000n);
    ledger.release(400_000n, day);
    expect(ledger.today()).toBe(100_000n);

    const late = ledger.add(300_000n);
    now = new Date("2026-12-05T00:00:01Z");
    ledger.add(50_000n);
    // Refused after midnight: the new day's total owes it nothing (it would go below zero).
    ledger.release(300_000n, late);
    expect(ledger.today()).toBe(50_000n);
    expect(() => ledger.add(-1n)).toThrow(RangeError);
  });
});
