import type { ClientEvmSigner } from "@x402/evm";
import {
  type Address,
  createWalletClient,
  custom,
  type EIP1193Provider,
  type WalletClient,
} from "viem";
import { createSiweMessage } from "viem/siwe";
import { api } from "./api";
import { NETWORKS } from "./networks";
import type { Account, Network } from "./types";

/**
 * The browser wallet, through viem over the injected EIP-1193 provider (window.ethereum).
 * The app only asks the wallet for its address and for signatures (EIP-4361 sign-in, EIP-3009
 * payment authorizations); it never reads the chain, so it needs no RPC URL of its own.
 */

declare global {
  interface Window {
    ethereum?: EIP1193Provider;
  }
}

export interface ConnectedWallet {
  client: WalletClient;
  address: Address;
}

export async function connectWallet(): Promise<ConnectedWallet> {
  const provider = window.ethereum;
  if (!provider) throw new Error("No browser wallet found. Install one, or paste an API key.");
  const client = createWalletClient({ transport: custom(provider) });
  const [address] = await client.requestAddresses();
  if (!address) throw new Error("The wallet shared no account.");
  return { client, address };
}

interface NonceAnswer {
  nonce: string;
  domain: string;
  uri: string;
  version: "1";
  statement: string;
  chainIds: number[];
}

interface VerifyAnswer {
  sessionToken: string;
  expiresAt: string;
  account: Account;
}

/** Sign-In with Ethereum: the API names the domain, URI and statement the message must carry. */
export async function signInWithWallet(wallet: ConnectedWallet, network: Network) {
  const nonce = await api<NonceAnswer>("/v1/auth/nonce", { method: "POST" });
  const message = createSiweMessage({
    address: wallet.address,
    chainId: NETWORKS[network].chainId,
    domain: nonce.domain,
    uri: nonce.uri,
    nonce: nonce.nonce,
    version: nonce.version,
    statement: nonce.statement,
    issuedAt: new Date(),
  });
  const signature = await wallet.client.signMessage({ account: wallet.address, message });
  return api<VerifyAnswer>("/v1/auth/verify", { json: { message, signature } });
}

/** The x402 client's signer, adapted from the wallet: an address and EIP-712 signing. */
export function x402Signer(wallet: ConnectedWallet): ClientEvmSigner {
  return {
    address: wallet.address,
    signTypedData: (typed) =>
      wallet.client.signTypedData({
        // The x402 scheme builds the EIP-3009 typed data; viem checks it against its types.
        ...(typed as Parameters<WalletClient["signTypedData"]>[0]),
        account: wallet.address,
      }),
  };
}
