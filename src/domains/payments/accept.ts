import { decodePaymentSignatureHeader } from "@x402/core/http";
import type { PaymentPayload, PaymentRequired, SettleResponse } from "@x402/core/types";
import { getAddress } from "viem";
import { z } from "zod";
import type { AppContext, ServiceContext } from "../../context.js";
import { AppError } from "../../errors.js";
import type { Network } from "../../lib/network.js";
import type { PaymentMetricNetwork, SettleOutcome } from "../../metrics/metrics.js";
import type { NetworkScope } from "../accounts/caller.js";
import { findOrCreateWalletAccount } from "../accounts/service.js";
import type { PackId } from "../ledger/packs.js";
import type { PaymentReason } from "./reasons.js";
import {
  applySettledPayment,
  claimPayment,
  getPayment,
  markPaymentFailed,
  markPaymentPending,
  type Payment,
} from "./service.js";

/** What one network's offer buys: credits for the key's account, or the payer's own. */
export interface PriceOnNetwork {
  network: Network;
  /** USDC base units. */
  amount: bigint;
  credits: bigint;
  purpose: "pack" | "generation";
  pack?: PackId;
  /** The API key's account; without one, the paying wallet's account. */
  accountId?: string;
}

/**
 * A call's price on each network that takes payments, for the 402's offers: a network where
 * `priceOn` refuses (the call cannot be quoted or served there) gets no offer, and when every
 * one refuses, the first refusal is the answer, the caller's own 4xx before any 402.
 */
export async function offeredPrices(
  networks: readonly Network[],
  priceOn: (network: Network) => PriceOnNetwork | Promise<PriceOnNetwork>,
): Promise<PriceOnNetwork[]> {
  const prices: PriceOnNetwork[] = [];
  let refusal: unknown;
  for (const network of networks) {
    try {
      prices.push(await priceOn(network));
    } catch (err) {
      refusal ??= err;
    }
  }
  if (prices.length === 0 && refusal) throw refusal;
  return prices;
}

export type PaymentOutcome<T> =
  | { status: "settled"; payment: Payment; result: T; settlement: SettleResponse }
  | { status: "pending"; payment: Payment };

/**
 * A request being paid for, as its transport tells it (HTTP's adapter is src/http/x402.ts):
 * plain values in, so any door (HTTP, MCP, a job) can take an x402 payment.
 */
export interface PaidRequest {
  /** The x402 payment as sent (HTTP's PAYMENT-SIGNATURE header); undefined when none was. */
  paymentHeader: string | undefined;
  /** The URL of what is paid for: the x402 resource the offers name. */
  resourceUrl: string;
  /** The caller sent an API key: a 402 then says the credits go to that key's account. */
  hasApiKey: boolean;
  /**
   * Called once the payment is settled on chain and before the work starts, so that even an
   * answer that fails after it can carry the settlement (HTTP's PAYMENT-RESPONSE).
   */
  onSettled?: (settlement: SettleResponse) => void;
}

/** What one call sells: its offers per network, and what the offers say it is. */
export interface Sale {
  prices: PriceOnNetwork[];
  description: string;
}

// An x402 v2 exact-scheme payment carrying an EIP-3009 authorization, and nothing else: a
// payload that also carried a Permit2 authorization would be settled by that one instead.
const paymentShape = z.object({
  x402Version: z.literal(2),
  accepted: z.record(z.string(), z.unknown()),
});
const authorizationPayload = z.strictObject({
  signature: z.string().regex(/^0x[0-9a-fA-F]+$/),
  authorization: z.strictObject({
    from: z.string().regex(/^0x[0-9a-fA-F]{40}$/),
    to: z.string(),
    value: z.string().regex(/^\d+$/),
    validAfter: z.string().regex(/^\d+$/),
    validBefore: z.string().regex(/^\d+$/),
    nonce: z.string().regex(/^0x[0-9a-fA-F]{64}$/),
  }),
});

function decode(header: string): PaymentPayload | undefined {
  try {
    return decodePaymentSignatureHeader(header);
  } catch {
    return undefined;
  }
}

/**
 * x402 on one request, settled before the work starts: no payment → 402 with the offers; a
 * payment → verified, claimed by its nonce, settled on chain, then recorded and minted in one
 * transaction together with `apply` (the work it pays for). We never start work unpaid, and a
 * caller whose settlement times out is never asked to pay again: the payment stays pending and
 * the chain decides (its credits land on the account when it confirms). A refusal is an
 * AppError `payment_required` whose details carry the x402 PaymentRequired object (`x402`).
 */
export async function acceptPayment<T>(
  ctx: AppContext,
  paid: PaidRequest & Sale,
  apply: (tx: ServiceContext, payment: Payment) => Promise<T>,
  prepare?: (payer: NetworkScope) => Promise<void>,
): Promise<PaymentOutcome<T>> {
  const { prices, description } = paid;
  const gateway = ctx.payments;
  const priced = prices.filter((p) => gateway.networks().includes(p.network));
  if (priced.length === 0) {
    // Throws payments_unavailable naming the first network asked for.
    gateway.networkConfig(prices[0]?.network ?? "test");
  }
  const offers = await Promise.all(priced.map((p) => gateway.offer(p.network, p.amount)));
  const resource = { url: paid.resourceUrl, description };
  const refuse = async (message: string, reason: string) => {
    const required = await gateway.paymentRequired(offers, resource, reason);
    return new AppError("payment_required", message, { reason, x402: required });
  };
  const purpose = prices[0]?.purpose ?? "generation";
  // A payment refused before settling: counted on its offer's network once one matched.
  const refusePayment = (network: PaymentMetricNetwork, message: string, reason: string) => {
    ctx.metrics.paymentRefused({ network, purpose });
    return refuse(message, reason);
  };

  const header = paid.paymentHeader;
  if (!header) {
    throw await refuse(
      paid.hasApiKey
        ? `Payment required: ${description}. Pay for it with x402 (USDC); the credits go to this key's account.`
        : `Payment required: ${description}. Pay with x402 (USDC), or send an API key.`,
      "payment_required",
    );
  }
  const payload = decode(header);
  const authorization =
    payload && paymentShape.safeParse(payload).success
      ? authorizationPayload.safeParse(payload.payload)
      : undefined;
  if (!payload || !authorization?.success) {
    throw await refusePayment(
      "unknown",
      // The wire's name for it: HTTP is the only transport that takes payments today.
      "The PAYMENT-SIGNATURE header is not a valid x402 payment.",
      "invalid_payload",
    );
  }
  const offer = await gateway.match(offers, payload);
  const price = offer && priced.find((p) => p.network === offer.network);
  if (!offer || !price) {
    throw await refusePayment(
      "unknown",
      "The payment does not match what this request costs on this network (asset, amount, recipient or network differ).",
      "no_matching_requirements",
    );
  }
  const verified = await gateway.verify(offer, payload);
  if (!verified.isValid) {
    throw await refusePayment(
      offer.network,
      `The payment was refused: ${verified.invalidReason ?? "invalid"}.`,
      verified.invalidReason ?? "invalid_payment",
    );
  }

  const auth = authorization.data.authorization;
  const payer = getAddress(auth.from);
  if (verified.payer && getAddress(verified.payer) !== payer) {
    throw await refusePayment(
      offer.network,
      "The payment's payer is not its authorization's signer.",
      "invalid_payload",
    );
  }
  // An authorization valid for longer than we asked would stay undecided that long if its
  // settlement timed out.
  const latest = ctx.clock().getTime() / 1000 + gateway.config.validitySeconds + 60;
  if (Number(auth.validBefore) > latest) {
    throw await refusePayment(
      offer.network,
      `The authorization is valid for longer than the ${gateway.config.validitySeconds} s asked for.`,
      "invalid_valid_before",
    );
  }
  const accountId = price.accountId ?? (await findOrCreateWalletAccount(ctx, payer)).id;
  // Work that must not fail once money has moved (fetching reference images) runs here: only
  // for a verified payment, and before anything is settled.
  await prepare?.({ accountId, network: offer.network });
  const payment = await claimPayment(ctx, {
    network: offer.network,
    accountId,
    payer,
    payTo: getAddress(offer.requirements.payTo),
    asset: getAddress(offer.requirements.asset),
    nonce: auth.nonce,
    amount: price.amount,
    credits: price.credits,
    purpose: price.purpose,
    pack: price.pack,
    validBefore: new Date(Number(auth.validBefore) * 1000),
  }).catch((err: unknown) => {
    // Already used, or being settled by another request: refused, never charged twice.
    if (err instanceof AppError) ctx.metrics.paymentRefused({ network: offer.network, purpose });
    throw err;
  });

  const settleStarted = performance.now();
  const settled = (outcome: SettleOutcome) =>
    ctx.metrics.paymentSettled(
      { network: offer.network, purpose, outcome },
      (performance.now() - settleStarted) / 1000,
    );
  const pending = async (transaction: string | null, why: PaymentReason, err?: unknown) => {
    settled("pending");
    ctx.logger.warn({ paymentId: payment.id, transaction, why, err }, "settlement outcome unknown");
    await markPaymentPending(ctx, payment.id, transaction, why);
    return {
      status: "pending" as const,
      payment: { ...payment, status: "pending" as const, transaction },
    };
  };
  let settlement: SettleResponse;
  try {
    settlement = await gateway.settle(offer, payload);
  } catch (err) {
    // We cannot tell whether it was broadcast: the chain will say.
    const transaction = (err as { transaction?: unknown }).transaction;
    return pending(
      typeof transaction === "string" && transaction ? transaction : null,
      "settlement_error",
      err,
    );
  }
  if (!settlement.success) {
    const reason: PaymentReason = settlement.errorReason ?? "settlement_failed";
    // Only a refusal of the authorization itself (re-verified before broadcast) proves that no
    // money moved; any other failure may have been broadcast, so the chain decides.
    if (!reason.startsWith("invalid_")) return pending(settlement.transaction || null, reason);
    settled("failed");
    await markPaymentFailed(ctx, payment.id, reason);
    throw await refuse(`The payment could not be settled: ${reason}. Nothing was charged.`, reason);
  }

  settled("settled");
  paid.onSettled?.(settlement);
  const input = { paymentId: payment.id, transaction: settlement.transaction };
  let applied: Awaited<ReturnType<typeof applySettledPayment<T>>>;
  try {
    applied = await applySettledPayment(ctx, input, apply);
  } catch (err) {
    // The work could not start: the payment stands, and its credits stay on the account.
    await applySettledPayment(ctx, input);
    throw err;
  }
  if (!applied) {
    // Reconciliation settled it first (it mints, but never does the work): the work is ours.
    const settled = await getPayment(ctx, payment.id);
    if (settled?.status !== "settled") throw new Error(`payment ${payment.id} vanished`);
    const result = await ctx.db.transaction((db) => apply({ ...ctx, db }, settled));
    return { status: "settled", payment: settled, result, settlement };
  }
  return {
    status: "settled",
    payment: applied.payment,
    result: applied.result as T,
    settlement,
  };
}

export function receiptJson(payment: Payment) {
  return {
    id: payment.id,
    status: payment.status,
    network: payment.network,
    payer: payment.payer,
    transaction: payment.transaction,
  };
}

/** The x402 PaymentRequired object a refusal carries, for a transport to encode its way. */
export function paymentRequiredOf(err: unknown): PaymentRequired | undefined {
  if (!(err instanceof AppError) || err.code !== "payment_required") return undefined;
  const required = err.details?.x402;
  return typeof required === "object" && required !== null
    ? (required as PaymentRequired)
    : undefined;
}
