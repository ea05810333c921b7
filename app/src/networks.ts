import type { Network } from "./types";

/** The two worlds, as the API names them (DESIGN.md: live is Base, test is Base Sepolia). */
export const NETWORKS: Record<
  Network,
  { label: string; chainName: string; chainId: number; caip2: string; note: string }
> = {
  test: {
    label: "Test mode",
    chainName: "Base Sepolia",
    chainId: 84532,
    caip2: "eip155:84532",
    note: "nothing real is spent",
  },
  live: {
    label: "Live",
    chainName: "Base mainnet",
    chainId: 8453,
    caip2: "eip155:8453",
    note: "real USDC is spent",
  },
};

export const networkOfCaip2 = (caip2: string): Network | null =>
  caip2 === NETWORKS.test.caip2 ? "test" : caip2 === NETWORKS.live.caip2 ? "live" : null;
