import { x402Client } from "@x402/core/client";
import { decodePaymentRequiredHeader, encodePaymentSignatureHeader } from "@x402/core/http";
import type { PaymentPayload } from "@x402/core/types";
import { ExactEvmScheme } from "@x402/evm/exact/client";
import { wrapFetchWithPaymentFromConfig } from "@x402/fetch";
import {
  type Address,
  createPublicClient,
  createTestClient,
  createWalletClient,
  erc20Abi,
  type Hex,
  http,
} from "viem";
import { generatePrivateKey, type LocalAccount, privateKeyToAccount } from "viem/accounts";
import { inject } from "vitest";
import { artifact } from "../../src/chain/artifacts.js";
import {
  anvilAccount,
  LOCAL_ROLES,
  type LocalChain,
  privateKeyOf,
  startLocalChain,
} from "../../src/chain/local-chain.js";
import { USDC } from "../../src/chain/networks.js";
import type { Network } from "../../src/lib/network.js";
import { signAuthorization } from "./eip3009.js";

/** A prepared local chain for one test file, restored from the run's saved state. */
export function startTestChain(network: Network = "test"): Promise<LocalChain> {
  return startLocalChain({ network, stateHex: inject("chainStates")[network] });
}

const prefix = (network: Network) => (network === "test" ? "TEST" : "LIVE");

/** The app's environment for taking payments on these chains, with an in-process facilitator. */
export function paymentEnv(
  chains: LocalChain[],
  options: { payTo?: Address } = {},
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const chain of chains) {
    const p = prefix(chain.network);
    env[`X402_${p}_RPC_URL`] = chain.rpcUrl;
    env[`X402_${p}_PAY_TO`] = options.payTo ?? treasury;
    env[`X402_${p}_FACILITATOR_KEY`] = privateKeyOf(anvilAccount(LOCAL_ROLES.facilitator));
  }
  return env;
}

export const treasury: Address = anvilAccount(LOCAL_ROLES.treasury).address;

/**
 * The official x402 fetch client paying from `account` on one network. Its default spend cap
 * ($1 a payment) is raised: packs cost up to $40.
 */
export function payingFetch(account: LocalAccount, network: Network) {
  return wrapFetchWithPaymentFromConfig(fetch, {
    schemes: [{ network: USDC[network].caip2, client: new ExactEvmScheme(account) }],
    spendControls: { maxAmountPerPayment: "$100" },
  });
}

export function chainClients(chain: LocalChain) {
  const publicClient = createPublicClient({ transport: http(chain.rpcUrl) });
  const testClient = createTestClient({ mode: "anvil", transport: http(chain.rpcUrl) });
  return { publicClient, testClient };
}

export function usdcBalance(chain: LocalChain, address: Address): Promise<bigint> {
  return createPublicClient({ transport: http(chain.rpcUrl) }).readContract({
    address: USDC[chain.network].address,
    abi: erc20Abi,
    functionName: "balanceOf",
    args: [address],
  });
}

/** Gives `address` dev USDC (base units) from the token's open faucet. */
export async function fundUsdc(chain: LocalChain, address: Address, amount: bigint) {
  const minter = anvilAccount(0);
  const wallet = createWalletClient({ account: minter, transport: http(chain.rpcUrl) });
  const hash = await wallet.writeContract({
    address: USDC[chain.network].address,
    abi: artifact(USDC[chain.network].devContract).abi,
    functionName: "mint",
    args: [address, amount],
    chain: null,
  });
  await createPublicClient({ transport: http(chain.rpcUrl) }).waitForTransactionReceipt({ hash });
}

/** The PAYMENT-SIGNATURE an x402 client would send for a 402's PAYMENT-REQUIRED header. */
export async function signPayment(
  account: LocalAccount,
  network: Network,
  paymentRequired: string,
  change?: { validBefore?: bigint },
): Promise<string> {
  const client = new x402Client()
    .register(USDC[network].caip2, new ExactEvmScheme(account))
    .setSpendControls({ maxAmountPerPayment: "$100" });
  const payload = await client.createPaymentPayload(decodePaymentRequiredHeader(paymentRequired));
  if (change?.validBefore !== undefined)
    await resign(account, network, payload, change.validBefore);
  return encodePaymentSignatureHeader(payload);
}

/** Re-signs an EIP-3009 authorization with another validity end, as a (bad) client could. */
async function resign(
  account: LocalAccount,
  network: Network,
  payload: PaymentPayload,
  validBefore: bigint,
) {
  const inner = payload.payload as {
    signature: Hex;
    authorization: Record<"from" | "to" | "value" | "validAfter" | "validBefore" | "nonce", string>;
  };
  inner.authorization.validBefore = validBefore.toString();
  const auth = inner.authorization;
  inner.signature = await signAuthorization(account, network, {
    from: auth.from as Address,
    to: auth.to as Address,
    value: BigInt(auth.value),
    validAfter: BigInt(auth.validAfter),
    validBefore,
    nonce: auth.nonce as Hex,
  });
}

/** A new wallet holding `usdc` dev USDC (base units) on the chain. */
export async function fundedPayer(chain: LocalChain, usdc: bigint): Promise<LocalAccount> {
  const account = privateKeyToAccount(generatePrivateKey());
  if (usdc > 0n) await fundUsdc(chain, account.address, usdc);
  return account;
}
