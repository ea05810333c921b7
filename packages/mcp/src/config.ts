import { z } from "zod";

/** The public API, when POLYFORGE_API_URL is not set. */
export const DEFAULT_API_URL = "https://api.polyforge.dev";

/** x402 networks by the name POLYFORGE_NETWORK takes. */
export const NETWORKS = {
  base: "eip155:8453",
  "base-sepolia": "eip155:84532",
} as const;

/** USDC has 6 decimals: a dollar is 1,000,000 base units. */
const USDC_DECIMALS = 6;

/** "0.25" (dollars of USDC) as base units, exactly: no floating point touches money. */
export function dollarsToUnits(text: string): bigint {
  const match = /^(\d+)(?:\.(\d{1,6}))?$/.exec(text.trim());
  if (!match) throw new Error(`not an amount of dollars with at most 6 decimals: "${text}"`);
  const [, whole = "0", fraction = ""] = match;
  return BigInt(whole) * 10n ** BigInt(USDC_DECIMALS) + BigInt(fraction.padEnd(USDC_DECIMALS, "0"));
}

/** Base units as dollars, e.g. 30000n → "0.03". */
export function unitsToDollars(units: bigint): string {
  const scale = 10n ** BigInt(USDC_DECIMALS);
  const fraction = (units % scale).toString().padStart(USDC_DECIMALS, "0").replace(/0+$/, "");
  return `${units / scale}${fraction ? `.${fraction}` : ""}`;
}

const dollars = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((text, issues) => {
      try {
        return dollarsToUnits(text);
      } catch (err) {
        issues.addIssue({ code: "custom", message: (err as Error).message });
        return z.NEVER;
      }
    });

const env = z.object({
  POLYFORGE_API_URL: z.url({ protocol: /^https?$/ }).default(DEFAULT_API_URL),
  POLYFORGE_API_KEY: z.string().min(1).optional(),
  POLYFORGE_WALLET_KEY: z
    .string()
    .regex(/^(0x)?[0-9a-fA-F]{64}$/, "a private key: 64 hex digits, with or without 0x")
    .transform((key) => (key.startsWith("0x") ? key : `0x${key}`) as `0x${string}`)
    .optional(),
  POLYFORGE_NETWORK: z.enum(Object.keys(NETWORKS) as [keyof typeof NETWORKS]).default("base"),
  POLYFORGE_MAX_PER_CALL: dollars("1"),
  POLYFORGE_MAX_PER_DAY: dollars("10"),
});

export type Config =
  | { apiUrl: string; mode: "key"; apiKey: string }
  | {
      apiUrl: string;
      mode: "wallet";
      walletKey: `0x${string}`;
      network: (typeof NETWORKS)[keyof typeof NETWORKS];
      /** USDC base units. */
      maxPerCall: bigint;
      /** USDC base units, per UTC day, counted in this process's memory. */
      maxPerDay: bigint;
    };

/** The configuration from the environment, or the reasons it is not one. */
export function loadConfig(source: NodeJS.ProcessEnv): Config {
  const parsed = env.safeParse(source);
  if (!parsed.success) {
    const reasons = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
    throw new Error(`polyforge-mcp: bad configuration\n  ${reasons.join("\n  ")}`);
  }
  const e = parsed.data;
  const apiUrl = e.POLYFORGE_API_URL.replace(/\/+$/, "");
  if (e.POLYFORGE_API_KEY) return { apiUrl, mode: "key", apiKey: e.POLYFORGE_API_KEY };
  if (e.POLYFORGE_WALLET_KEY) {
    return {
      apiUrl,
      mode: "wallet",
      walletKey: e.POLYFORGE_WALLET_KEY,
      network: NETWORKS[e.POLYFORGE_NETWORK],
      maxPerCall: e.POLYFORGE_MAX_PER_CALL,
      maxPerDay: e.POLYFORGE_MAX_PER_DAY,
    };
  }
  throw new Error(
    "polyforge-mcp: set POLYFORGE_API_KEY (an sk_test_… or sk_live_… key), or POLYFORGE_WALLET_KEY (a wallet's private key, to pay per call in USDC through x402).",
  );
}
