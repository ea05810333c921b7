import {
  type Address,
  BaseError,
  type Chain,
  createPublicClient,
  createWalletClient,
  defineChain,
  ExecutionRevertedError,
  encodeFunctionData,
  erc20Abi,
  type Hash,
  type Hex,
  http,
  InsufficientFundsError,
  keccak256,
  type PublicClient,
  RpcRequestError,
  TransactionNotFoundError,
  type TransactionReceipt,
  TransactionReceiptNotFoundError,
} from "viem";
import { type PrivateKeyAccount, privateKeyToAccount } from "viem/accounts";
import { USDC } from "../../chain/networks.js";
import type { Config } from "../../config.js";
import { AppError } from "../../errors.js";
import type { Network } from "../../lib/network.js";

/**
 * The treasury wallet that sends payouts, on one network: its key (kept in memory, never
 * logged), the network's RPC and USDC. Transactions are signed here, with an explicit nonce, and
 * sent as raw bytes, so their hash is known (and stored) before anything leaves the process.
 */
export interface Treasury {
  network: Network;
  address: Address;
  usdc: Address;
  chainId: number;
  client: PublicClient;
  /** Builds and signs a USDC transfer at `nonce` (fees and gas from the chain; a transfer that
   * would revert fails here, before anything is signed). */
  signTransfer(input: { to: Address; amount: bigint; nonce: number }): Promise<{
    raw: Hex;
    hash: Hash;
  }>;
}

const unavailable = (network: Network, why: string) =>
  new AppError(
    "payouts_unavailable",
    `Payouts on ${network === "live" ? "Base" : "Base Sepolia"} are unavailable: ${why}.`,
    { network },
  );

/** One per network and configuration, for the life of the process. */
const treasuries = new Map<string, Treasury>();

/** The network's treasury as configured; 503 payouts_unavailable when it has none. */
export function treasuryFor(config: Config, network: Network): Treasury {
  const key = config.payouts.keys[network];
  if (!key) throw unavailable(network, "this deployment has no treasury key there");
  const payments = config.payments.networks[network];
  if (!payments) throw unavailable(network, "this deployment has no chain configured there");
  const account = privateKeyToAccount(key);
  const cacheKey = `${network}:${payments.rpcUrl}:${payments.usdcAddress}:${account.address}`;
  let treasury = treasuries.get(cacheKey);
  if (!treasury) {
    treasury = createTreasury(network, account, payments.rpcUrl, payments.usdcAddress);
    treasuries.set(cacheKey, treasury);
  }
  return treasury;
}

function createTreasury(
  network: Network,
  account: PrivateKeyAccount,
  rpcUrl: string,
  usdc: Address,
): Treasury {
  const chainId = USDC[network].chainId;
  const chain: Chain = defineChain({
    id: chainId,
    name: USDC[network].caip2,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [rpcUrl] } },
  });
  // No retries inside viem: every outcome of a send is decided by asking the chain.
  const client = createPublicClient({
    chain,
    transport: http(rpcUrl, { retryCount: 0, timeout: 10_000 }),
    pollingInterval: 250,
  }) as PublicClient;
  const wallet = createWalletClient({
    account,
    chain,
    transport: http(rpcUrl, { retryCount: 0, timeout: 10_000 }),
  });
  return {
    network,
    address: account.address,
    usdc,
    chainId,
    client,
    async signTransfer({ to, amount, nonce }) {
      const request = await wallet.prepareTransactionRequest({
        to: usdc,
        data: encodeFunctionData({ abi: erc20Abi, functionName: "transfer", args: [to, amount] }),
        nonce,
      });
      const raw = await wallet.signTransaction(request);
      return { raw, hash: keccak256(raw) };
    },
  };
}

/** The receipt of `hash`, or undefined while it has none (other errors are thrown). */
export async function receiptOf(
  treasury: Treasury,
  hash: Hash,
): Promise<TransactionReceipt | undefined> {
  try {
    return await treasury.client.getTransactionReceipt({ hash });
  } catch (err) {
    if (err instanceof TransactionReceiptNotFoundError) return undefined;
    throw err;
  }
}

/** Whether the node knows `hash` (in its mempool or mined). */
export async function isKnown(treasury: Treasury, hash: Hash): Promise<boolean> {
  try {
    await treasury.client.getTransaction({ hash });
    return true;
  } catch (err) {
    if (err instanceof TransactionNotFoundError) return false;
    throw err;
  }
}

/**
 * How many transactions of `from` (the address that signed a payout, which may be an earlier
 * treasury key than today's) are mined: a nonce below it is used for good.
 */
export const minedNonce = (treasury: Treasury, from: Hex) =>
  treasury.client.getTransactionCount({ address: from, blockTag: "latest" });

/** The next nonce, counting what the node holds in its mempool. */
export const nextNonce = (treasury: Treasury) =>
  treasury.client.getTransactionCount({ address: treasury.address, blockTag: "pending" });

export const sendRaw = (treasury: Treasury, raw: Hex) =>
  treasury.client.sendRawTransaction({ serializedTransaction: raw });

/**
 * JSON-RPC codes with which a node's transaction pool refuses a transaction it will not keep
 * (nonce too low, insufficient funds, underpriced…): -32000 (geth and most clients), -32003
 * (transaction rejected; anvil).
 */
const REFUSALS = new Set([-32000, -32003]);

/**
 * Whether a send was refused by the node itself, so the transaction is in no mempool, as
 * opposed to a transport failure (timeout, connection lost, an HTTP error) or a generic error
 * (internal error, rate limit; possibly from a proxy in front of the node), after which nobody
 * knows whether a node took it.
 */
export function refusedByNode(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (e instanceof RpcRequestError) return REFUSALS.has(e.code);
  }
  return false;
}

/**
 * Why a transfer could not be prepared, in words fit for the creator (the chain's own message,
 * which may name internals, goes to the log only).
 */
export function preparationFailure(err: unknown): string {
  const is = (kind: new (...args: never[]) => Error) =>
    err instanceof BaseError && err.walk((e) => e instanceof kind) !== null;
  if (is(ExecutionRevertedError)) return "the transfer would revert: the treasury cannot cover it";
  if (is(InsufficientFundsError)) return "the treasury cannot pay the transaction fee";
  if (err instanceof AppError) return err.message;
  return "the chain could not be reached";
}

/** A short description of a chain error, for logs (never the key). */
export function reasonOf(err: unknown): string {
  const text = err instanceof BaseError ? err.shortMessage : (err as Error)?.message;
  return (text ?? String(err)).split("\n")[0]?.slice(0, 300) ?? "unknown error";
}
