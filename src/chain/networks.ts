import type { Network } from "../lib/network.js";

/** USDC on each network as x402 expects it: address, EIP-712 domain, 6 decimals. */
export const USDC = {
  test: {
    chainId: 84532,
    caip2: "eip155:84532",
    address: "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
    name: "USDC",
    version: "2",
    devContract: "DevUSDCBaseSepolia",
  },
  live: {
    chainId: 8453,
    caip2: "eip155:8453",
    address: "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
    name: "USD Coin",
    version: "2",
    devContract: "DevUSDCBase",
  },
} as const satisfies Record<Network, unknown>;

/** Multicall3's address on every EVM chain. */
export const MULTICALL3_ADDRESS = "0xcA11bde05977b3631167028862bE2a173976CA11";

/** $0.01 (the price of one credit) = 10,000 USDC base units. */
export const USDC_UNITS_PER_CENT = 10_000n;
