import { sql } from "drizzle-orm";
import type { ServiceContext } from "../../context.js";
import { AppError } from "../../errors.js";
import { newId } from "../../lib/ids.js";
import type { Network } from "../../lib/network.js";
import { systemLedgerAccount, userLedgerAccount } from "../ledger/accounts.js";
import type { PackId } from "../ledger/packs.js";
import { transfer } from "../ledger/service.js";

export type PaymentStatus = "settling" | "pending" | "settled" | "failed";

export interface Payment {
  id: string;
  network: Network;
  accountId: string;
  payer: string;
  payTo: string;
  asset: string;
  nonce: string;
  amount: bigint;
  credits: bigint;
  purpose: "pack" | "generation";
  pack: PackId | null;
  generationId: string | null;
  status: PaymentStatus;
  transaction: string | null;
  validBefore: Date;
  error: string | null;
  createdAt: Date;
  updatedAt: Date;
  settledAt: Date | null;
}

type PaymentRow = {
  id: string;
  network: Network;
  account_id: string;
  payer: string;
  pay_to: string;
  asset: string;
  nonce: string;
  amount: string;
  credits: string;
  purpose: "pack" | "generation";
  pack: PackId | null;
  generation_id: string | null;
  status: PaymentStatus;
  transaction: string | null;
  valid_before: Date | string;
  error: string | null;
  created_at: Date | string;
  updated_at: Date | string;
  settled_at: Date | string | null;
};

const toPayment = (r: PaymentRow): Payment => ({
  id: r.id,
  network: r.network,
  accountId: r.account_id,
  payer: r.payer,
  payTo: r.pay_to,
  asset: r.asset,
  nonce: r.nonce,
  amount: BigInt(r.amount),
  credits: BigInt(r.credits),
  purpose: r.purpose,
  pack: r.pack,
  generationId: r.generation_id,
  status: r.status,
  transaction: r.transaction,
  validBefore: new Date(r.valid_before),
  error: r.error,
  createdAt: new Date(r.created_at),
  updatedAt: new Date(r.updated_at),
  settledAt: r.settled_at === null ? null : new Date(r.settled_at),
});

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

/**
 * Takes an authorization for this request, before anything is broadcast. Its nonce is unique in
 * PostgreSQL: a second request carrying it while the first runs gets 409 payment_in_flight, and
 * one arriving after it settled gets 402 (the authorization is spent). Only a payment that
 * failed without moving money may be tried again.
 */
export async function claimPayment(ctx: ServiceContext, claim: PaymentClaim): Promise<Payment> {
  const now = ctx.clock();
  const nonce = claim.nonce.toLowerCase();
  const { rows } = await ctx.db.execute<PaymentRow>(sql`
    insert into payments (id, network, account_id, payer, pay_to, asset, nonce, amount, credits, purpose, pack,
                          status, valid_before, created_at, updated_at)
    values (${newId("pay")}, ${claim.network}::network, ${claim.accountId}, ${claim.payer}, ${claim.payTo},
            ${claim.asset}, ${nonce}, ${claim.amount.toString()}::bigint, ${claim.credits.toString()}::bigint,
            ${claim.purpose}::payment_purpose, ${claim.pack ?? null}, 'settling', ${claim.validBefore}, ${now}, ${now})
    on conflict (network, asset, payer, nonce) do update
      set status = 'settling', account_id = excluded.account_id, amount = excluded.amount,
          credits = excluded.credits, purpose = excluded.purpose, pack = excluded.pack,
          pay_to = excluded.pay_to, valid_before = excluded.valid_before, error = null,
          updated_at = excluded.updated_at
      where payments.status = 'failed'
    returning *`);
  const claimed = rows[0];
  if (claimed) return toPayment(claimed);
  const existing = await findPaymentByAuthorization(
    ctx,
    claim.network,
    claim.asset,
    claim.payer,
    nonce,
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

async function findPaymentByAuthorization(
  ctx: ServiceContext,
  network: Network,
  asset: string,
  payer: string,
  nonce: string,
): Promise<Payment | undefined> {
  const { rows } = await ctx.db.execute<PaymentRow>(sql`
    select * from payments where network = ${network}::network and asset = ${asset} and payer = ${payer} and nonce = ${nonce}`);
  return rows[0] && toPayment(rows[0]);
}

export async function getPayment(ctx: ServiceContext, id: string): Promise<Payment | undefined> {
  const { rows } = await ctx.db.execute<PaymentRow>(sql`select * from payments where id = ${id}`);
  return rows[0] && toPayment(rows[0]);
}

/** Settlement never moved money: the authorization may be tried again. */
export async function markPaymentFailed(ctx: ServiceContext, id: string, error: string) {
  await ctx.db.execute(sql`
    update payments set status = 'failed', error = ${error.slice(0, 500)}, updated_at = ${ctx.clock()}
    where id = ${id} and status in ('settling', 'pending')`);
}

/**
 * The outcome is unknown (a receipt that did not come in time, a facilitator that stopped
 * answering): the chain decides, through the resolve_payment job. The payer is never asked again.
 */
export async function markPaymentPending(
  ctx: ServiceContext,
  id: string,
  transaction: string | null,
  error: string,
) {
  await ctx.db.execute(sql`
    with marked as (
      update payments set status = 'pending', transaction = coalesce(${transaction}, transaction),
                          error = ${error.slice(0, 500)}, updated_at = ${ctx.clock()}
      where id = ${id} and status = 'settling' returning id)
    select graphile_worker.add_job('resolve_payment', json_build_object('paymentId', id),
             job_key => 'resolve_payment:' || id, run_at => now() + interval '5 seconds', max_attempts => 25)
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
    const { rows } = await db.execute<PaymentRow>(sql`
      update payments set status = 'settled', transaction = ${input.transaction}, error = null,
                          settled_at = ${now}, updated_at = ${now}
      where id = ${input.paymentId} and status in ('settling', 'pending', 'failed')
      returning *`);
    const row = rows[0];
    if (!row) return undefined;
    const payment = toPayment(row);
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
  await tx.db.execute(
    sql`update payments set generation_id = ${generationId} where id = ${paymentId}`,
  );
}

/** The account's payments on one network, newest first; `before` is the last id seen. */
export async function listPayments(
  ctx: ServiceContext,
  scope: { accountId: string; network: Network },
  page: { limit: number; before?: string | undefined },
): Promise<Payment[]> {
  const { rows } = await ctx.db.execute<PaymentRow>(sql`
    select * from payments
    where account_id = ${scope.accountId} and network = ${scope.network}::network
      and (${page.before ?? null}::text is null or id < ${page.before ?? null}::text)
    order by id desc limit ${page.limit}`);
  return rows.map(toPayment);
}

export async function unresolvedPayments(
  ctx: ServiceContext,
  network: Network,
): Promise<Payment[]> {
  const { rows } = await ctx.db.execute<PaymentRow>(sql`
    select * from payments where network = ${network}::network and status in ('settling', 'pending')
    order by created_at`);
  return rows.map(toPayment);
}

export const usdcToJson = (units: bigint) => {
  const whole = units / 1_000_000n;
  const fraction = (units % 1_000_000n).toString().padStart(6, "0");
  return `${whole}.${fraction}`;
};

export function paymentJson(p: Payment) {
  return {
    id: p.id,
    network: p.network,
    payer: p.payer,
    payTo: p.payTo,
    amountUsdc: usdcToJson(p.amount),
    credits: Number(p.credits),
    purpose: p.purpose,
    pack: p.pack,
    generationId: p.generationId,
    status: p.status,
    transaction: p.transaction,
    createdAt: p.createdAt.toISOString(),
    settledAt: p.settledAt?.toISOString() ?? null,
  };
}
