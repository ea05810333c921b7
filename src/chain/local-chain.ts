import { mkdir } from "node:fs/promises";
import path from "node:path";
import {
  createPublicClient,
  createTestClient,
  createWalletClient,
  type Hex,
  http,
  toHex,
} from "viem";
import { type HDAccount, mnemonicToAccount } from "viem/accounts";
import { type Config, ConfigError, type NetworkPaymentConfig } from "../config.js";
import type { Network } from "../lib/network.js";
import { type Anvil, startAnvil } from "./anvil.js";
import { artifact } from "./artifacts.js";
import { installDevContracts } from "./dev-contracts.js";
import { USDC } from "./networks.js";

/**
 * A local chain that stands in for Base Sepolia (or, in tests, Base): the dev USDC at the real
 * USDC address, Multicall3 at its canonical one, and anvil's public test wallets funded with
 * dev USDC. Everything here uses anvil's well-known test mnemonic: never a real key.
 */
const ANVIL_MNEMONIC = "test test test test test test test test test test test junk";

export const anvilAccount = (index: number): HDAccount =>
  mnemonicToAccount(ANVIL_MNEMONIC, { addressIndex: index });

export const privateKeyOf = (account: HDAccount): Hex => {
  const key = account.getHdKey().privateKey;
  if (!key) throw new Error("HD account without a private key");
  return toHex(key);
};

/** Which of anvil's test wallets plays which part on a local chain. */
export const LOCAL_ROLES = {
  /** Pays in the README's examples and `npm start`'s banner. */
  demoPayer: 1,
  /** Receives payments (payTo) and sends creator payouts. Starts without dev USDC. */
  treasury: 8,
  /** Signs the in-process facilitator's settlements. */
  facilitator: 9,
} as const;

/** Wallets 0–7 each start with this much dev USDC (10,000 USDC). */
export const FUNDED_WALLETS = 8;
export const DEV_USDC_PER_WALLET = 10_000n * 10n ** 6n;

export interface LocalChain {
  rpcUrl: string;
  network: Network;
  chainId: number;
  anvil: Anvil;
  stop(): Promise<void>;
}

const publicClientOf = (rpcUrl: string) => createPublicClient({ transport: http(rpcUrl) });
const testClientOf = (rpcUrl: string) =>
  createTestClient({ mode: "anvil", transport: http(rpcUrl) });

/** Installs the dev contracts and funds the test wallets, unless the chain already has them. */
export async function prepareChain(rpcUrl: string, network: Network): Promise<boolean> {
  const client = publicClientOf(rpcUrl);
  const code = await client.getCode({ address: USDC[network].address });
  if (code && code !== "0x") return false;
  await installDevContracts(rpcUrl, network);
  const minter = anvilAccount(0);
  const wallet = createWalletClient({ account: minter, transport: http(rpcUrl) });
  const token = artifact(USDC[network].devContract);
  for (let i = 0; i < FUNDED_WALLETS; i++) {
    const hash = await wallet.writeContract({
      address: USDC[network].address,
      abi: token.abi,
      functionName: "mint",
      args: [anvilAccount(i).address, DEV_USDC_PER_WALLET],
      chain: null,
    });
    await client.waitForTransactionReceipt({ hash });
  }
  return true;
}

/**
 * Starts anvil at the network's chain id, prepared. With `statePath` the chain's state is
 * loaded from that file when it exists and written back on exit (development); with
 * `stateHex` it is restored from a dump taken by dumpChainState (tests, in about a second).
 */
export async function startLocalChain(options: {
  network: Network;
  port?: number;
  /** Interface anvil listens on (default 127.0.0.1). */
  host?: string;
  statePath?: string;
  stateHex?: Hex;
}): Promise<LocalChain> {
  const chainId = USDC[options.network].chainId;
  if (options.statePath) await mkdir(path.dirname(options.statePath), { recursive: true });
  const anvil = await startAnvil({
    chainId,
    port: options.port,
    host: options.host,
    state: options.statePath,
  });
  try {
    if (options.stateHex) await testClientOf(anvil.rpcUrl).loadState({ state: options.stateHex });
    await prepareChain(anvil.rpcUrl, options.network);
  } catch (err) {
    await anvil.stop();
    throw err;
  }
  return { rpcUrl: anvil.rpcUrl, network: options.network, chainId, anvil, stop: anvil.stop };
}

/** The whole chain state, to restore into a fresh anvil with startLocalChain({ stateHex }). */
export function dumpChainState(rpcUrl: string): Promise<Hex> {
  return testClientOf(rpcUrl).dumpState();
}

/** How a deployment takes payments on a local chain: an in-process facilitator, anvil's keys. */
export function localPaymentConfig(rpcUrl: string, network: Network): NetworkPaymentConfig {
  return {
    rpcUrl,
    payTo: anvilAccount(LOCAL_ROLES.treasury).address,
    usdcAddress: USDC[network].address,
    facilitator: { privateKey: privateKeyOf(anvilAccount(LOCAL_ROLES.facilitator)) },
    startBlock: 0n,
  };
}

/** The treasury's key on a local chain: it signs creator payouts there. */
export const localTreasuryKey = (): Hex => privateKeyOf(anvilAccount(LOCAL_ROLES.treasury));

/**
 * The config with its test network's payments on the given local chain, and its payouts sent
 * from the local treasury (unless a payout key is set for the test network).
 */
export function withLocalTestChain(config: Config, rpcUrl: string): Config {
  return {
    ...config,
    payments: {
      ...config.payments,
      networks: { ...config.payments.networks, test: localPaymentConfig(rpcUrl, "test") },
    },
    payouts: {
      ...config.payouts,
      keys: { ...config.payouts.keys, test: config.payouts.keys.test ?? localTreasuryKey() },
    },
  };
}

/**
 * Refuses to start when a network's RPC is another chain than the one its keys spend on (a live
 * configuration pointed at a test chain, or the reverse). Networks whose RPC does not answer
 * are returned: the process starts without their payments (PaymentGateway.watchChain).
 */
export async function verifyPaymentChains(config: Config): Promise<Network[]> {
  const unreachable: Network[] = [];
  for (const [network, settings] of Object.entries(config.payments.networks)) {
    const expected = USDC[network as Network].chainId;
    const variable = `X402_${network.toUpperCase()}_RPC_URL`;
    let reported: number;
    try {
      reported = await publicClientOf(settings.rpcUrl).getChainId();
    } catch {
      unreachable.push(network as Network);
      continue;
    }
    if (reported !== expected) {
      throw new ConfigError([
        `${variable}: the RPC reports chain id ${reported}, but ${network} payments are on chain ${expected}`,
      ]);
    }
  }
  return unreachable;
}
