import { z } from "zod";

/**
 * Money in the code is a bigint of ledger units: 1 unit = 1/10,000 credit = 1 USDC base unit
 * (USDC has 6 decimals; 1 credit = $0.01), so payments and payouts map to the ledger with no
 * rounding, and usage-billed calls (text, audio) can cost a fraction of a credit. The API shows
 * and takes credits: JSON numbers with at most 4 decimals. Every realistic amount is far below
 * 10^15 units (a billion dollars), and a value that is not is a bug worth failing loudly on.
 */
export const UNITS_PER_CREDIT = 10_000n;
const DECIMALS = 4;
/** 100 billion credits: past it a double no longer holds every 4-decimal amount exactly. */
const MAX_JSON_UNITS = 10n ** 15n;

/** Whole credits (a catalog price, a pack's size) as ledger units. */
export const creditUnits = (credits: bigint | number): bigint => BigInt(credits) * UNITS_PER_CREDIT;

/** Ledger units as the API shows them: credits, a JSON number with at most 4 decimals. */
export function creditsToJson(units: bigint): number {
  if (units > MAX_JSON_UNITS || units < -MAX_JSON_UNITS)
    throw new Error(`credit amount ${units} does not fit a JSON number`);
  const n = Number(units);
  // The nearest double to n / 10^4 prints as that decimal (JSON takes the shortest form).
  return n / Number(UNITS_PER_CREDIT);
}

/** Ledger units as words in a message: "24", "0.0003", "1.5". */
export function formatCredits(units: bigint): string {
  const sign = units < 0n ? "-" : "";
  const abs = units < 0n ? -units : units;
  const whole = abs / UNITS_PER_CREDIT;
  const fraction = (abs % UNITS_PER_CREDIT).toString().padStart(DECIMALS, "0").replace(/0+$/, "");
  return `${sign}${whole}${fraction ? `.${fraction}` : ""}`;
}

/**
 * Credits as a caller sends them (a JSON number, at most 4 decimals) → ledger units, exactly:
 * read from the number's shortest decimal form (what JSON carried), never by multiplying a float.
 */
export function creditsFromJson(credits: number): bigint | undefined {
  const [, sign, whole, fraction = ""] = /^(-?)(\d+)(?:\.(\d{1,4}))?$/.exec(String(credits)) ?? [];
  if (whole === undefined) return undefined;
  const units = BigInt(whole) * UNITS_PER_CREDIT + BigInt(fraction.padEnd(DECIMALS, "0"));
  return sign ? -units : units;
}

/**
 * A credit amount at the API's boundary: `number` (its bounds and description, in credits)
 * with at most 4 decimals, parsed to ledger units.
 */
export const creditsInput = (number: z.ZodNumber) =>
  number.transform((value, ctx) => {
    const units = creditsFromJson(value);
    if (units === undefined) {
      ctx.addIssue({ code: "custom", message: "Credits take at most 4 decimals." });
      return z.NEVER;
    }
    return units;
  });

/** USDC base units (6 decimals) as the API shows them: a decimal string, "15.000000". */
export const usdcToJson = (units: bigint): string => {
  const whole = units / 1_000_000n;
  const fraction = (units % 1_000_000n).toString().padStart(6, "0");
  return `${whole}.${fraction}`;
};

/** A credit amount in an answer (what creditsToJson makes), for the contracts. */
export const creditsJson = (describe = "Credits (1 credit = $0.01), at most 4 decimals.") =>
  z.number().describe(describe);
