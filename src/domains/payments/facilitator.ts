import { x402Facilitator } from "@x402/core/facilitator";
import { HTTPFacilitatorClient } from "@x402/core/server";
import type {
  PaymentPayload,
  PaymentRequirements,
  SettleResponse,
  SupportedResponse,
  VerifyResponse,
} from "@x402/core/types";
import { toFacilitatorEvmSigner } from "@x402/evm";
import { registerExactEvmScheme } from "@x402/evm/exact/facilitator";
import { createWalletClient, defineChain, type Hex, http, publicActions } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { MULTICALL3_ADDRESS } from "../../chain/networks.js";
import type { NetworkPaymentConfig } from "../../config.js";

/** What our resource servers need of a facilitator (x402's FacilitatorClient). */
export interface Facilitator {
  verify(payload: PaymentPayload, requirements: PaymentRequirements): Promise<VerifyResponse>;
  settle(payload: PaymentPayload, requirements: PaymentRequirements): Promise<SettleResponse>;
  getSupported(): Promise<SupportedResponse>;
}

/**
 * Broadcasts from one key, one at a time. Two settlements sending at once would both take the
 * same account nonce ("nonce too low" for the second); waiting for receipts stays concurrent.
 */
const broadcastQueues = new Map<string, Promise<unknown>>();
function serialized<T>(key: string, send: () => Promise<T>): Promise<T> {
  const previous = broadcastQueues.get(key) ?? Promise.resolve();
  const next = previous.then(send, send);
  const settledTail = next.catch(() => {});
  broadcastQueues.set(key, settledTail);
  void settledTail.then(() => {
    if (broadcastQueues.get(key) === settledTail) broadcastQueues.delete(key);
  });
  return next;
}

/**
 * The x402 facilitator in this process (development and tests): the EVM exact scheme settling
 * with its own key over the network's RPC. `confirmationTimeoutMs` bounds each receipt wait; past
 * it a settlement reports settlement_pending with its transaction hash.
 */
export function inProcessFacilitator(options: {
  rpcUrl: string;
  chainId: number;
  caip2: `${string}:${string}`;
  privateKey: Hex;
  confirmationTimeoutMs: number;
}): Facilitator {
  const account = privateKeyToAccount(options.privateKey);
  const chain = defineChain({
    id: options.chainId,
    name: options.caip2,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [options.rpcUrl] } },
    // x402 diagnoses a failed simulation (which check failed) through Multicall3.
    contracts: { multicall3: { address: MULTICALL3_ADDRESS } },
  });
  const client = createWalletClient({
    account,
    chain,
    transport: http(options.rpcUrl, { retryCount: 0, timeout: 10_000 }),
    // Receipts are polled for; Base makes a block every 2 s, anvil on every transaction.
    pollingInterval: 250,
  }).extend(publicActions);
  const queue = `${options.chainId}:${account.address}`;
  const signer = toFacilitatorEvmSigner(
    {
      address: account.address,
      readContract: (args) =>
        client.readContract(args as Parameters<typeof client.readContract>[0]),
      verifyTypedData: (args) =>
        client.verifyTypedData(args as Parameters<typeof client.verifyTypedData>[0]),
      writeContract: (args) =>
        serialized(queue, () =>
          client.writeContract(args as Parameters<typeof client.writeContract>[0]),
        ),
      sendTransaction: (args) => serialized(queue, () => client.sendTransaction(args)),
      waitForTransactionReceipt: (args) => client.waitForTransactionReceipt(args),
      getCode: (args) => client.getCode(args),
    },
    { confirmationTimeoutMs: options.confirmationTimeoutMs },
  );
  const facilitator = registerExactEvmScheme(new x402Facilitator(), {
    signer,
    networks: options.caip2,
  });
  return {
    verify: (payload, requirements) => facilitator.verify(payload, requirements),
    settle: (payload, requirements) => facilitator.settle(payload, requirements),
    getSupported: async () => facilitator.getSupported() as SupportedResponse,
  };
}

/** A network's facilitator as configured: a URL (production), or in-process with a key. */
export function facilitatorFor(
  config: NetworkPaymentConfig,
  chain: { chainId: number; caip2: `${string}:${string}` },
  settleTimeoutMs: number,
): Facilitator {
  if ("url" in config.facilitator) {
    // The URL is always ours to give: x402's client would otherwise default to a public one.
    return new HTTPFacilitatorClient({
      url: config.facilitator.url,
      timeoutMs: settleTimeoutMs + 5_000,
    });
  }
  return inProcessFacilitator({
    rpcUrl: config.rpcUrl,
    ...chain,
    privateKey: config.facilitator.privateKey,
    confirmationTimeoutMs: settleTimeoutMs,
  });
}
