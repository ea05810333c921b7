/**
 * Credits are bigint everywhere in the code and JSON numbers on the wire: every realistic
 * amount is far below 2^53, and a value that is not is a bug worth failing loudly on.
 */
export function creditsToJson(value: bigint): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n))
    throw new Error(`credit amount ${value} does not fit a JSON number`);
  return n;
}

/** USDC base units (6 decimals) as the API shows them: a decimal string, "15.000000". */
export const usdcToJson = (units: bigint): string => {
  const whole = units / 1_000_000n;
  const fraction = (units % 1_000_000n).toString().padStart(6, "0");
  return `${whole}.${fraction}`;
};
