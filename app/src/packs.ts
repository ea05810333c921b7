import { decodePaymentRequiredHeader } from "@x402/core/http";
import { ExactEvmScheme } from "@x402/evm/exact/client";
import { wrapFetchWithPaymentFromConfig } from "@x402/fetch";
import { authHeaders, readError } from "./api";
import { networkOfCaip2 } from "./networks";
import type { Network } from "./types";
import { type ConnectedWallet, x402Signer } from "./wallet";

/**
 * Buying a credit pack through x402, in two steps so the person sees what they sign: first the
 * API's 402 names the exact USDC amount, asset, network and treasury; then the official x402
 * client signs that requirement with the browser wallet, capped at exactly the shown amount.
 */

export const PACK_IDS = ["starter", "creator", "pro"] as const;
export type PackId = (typeof PACK_IDS)[number];

/**
 * What each pack gives. No public route lists packs or tiers, so this mirrors the README's
 * tables; the price actually asked is always read from the API's 402 before anything is signed.
 */
export const PACKS: Record<PackId, { credits: number; usd: number; tier: string }> = {
  starter: { credits: 1000, usd: 8, tier: "free" },
  creator: { credits: 3000, usd: 24, tier: "creator" },
  pro: { credits: 6000, usd: 40, tier: "pro" },
};

/** Requests per minute by tier (README, Rate limits). */
export const TIER_LIMITS: Record<string, { generate: number; batch: number; poll: number }> = {
  free: { generate: 5, batch: 25, poll: 50 },
  creator: { generate: 15, batch: 75, poll: 150 },
  pro: { generate: 30, batch: 150, poll: 300 },
};

export interface PackOffer {
  pack: PackId;
  network: Network;
  caip2: string;
  /** USDC base units, as the requirement states them. */
  amount: string;
  asset: string;
  payTo: string;
}

const packPath = (pack: PackId) => `/v1/credits/packs/${pack}`;

export async function fetchPackOffer(pack: PackId, apiKey: string): Promise<PackOffer> {
  const res = await fetch(packPath(pack), { method: "POST", headers: authHeaders(apiKey) });
  const header = res.headers.get("PAYMENT-REQUIRED");
  if (res.status !== 402 || !header) throw await readError(res);
  const required = decodePaymentRequiredHeader(header);
  const offer = required.accepts[0];
  const network = offer && networkOfCaip2(offer.network);
  if (!offer || !network) throw new Error("The API offered no payment on a known network.");
  return {
    pack,
    network,
    caip2: offer.network,
    amount: offer.amount,
    asset: offer.asset,
    payTo: offer.payTo,
  };
}

export interface PackPurchase {
  credits: number;
  creditBalance: number;
  membershipTier: string;
  payment: { id: string; status: string; transaction: string | null; network: Network };
}

/** "$24.000000" from 24000000 base units: the x402 client's spend cap, exactly the offer. */
const dollars = (units: string) => {
  const v = BigInt(units);
  return `$${v / 1_000_000n}.${(v % 1_000_000n).toString().padStart(6, "0")}`;
};

export async function buyPack(
  offer: PackOffer,
  apiKey: string,
  wallet: ConnectedWallet,
): Promise<PackPurchase> {
  const payingFetch = wrapFetchWithPaymentFromConfig(fetch, {
    schemes: [
      {
        network: offer.caip2 as `${string}:${string}`,
        client: new ExactEvmScheme(x402Signer(wallet)),
      },
    ],
    spendControls: { maxAmountPerPayment: dollars(offer.amount) },
  });
  const res = await payingFetch(packPath(offer.pack), {
    method: "POST",
    headers: authHeaders(apiKey),
  });
  if (!res.ok) throw await readError(res);
  return (await res.json()) as PackPurchase;
}
