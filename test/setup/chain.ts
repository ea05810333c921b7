import type { Hex } from "viem";
import type { TestProject } from "vitest/node";
import { dumpChainState, startLocalChain } from "../../src/chain/local-chain.js";
import type { Network } from "../../src/lib/network.js";

declare module "vitest" {
  export interface ProvidedContext {
    chainStates: Record<Network, Hex>;
  }
}

/**
 * Prepares each network's local chain once per run (contracts installed, wallets funded) and
 * hands its state to the test files, which restore it into their own anvil in well under a second.
 */
export default async function setup(project: TestProject) {
  const states = {} as Record<Network, Hex>;
  for (const network of ["test", "live"] as const) {
    const chain = await startLocalChain({ network });
    states[network] = await dumpChainState(chain.rpcUrl);
    await chain.stop();
  }
  project.provide("chainStates", states);
}
