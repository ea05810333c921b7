/**
 * Usage prices are in the ledger's fine unit: 1 unit = 1/10,000 credit = $0.000001 = one USDC
 * base unit (DESIGN §3). So "$1.25 per million tokens" is 1,250,000 units per million tokens:
 * a rate in units per million is its dollar price times a million, always a whole number for
 * the prices we list.
 *
 * Rounding, stated once: a usage cost is computed exactly in integers and rounded UP to the
 * unit, once, over the whole amount (never per part), so no call is billed below its price and
 * none more than one unit above it.
 */

/** A million: prices per million tokens or characters. */
export const MILLION = 1_000_000n;

/** ⌈numerator / denominator⌉ for a non-negative numerator and a positive denominator. */
export function ceilDiv(numerator: bigint, denominator: bigint): bigint {
  if (numerator < 0n || denominator <= 0n) {
    throw new RangeError(`ceilDiv(${numerator}, ${denominator}): expected n >= 0 and d > 0`);
  }
  return (numerator + denominator - 1n) / denominator;
}

/** A count (tokens, characters, seconds) as a bigint, refusing what is not a whole number ≥ 0. */
export function countOf(name: string, value: number): bigint {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${name} must be a whole number >= 0, not ${value}`);
  }
  return BigInt(value);
}

/** 70% of a market price, in whole units: the product lists "around 30% below market". */
export const belowMarket = (marketUnits: bigint): bigint => (marketUnits * 7n) / 10n;
