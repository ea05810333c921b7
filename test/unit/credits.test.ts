import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import {
  creditsFromJson,
  creditsInput,
  creditsToJson,
  creditUnits,
  formatCredits,
  UNITS_PER_CREDIT,
} from "../../src/lib/credits.js";

describe("credit amounts: ledger units (1/10,000 credit) and the API's credits", () => {
  it("a whole credit is 10,000 units, one USDC base unit each", () => {
    expect(UNITS_PER_CREDIT).toBe(10_000n);
    expect(creditUnits(4)).toBe(40_000n);
    expect(creditUnits(1_000n)).toBe(10_000_000n);
  });

  it("shows units as credits with at most 4 decimals, exactly", () => {
    expect(creditsToJson(40_000n)).toBe(4);
    expect(creditsToJson(3n)).toBe(0.0003);
    expect(creditsToJson(15_000n)).toBe(1.5);
    expect(creditsToJson(-12_345n)).toBe(-1.2345);
    expect(JSON.stringify({ c: creditsToJson(1n) })).toBe('{"c":0.0001}');
    expect(() => creditsToJson(10n ** 15n + 1n)).toThrow(/does not fit/);
  });

  it("reads credits with at most 4 decimals back to the same units, and refuses more", () => {
    expect(creditsFromJson(4)).toBe(40_000n);
    expect(creditsFromJson(0.0003)).toBe(3n);
    expect(creditsFromJson(1.2345)).toBe(12_345n);
    expect(creditsFromJson(-2.5)).toBe(-25_000n);
    expect(creditsFromJson(0.00001)).toBeUndefined();
    expect(creditsFromJson(1.23456)).toBeUndefined();
    expect(creditsFromJson(0.1 + 0.2)).toBeUndefined();
    expect(creditsFromJson(Number.NaN)).toBeUndefined();
    expect(creditsFromJson(Number.POSITIVE_INFINITY)).toBeUndefined();
  });

  it("round-trips every amount up to 100 billion credits", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 15n), max: 10n ** 15n }), (units) => {
        expect(creditsFromJson(creditsToJson(units))).toBe(units);
        expect(Number(formatCredits(units))).toBe(creditsToJson(units));
      }),
    );
  });

  it("words amounts without trailing zeros", () => {
    expect(formatCredits(240_000n)).toBe("24");
    expect(formatCredits(3n)).toBe("0.0003");
    expect(formatCredits(15_000n)).toBe("1.5");
    expect(formatCredits(-10_001n)).toBe("-1.0001");
    expect(formatCredits(0n)).toBe("0");
  });

  it("parses a request's credits to units within the schema's bounds", () => {
    const schema = z.object({ credits: creditsInput(z.number().positive().max(100)) });
    expect(schema.parse({ credits: 2.5 })).toEqual({ credits: 25_000n });
    expect(schema.safeParse({ credits: 0.00005 }).error?.issues[0]?.message).toMatch(
      /at most 4 decimals/,
    );
    expect(schema.safeParse({ credits: 101 }).success).toBe(false);
    expect(schema.safeParse({ credits: 0 }).success).toBe(false);
    expect(schema.safeParse({ credits: "3" }).success).toBe(false);
  });
});
