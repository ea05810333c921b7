/**
 * The API's credits have at most 4 decimals (1 credit = $0.01; usage-billed calls cost
 * fractions of one); USDC has 6 decimals. No arithmetic on money here, only display.
 */
export const credits = (n: number) =>
  `${n.toLocaleString("en-US", { maximumFractionDigits: 4 })} credit${n === 1 ? "" : "s"}`;

/** USDC base units (a decimal string of an integer) as "24.000000 USDC". */
export function usdcFromUnits(units: string): string {
  const value = BigInt(units);
  const whole = value / 1_000_000n;
  const fraction = (value % 1_000_000n).toString().padStart(6, "0");
  return `${whole.toLocaleString("en-US")}.${fraction} USDC`;
}

export const shortHash = (hash: string) => `${hash.slice(0, 10)}…${hash.slice(-8)}`;
