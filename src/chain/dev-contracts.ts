import { createTestClient, createWalletClient, type Hex, http, publicActions } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import type { Network } from "../lib/network.js";
import { artifact } from "./artifacts.js";
import { MULTICALL3_ADDRESS, USDC } from "./networks.js";

/** anvil's first public test account: deploys the dev contracts. Never a real key. */
export const ANVIL_DEPLOYER_KEY: Hex =
  "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

/**
 * Puts the dev USDC at the network's real USDC address and Multicall3 at its canonical
 * address: each is deployed normally, then its runtime code is copied where clients expect it.
 */
export async function installDevContracts(rpcUrl: string, network: Network) {
  const deployer = privateKeyToAccount(ANVIL_DEPLOYER_KEY);
  const wallet = createWalletClient({ account: deployer, transport: http(rpcUrl) }).extend(
    publicActions,
  );
  const test = createTestClient({ mode: "anvil", transport: http(rpcUrl) });
  const chain = { id: await wallet.getChainId() } as const;
  const place = async (name: string, at: Hex) => {
    const built = artifact(name);
    const hash = await wallet.deployContract({
      abi: built.abi,
      bytecode: built.bytecode,
      chain: null,
      account: deployer,
    });
    const receipt = await wallet.waitForTransactionReceipt({ hash });
    if (!receipt.contractAddress) throw new Error(`${name} was not deployed`);
    const code = await wallet.getCode({ address: receipt.contractAddress });
    if (!code) throw new Error(`${name} has no code`);
    await test.setCode({ address: at, bytecode: code });
  };
  await place(USDC[network].devContract, USDC[network].address);
  await place("Multicall3", MULTICALL3_ADDRESS);
  return { chainId: chain.id, usdc: USDC[network].address };
}
