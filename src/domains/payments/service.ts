import { and, desc, eq, inArray, lt, sql } from "drizzle-orm";
import type { ServiceContext } from "../../context.js";
import { AppError } from "../../errors.js";
import { enqueue, enqueueSql } from "../../jobs/definitions.js";
import { creditsToJson, usdcToJson } from "../../lib/credits.js";
import { newId } from "../../lib/ids.js";
import type { Network } from "../../lib/network.js";
import type { NetworkScope } from "../accounts/caller.js";
import { systemLedgerAccount, userLedgerAccount } from "../ledger/accounts.js";
import type { PackId } from "../ledger/packs.js";
import { transfer } from "../ledger/service.js";
import type { PaymentReason } from "./reasons.js";
import { payments } from "./schema.js";

/** A payments row, as drizzle reads it. */
export type Payment = typeof payments.$inferSelect;
export type PaymentStatus = Payment["status"];

export interface PaymentClaim {
  network: Network;
  accountId: string;
  payer: string;
  payTo: string;
  asset: string;
  nonce: string;
  amount: bigint;
  credits: bigint;
  purpose: "pack" | "generation";
  pack?: PackId | undefined;
  validBefore: Date;
}

/** Past the live request's settlement window, when a claim left behind is decided. */
const RESOLVE_MARGIN_MS = 5_000;

const resolveJobKey = (paymentId: string) => `resolve_payment:${paymentId}`;

/** The claim's resolve job is no longer needed once the payment is decided. */
const removeResolveJob = (tx: ServiceContext, paymentId: string) =>
  tx.db.execute(sql`select graphile_worker.remove_job(${resolveJobKey(paymentId)})`);

/**
 * Takes an authorization for this request, before anything is broadcast. Its nonce is unique in
 * PostgreSQL: a second request carrying it while the first runs gets 409 payment_in_flight, and
 * one arriving after it settled gets 402 (the authorization is spent). Only a payment that
 * failed without moving money may be tried again.
 */
export async function claimPayment(ctx: ServiceContext, claim: PaymentClaim): Promise<Payment> {
  const now = ctx.clock();
  const nonce = claim.nonce.toLowerCase();
  const values = {
    network: claim.network,
    accountId: claim.accountId,
    payer: claim.payer,
    payTo: claim.payTo,
    asset: claim.asset,
    nonce,
    amount: claim.amount,
    credits: claim.credits,
    purpose: claim.purpose,
    pack: claim.pack ?? null,
    status: "settling" as const,
    validBefore: claim.validBefore,
    error: null,
    updatedAt: now,
  };
  const claimed = await ctx.db.transaction(async (db) => {
    const [row] = await db
      .insert(payments)
      .values({ ...values, id: newId("pay"), createdAt: now })
      .onConflictDoUpdate({
        target: [payments.network, payments.asset, payments.payer, payments.nonce],
        set: values,
        setWhere: eq(payments.status, "failed"),
      })
      .returning();
    // Queued with the claim, so a process that dies between settling and recording (a crash,
    // a kill) always leaves a job that decides the payment from the chain once the live
    // request would have finished: the wallet's credits land within a minute of that, not at
    // the next reconciliation. A request that finishes removes it.
    if (row) {
      const settleWindowMs = 2 * ctx.config.payments.settleTimeoutMs + RESOLVE_MARGIN_MS;
      await enqueue(
        db,
        "resolve_payment",
        { paymentId: row.id },
        {
          jobKey: resolveJobKey(row.id),
          runAt: sql`now() + make_interval(secs => ${settleWindowMs / 1000})`,
        },
      );
    }
    return row;
  });
  if (claimed) return claimed;
  const [existing] = await ctx.db
    .select()
    .from(payments)
    .where(
      and(
        eq(payments.network, claim.network),
        eq(payments.asset, claim.asset),
        eq(payments.payer, claim.payer),
        eq(payments.nonce, nonce),
      ),
    );
  if (existing?.status === "settled") {
    throw new AppError(
      "payment_required",
      "This payment authorization was already used; sign a new one.",
      { reason: "authorization_already_used", paymentId: existing.id },
    );
  }
  throw new AppError(
    "payment_in_flight",
    "This payment authorization is already being settled by another request; it is not charged twice.",
    { paymentId: existing?.id },
  );
}

export async function getPayment(ctx: ServiceContext, id: string): Promise<Payment | undefined> {
  const [payment] = await ctx.db.select().from(payments).where(eq(payments.id, id));
  return payment;
}

/** Settlement never moved money: the authorization may be tried again. */
export async function markPaymentFailed(ctx: ServiceContext, id: string, error: PaymentReason) {
  await ctx.db.transaction(async (db) => {
    const marked = await db
      .update(payments)
      .set({ status: "failed", error: error.slice(0, 500), updatedAt: ctx.clock() })
      .where(and(eq(payments.id, id), inArray(payments.status, ["settling", "pending"])))
      .returning({ id: payments.id });
    if (marked.length) await removeResolveJob({ ...ctx, db }, id);
  });
}

/**
 * The outcome is unknown (a receipt that did not come in time, a facilitator that stopped
 * answering): the chain decides, through the resolve_payment job. The payer is never asked again.
 */
export async function markPaymentPending(
  ctx: ServiceContext,
  id: string,
  transaction: string | null,
  error: PaymentReason,
) {
  await ctx.db.execute(sql`
    with marked as (
      update payments set status = 'pending', transaction = coalesce(${transaction}, transaction),
                          error = ${error.slice(0, 500)}, updated_at = ${ctx.clock()}
      where id = ${id} and status = 'settling' returning id)
    select ${enqueueSql("resolve_payment", { paymentId: sql`id` }, { jobKey: sql`'resolve_payment:' || id`, runAt: sql`now() + interval '5 seconds'` })}
    from marked`);
}

export const mintTransferId = (paymentId: string) => `payment:${paymentId}`;

/**
 * Records a settled payment and mints its credits, in one transaction, exactly once: the status
 * guard and the mint's transfer id both make a second call a no-op. `then` runs inside the same
 * transaction (a paid generation's holds and jobs); returns undefined when already applied.
 */
export async function applySettledPayment<T>(
  ctx: ServiceContext,
  input: { paymentId: string; transaction: string },
  then?: (tx: ServiceContext, payment: Payment) => Promise<T>,
): Promise<{ payment: Payment; result: T | undefined } | undefined> {
  return ctx.db.transaction(async (db) => {
    const tx = { ...ctx, db };
    const now = ctx.clock();
    const [payment] = await db
      .update(payments)
      .set({
        status: "settled",
        transaction: input.transaction,
        error: null,
        settledAt: now,
        updatedAt: now,
      })
      .where(
        and(
          eq(payments.id, input.paymentId),
          inArray(payments.status, ["settling", "pending", "failed"]),
        ),
      )
      .returning();
    if (!payment) return undefined;
    await removeResolveJob(tx, payment.id);
    await transfer(tx, {
      id: mintTransferId(payment.id),
      network: payment.network,
      debit: systemLedgerAccount(payment.network, "issuance"),
      credit: userLedgerAccount(payment.accountId, payment.network),
      amount: payment.credits,
      kind: payment.purpose === "pack" ? "pack_purchase" : "payment",
      reference: payment.id,
      metadata: {
        ...(payment.pack && { pack: payment.pack }),
        payer: payment.payer,
        transaction: payment.transaction,
        usdc: payment.amount.toString(),
      },
    });
    return { payment, result: then ? await then(tx, payment) : undefined };
  });
}

/** Links a paid generation to its payment (set in the transaction that created it). */
export async function linkGeneration(tx: ServiceContext, paymentId: string, generationId: string) {
  await tx.db.update(payments).set({ generationId }).where(eq(payments.id, paymentId));
}

/** The account's payments on one network, newest first; `before` is the last id seen. */
export async function listPayments(
  ctx: ServiceContext,
  scope: NetworkScope,
  page: { limit: number; before?: string | undefined },
): Promise<Payment[]> {
  return ctx.db
    .select()
    .from(payments)
    .where(
      and(
        eq(payments.accountId, scope.accountId),
        eq(payments.network, scope.network),
        page.before === undefined ? undefined : lt(payments.id, page.before),
      ),
    )
    .orderBy(desc(payments.id))
    .limit(page.limit);
}

/**
 * The payment of an authorization, by its nonce alone (newest first if several wallets or
 * networks used the same one). The nonce is 32 random bytes that only the payer knows until it
 * is on chain, and everything answered here is what the chain shows once it settled (payer,
 * treasury, amount, transaction) plus our status, credits and generation id, which grants no
 * access by itself: so it needs no credential, and a wallet whose answer was lost can find it.
 */
export async function findPaymentByNonce(
  ctx: ServiceContext,
  nonce: string,
): Promise<Payment | undefined> {
  const [payment] = await ctx.db
    .select()
    .from(payments)
    .where(eq(payments.nonce, nonce.toLowerCase()))
    .orderBy(desc(payments.createdAt))
    .limit(1);
  return payment;
}

export function unresolvedPayments(ctx: ServiceContext, network: Network): Promise<Payment[]> {
  return ctx.db
    .select()
    .from(payments)
    .where(and(eq(payments.network, network), inArray(payments.status, ["settling", "pending"])))
    .orderBy(payments.createdAt);
}

export function paymentJson(p: Payment) {
  return {
    id: p.id,
    network: p.network,
    payer: p.payer,
    payTo: p.payTo,
    amountUsdc: usdcToJson(p.amount),
    credits: creditsToJson(p.credits),
    purpose: p.purpose,
    pack: p.pack,
    generationId: p.generationId,
    status: p.status,
    transaction: p.transaction,
    createdAt: p.createdAt.toISOString(),
    settledAt: p.settledAt?.toISOString() ?? null,
  };
}
