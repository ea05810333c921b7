import {
  decodePaymentSignatureHeader,
  encodePaymentRequiredHeader,
  encodePaymentResponseHeader,
} from "@x402/core/http";
import type { PaymentPayload, SettleResponse } from "@x402/core/types";
import type { Request, Response } from "express";
import { getAddress } from "viem";
import { z } from "zod";
import type { AppContext, ServiceContext } from "../../context.js";
import { AppError } from "../../errors.js";
import type { Network } from "../../lib/network.js";
import type { PaymentMetricNetwork, SettleOutcome } from "../../metrics/metrics.js";
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

export type PaymentOutcome<T> =
  | { status: "settled"; payment: Payment; result: T; settlement: SettleResponse }
  | { status: "pending"; payment: Payment };

const PAYMENT_HEADER = "payment-signature";

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
 * the chain decides (its credits land on the account when it confirms).
 */
export async function acceptPayment<T>(
  ctx: AppContext,
  req: Request,
  res: Response,
  prices: PriceOnNetwork[],
  description: string,
  apply: (tx: ServiceContext, payment: Payment) => Promise<T>,
  prepare?: (payer: { accountId: string; network: Network }) => Promise<void>,
): Promise<PaymentOutcome<T>> {
  const gateway = ctx.payments;
  const priced = prices.filter((p) => gateway.networks().includes(p.network));
  if (priced.length === 0) {
    // Throws payments_unavailable naming the first network asked for.
    gateway.networkConfig(prices[0]?.network ?? "test");
  }
  const offers = await Promise.all(priced.map((p) => gateway.offer(p.network, p.amount)));
  const resource = { url: `${ctx.config.http.publicUrl}${req.originalUrl}`, description };
  const refuse = async (message: string, reason: string, extra?: Record<string, unknown>) => {
    const required = await gateway.paymentRequired(offers, resource, reason);
    return new AppError(
      "payment_required",
      message,
      { reason, ...extra, x402: required },
      {
        headers: { "PAYMENT-REQUIRED": encodePaymentRequiredHeader(required) },
      },
    );
  };
  const purpose = prices[0]?.purpose ?? "generation";
  // A payment refused before settling: counted on its offer's network once one matched.
  const refusePayment = (network: PaymentMetricNetwork, message: string, reason: string) => {
    ctx.metrics.paymentRefused({ network, purpose });
    return refuse(message, reason);
  };

  const header = req.get(PAYMENT_HEADER);
  if (!header) {
    throw await refuse(
      req.caller
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
  res.set("PAYMENT-RESPONSE", encodePaymentResponseHeader(settlement));
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

/** The answer to a request whose payment was broadcast but not confirmed in time. */
export function respondPending(res: Response, payment: Payment) {
  res.status(202).json({
    status: "payment_pending",
    payment: receiptJson(payment),
    message:
      "The payment was broadcast but is not confirmed yet. Once the chain confirms it, its credits are added to the paying wallet's account (GET /v1/payments with a key for that wallet shows it); do not pay again.",
  });
}
