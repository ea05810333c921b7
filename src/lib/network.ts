/**
 * The two worlds that never mix. A key, an account's balance, a payment or a generation
 * belongs to exactly one: live is Base mainnet, test is Base Sepolia.
 */
export const networks = ["live", "test"] as const;
export type Network = (typeof networks)[number];

export const chainIdOf: Record<Network, number> = { live: 8453, test: 84532 };
