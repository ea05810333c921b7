import { and, desc, eq, inArray, lt, sql } from "drizzle-orm";
import { getAddress, type Hash, type Hex, type TransactionReceipt } from "viem";
import type { ServiceContext } from "../../context.js";
import type { Database } from "../../db/client.js";
import { AppError, notFound } from "../../errors.js";
import { creditsFromJson, creditsToJson, formatCredits, usdcToJson } from "../../lib/credits.js";
import { newId } from "../../lib/ids.js";
import type { NetworkScope } from "../accounts/caller.js";
import { findAccount } from "../accounts/service.js";
import { systemLedgerAccount, userLedgerAccount } from "../ledger/accounts.js";
import { lockBalance, PAYOUT_HOLD_KIND, placeHold, postHold, voidHold } from "../ledger/service.js";
import { payouts } from "./schema.js";
import {
  isKnown,
  minedNonce,
  nextNonce,
  preparationFailure,
  reasonOf,
  receiptOf,
  refusedByNode,
  sendRaw,
  type Treasury,
  treasuryFor,
} from "./treasury.js";

/**
 * Creator payouts: available earnings sent as USDC from the treasury to the creator's wallet.
 *
 * 1. reserve (one transaction): the payout row (`pending`) and a ledger hold that takes the
 *    credits out of the creator's earnings. The database refuses a hold larger than the
 *    balance, so concurrent payouts can never overdraw.
 * 2. broadcast (under a PostgreSQL advisory lock per treasury key, so processes never race
 *    for a nonce): sign the USDC transfer locally with an explicit nonce, commit its hash and
 *    bytes on the row (`broadcast`), and only then send the raw bytes.
 * 3. settle, from what the chain says of that hash alone: mined successfully → `paid`, the
 *    hold posted to the issuance account (the credits leave the system as USDC) with the
 *    transaction hash on the ledger transfer; reverted, refused by the node, or its nonce
 *    taken by another transaction → `failed`, the hold voided and the earnings available again.
 *    Anything else (no answer, not mined yet) stays `broadcast` until the chain decides;
 *    reconciliation (a cron task) sends the same signed bytes again when the node has lost them.
 *
 * A payout is failed only when its transaction can never be mined (none was ever signed, or the
 * chain proves it cannot be), so its earnings are never both paid and available.
 */

export type Payout = typeof payouts.$inferSelect;
export type PayoutStatus = Payout["status"];

/**
 * The payout steps write outside their own lock's transaction (a signed transaction's hash must
 * be committed before it is sent), so they run on the pool, never inside a caller's transaction.
 */
export type PayoutContext = ServiceContext & { db: Database };

/** Payout holds never expire (the sweeper skips them); the date only fills the column. */
const PAYOUT_HOLD_DAYS = 365;
/** How long a request waits for another sender to release the treasury's lock. */
const LOCK_WAIT_MS = 15_000;
/** Advisory lock namespace of payout senders (classid of pg_advisory_xact_lock(int, int)). */
const SENDER_LOCK_CLASS = 0x706f7574; // "pout"

/** A ledger unit is one USDC base unit: a payout's USDC is its amount, with no rounding. */
const usdcOf = (units: bigint) => units;

export async function getPayout(ctx: ServiceContext, id: string): Promise<Payout | undefined> {
  const [row] = await ctx.db.select().from(payouts).where(eq(payouts.id, id));
  return row;
}

async function findByKey(ctx: ServiceContext, scope: NetworkScope, key: string) {
  const [row] = await ctx.db
    .select()
    .from(payouts)
    .where(
      and(
        eq(payouts.accountId, scope.accountId),
        eq(payouts.network, scope.network),
        eq(payouts.idempotencyKey, key),
      ),
    );
  return row;
}

const isKeyRace = (err: unknown) =>
  (err as { cause?: { constraint?: string } }).cause?.constraint ===
  "payouts_account_idempotency_key";

export interface PayoutRequest {
  /** Credits to pay out; all available earnings when absent. */
  credits?: bigint | undefined;
  /** The request's Idempotency-Key and the hash of what it asks. */
  idempotency: { key: string; hash: string };
}

/**
 * Reserves, broadcasts and (within PAYOUT_RECEIPT_TIMEOUT_MS) settles a payout. The same
 * Idempotency-Key returns the same payout, moved on to where the chain has it now, and never
 * pays anything more; with another body it is 422 idempotency_key_reused.
 */
export async function createPayout(
  ctx: PayoutContext,
  scope: NetworkScope,
  request: PayoutRequest,
): Promise<{ payout: Payout; replayed: boolean }> {
  const reserved = await reservePayout(ctx, scope, request);
  const payout = await advancePayout(ctx, reserved.payout.id, {
    waitMs: ctx.config.payouts.receiptTimeoutMs,
  });
  return { payout, replayed: reserved.replayed };
}

/** Step 1: the payout row and the hold on the earnings, in one transaction. */
export async function reservePayout(
  ctx: PayoutContext,
  scope: NetworkScope,
  request: PayoutRequest,
): Promise<{ payout: Payout; replayed: boolean }> {
  const { key, hash } = request.idempotency;
  try {
    return await ctx.db.transaction(async (db) => {
      const tx = { ...ctx, db };
      const replay = async () => {
        const first = await findByKey(tx, scope, key);
        if (first && first.requestHash !== hash) {
          throw new AppError(
            "idempotency_key_reused",
            "That Idempotency-Key was used with a different request.",
          );
        }
        return first && { payout: first, replayed: true };
      };
      const replayed = await replay();
      if (replayed) return replayed;
      const treasury = treasuryFor(ctx.config, scope.network);
      const account = await findAccount(tx, scope.accountId);
      if (!account.walletAddress) {
        throw new AppError(
          "payout_wallet_missing",
          `Account ${scope.accountId} has no wallet address to pay out to.`,
        );
      }
      // The earnings balance, locked: concurrent payouts of "everything available" queue here.
      const available = await lockBalance(
        tx,
        userLedgerAccount(scope.accountId, scope.network, "earnings"),
      );
      // A request with the same key that held the lock before us has committed its payout now.
      const raced = await replay();
      if (raced) return raced;
      const credits = request.credits ?? available;
      const minimum = ctx.config.payouts.minCredits;
      if (credits < minimum) {
        throw new AppError(
          "payout_below_minimum",
          request.credits === undefined
            ? `The minimum payout is ${formatCredits(minimum)} credits; ${formatCredits(credits)} credits of earnings are available.`
            : `The minimum payout is ${formatCredits(minimum)} credits; this one is ${formatCredits(credits)}.`,
          { minimum: creditsToJson(minimum), requested: creditsToJson(credits) },
        );
      }
      if (credits > available) throw insufficientEarnings(credits, available);

      const id = newId("po");
      const now = ctx.clock();
      const [payout] = await db
        .insert(payouts)
        .values({
          id,
          accountId: scope.accountId,
          network: scope.network,
          credits,
          usdcAmount: usdcOf(credits),
          toAddress: getAddress(account.walletAddress),
          fromAddress: treasury.address,
          status: "pending",
          idempotencyKey: key,
          requestHash: hash,
          createdAt: now,
          updatedAt: now,
        })
        .returning();
      await placeHold(tx, {
        id,
        network: scope.network,
        ownerId: scope.accountId,
        accountKind: "earnings",
        amount: credits,
        expiresAt: new Date(now.getTime() + PAYOUT_HOLD_DAYS * 24 * 3600_000),
        kind: PAYOUT_HOLD_KIND,
        reference: id,
      });
      ctx.logger.info(
        { payoutId: id, accountId: scope.accountId, network: scope.network, credits },
        "payout reserved",
      );
      return { payout: payout as Payout, replayed: false };
    });
  } catch (err) {
    // The database's own floor under the balance (a payout that raced this one past the lock).
    if (err instanceof AppError && err.code === "insufficient_credits") {
      throw insufficientEarnings(
        creditsFromJson((err.details?.need as number | undefined) ?? 0) ?? 0n,
        creditsFromJson((err.details?.have as number | undefined) ?? 0) ?? 0n,
      );
    }
    // Two requests with one Idempotency-Key at once: the loser returns the winner's payout.
    if (isKeyRace(err)) return reservePayout(ctx, scope, request);
    throw err;
  }
}

const insufficientEarnings = (need: bigint, have: bigint) =>
  new AppError(
    "insufficient_earnings",
    `Insufficient earnings. Need ${formatCredits(need)}, have ${formatCredits(have)}.`,
    { need: creditsToJson(need), have: creditsToJson(have) },
  );

/**
 * Moves a payout on as far as it can go now: a `pending` one is signed and sent, a `broadcast`
 * one is decided from the chain (waiting up to `waitMs` for its receipt). Safe to call from
 * several places at once (a request, its replay, reconciliation): every transition is
 * conditional on the state it leaves, and the hold resolves exactly once.
 */
export async function advancePayout(
  ctx: PayoutContext,
  payoutId: string,
  options: { waitMs: number },
): Promise<Payout> {
  let payout = await getPayout(ctx, payoutId);
  if (!payout) throw notFound("Payout");
  if (payout.status === "pending") payout = await broadcast(ctx, payout);
  if (payout.status === "broadcast") payout = await settle(ctx, payout, options.waitMs);
  return payout;
}

/** Runs `fn` holding the treasury's sender lock; undefined if it stayed busy too long. */
async function withSenderLock<T>(
  ctx: PayoutContext,
  treasury: Treasury,
  fn: () => Promise<T>,
): Promise<{ value: T } | undefined> {
  const name = `${treasury.chainId}:${treasury.address.toLowerCase()}`;
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    // Tried, not waited for, so a queue of requests does not hold a connection each.
    const outcome = await ctx.db.transaction(async (tx) => {
      const { rows } = await tx.execute<{ locked: boolean }>(
        sql`select pg_try_advisory_xact_lock(${SENDER_LOCK_CLASS}, hashtext(${name})) as locked`,
      );
      return rows[0]?.locked ? { value: await fn() } : undefined;
    });
    if (outcome || Date.now() > deadline) return outcome;
    await new Promise((resolve) => setTimeout(resolve, 20 + Math.random() * 40));
  }
}

/** Step 2: sign with the next nonce, commit the hash, send. Under the treasury's lock. */
async function broadcast(ctx: PayoutContext, payout: Payout): Promise<Payout> {
  let treasury: Treasury;
  try {
    treasury = treasuryFor(ctx.config, payout.network);
  } catch (err) {
    // Nothing was signed, so nothing can be mined.
    return fail(ctx, payout, preparationFailure(err));
  }
  if (treasury.address !== payout.fromAddress) {
    return fail(ctx, payout, "the treasury key changed before the transfer was signed");
  }
  const sent = await withSenderLock(ctx, treasury, async () => {
    const current = await getPayout(ctx, payout.id);
    if (current?.status !== "pending") return current ?? payout;
    let signed: { nonce: number; raw: Hex; hash: Hash };
    try {
      const nonce = await nextNonce(treasury);
      const tx = await treasury.signTransfer({
        to: current.toAddress as Hex,
        amount: current.usdcAmount,
        nonce,
      });
      signed = { nonce, ...tx };
    } catch (err) {
      // The chain could not be asked, or the transfer would revert (the treasury lacks the
      // USDC): nothing was signed, so nothing can be mined.
      return fail(ctx, current, preparationFailure(err), err);
    }
    const now = ctx.clock();
    // Committed (on the pool, not this lock's transaction) before anything is sent: from here
    // on, only the chain decides what became of this hash.
    const [marked] = await ctx.db
      .update(payouts)
      .set({
        status: "broadcast",
        txHash: signed.hash,
        nonce: BigInt(signed.nonce),
        rawTransaction: signed.raw,
        broadcastAt: now,
        updatedAt: now,
      })
      .where(and(eq(payouts.id, current.id), eq(payouts.status, "pending")))
      .returning();
    if (!marked) return (await getPayout(ctx, current.id)) ?? current;
    try {
      await sendRaw(treasury, signed.raw);
      ctx.logger.info(
        { payoutId: marked.id, transaction: signed.hash, nonce: signed.nonce },
        "payout broadcast",
      );
      return marked;
    } catch (err) {
      return afterSendError(ctx, treasury, marked, err);
    }
  });
  // The lock stayed busy: still pending, nothing signed; reconciliation sends it later.
  return sent?.value ?? payout;
}

/** What the chain has decided of a broadcast payout's transaction, if it has. */
type ChainDecision = { mined: TransactionReceipt } | { nonceTaken: true } | undefined;

/**
 * The payout chain decision, asked in an order that cannot mistake a transaction mined
 * meanwhile for a lost one (the mined nonce before the receipt): mined (its receipt), or its
 * nonce used by another transaction (it can never be mined); undefined while it still can be.
 */
async function chainDecision(treasury: Treasury, payout: Payout): Promise<ChainDecision> {
  const mined = BigInt(await minedNonce(treasury, payout.fromAddress as Hex));
  const receipt = await receiptOf(treasury, payout.txHash as Hash);
  if (receipt) return { mined: receipt };
  if (mined > (payout.nonce as bigint)) return { nonceTaken: true };
  return undefined;
}

/** Settles a payout as the chain decided it: paid (or failed, reverted) if mined, else failed. */
function settleDecided(
  ctx: PayoutContext,
  payout: Payout,
  decision: NonNullable<ChainDecision>,
): Promise<Payout> {
  return "mined" in decision
    ? complete(ctx, payout, decision.mined)
    : fail(ctx, payout, `its nonce (${payout.nonce}) was used by another transaction`);
}

/** A send failed: can the transaction still be mined? Asked of the chain (chainDecision). */
async function afterSendError(
  ctx: PayoutContext,
  treasury: Treasury,
  payout: Payout,
  sendError: unknown,
): Promise<Payout> {
  const hash = payout.txHash as Hash;
  try {
    const decision = await chainDecision(treasury, payout);
    // Not awaited here: a failure to record the decision is the caller's, not "could not ask".
    if (decision) return settleDecided(ctx, payout, decision);
    if (await isKnown(treasury, hash)) return payout;
    if (refusedByNode(sendError)) {
      // The node answered "no": it never took the transaction, and these bytes are sent
      // nowhere else, ever again.
      return fail(ctx, payout, "the chain refused the transaction", sendError);
    }
  } catch (err) {
    ctx.logger.warn({ payoutId: payout.id, err: reasonOf(err) }, "could not ask the chain");
  }
  ctx.logger.warn(
    { payoutId: payout.id, transaction: hash, err: reasonOf(sendError) },
    "payout sent with an unknown outcome; reconciliation decides it from the chain",
  );
  return payout;
}

/** Step 3: decides a broadcast payout from the chain, waiting up to `waitMs` for a receipt. */
async function settle(ctx: PayoutContext, payout: Payout, waitMs: number): Promise<Payout> {
  let treasury: Treasury;
  try {
    treasury = treasuryFor(ctx.config, payout.network);
  } catch (err) {
    // Without the chain nothing can be decided: it stays broadcast.
    ctx.logger.warn({ payoutId: payout.id, err: reasonOf(err) }, "cannot settle payout");
    return payout;
  }
  const hash = payout.txHash as Hash;
  const deadline = Date.now() + waitMs;
  try {
    for (let attempt = 0; ; attempt++) {
      const decision = await chainDecision(treasury, payout);
      if (decision) return await settleDecided(ctx, payout, decision);
      if (attempt === 0 && !(await isKnown(treasury, hash))) {
        // The node does not have it (it never got there, or was dropped): send the very same
        // bytes again, which cannot pay twice (one hash, one nonce).
        const resent = await resend(ctx, treasury, payout);
        if (resent.status !== "broadcast") return resent;
        continue;
      }
      if (Date.now() >= deadline) return payout;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  } catch (err) {
    ctx.logger.warn(
      { payoutId: payout.id, transaction: hash, err: reasonOf(err) },
      "payout not decided yet",
    );
    return (await getPayout(ctx, payout.id)) ?? payout;
  }
}

async function resend(ctx: PayoutContext, treasury: Treasury, payout: Payout): Promise<Payout> {
  const outcome = await withSenderLock(ctx, treasury, async () => {
    try {
      await sendRaw(treasury, payout.rawTransaction as Hex);
      ctx.logger.info({ payoutId: payout.id, transaction: payout.txHash }, "payout sent again");
      return payout;
    } catch (err) {
      return afterSendError(ctx, treasury, payout, err);
    }
  });
  return outcome?.value ?? payout;
}

/** The transaction was mined: paid if it succeeded, failed (nothing moved) if it reverted. */
async function complete(
  ctx: PayoutContext,
  payout: Payout,
  receipt: TransactionReceipt,
): Promise<Payout> {
  if (receipt.transactionHash.toLowerCase() !== payout.txHash?.toLowerCase()) {
    throw new Error(`receipt of ${receipt.transactionHash} is not payout ${payout.id}'s`);
  }
  if (receipt.status !== "success") {
    return fail(ctx, payout, `the transaction reverted on chain (block ${receipt.blockNumber})`);
  }
  const paid = await endPayout(ctx, payout, {
    from: "broadcast",
    set: { status: "paid" },
    // The credits leave the system as USDC: into the issuance account they were minted from.
    resolveHold: (tx) =>
      postHold(tx, {
        holdId: payout.id,
        id: `payout:${payout.id}`,
        amount: payout.credits,
        to: systemLedgerAccount(payout.network, "issuance"),
        reference: receipt.transactionHash,
        metadata: {
          payoutId: payout.id,
          transaction: receipt.transactionHash,
          blockNumber: receipt.blockNumber.toString(),
          to: payout.toAddress,
          from: payout.fromAddress,
          usdcAmount: payout.usdcAmount.toString(),
        },
      }),
  });
  if (!paid) return (await getPayout(ctx, payout.id)) ?? payout;
  ctx.logger.info(
    { payoutId: payout.id, transaction: receipt.transactionHash, credits: payout.credits },
    "payout paid",
  );
  return paid;
}

/**
 * It never moved USDC and never can: failed, and the earnings available again. `reason` is
 * shown to the creator; the chain's own error, if any, goes to the log only.
 */
async function fail(
  ctx: PayoutContext,
  payout: Payout,
  reason: string,
  cause?: unknown,
): Promise<Payout> {
  const failed = await endPayout(ctx, payout, {
    // Only from the state the caller saw: a payout another process signed meanwhile is not
    // this caller's to fail.
    from: payout.status,
    set: { status: "failed", failureReason: reason },
    resolveHold: (tx) =>
      voidHold(tx, {
        holdId: payout.id,
        id: `payout:${payout.id}`,
        reference: "payout failed",
        metadata: { payoutId: payout.id, reason, transaction: payout.txHash },
      }),
  });
  if (!failed) return (await getPayout(ctx, payout.id)) ?? payout;
  ctx.logger.warn(
    {
      payoutId: payout.id,
      transaction: payout.txHash,
      reason,
      ...(cause !== undefined && { err: reasonOf(cause) }),
    },
    "payout failed",
  );
  return failed;
}

/**
 * A payout's end (paid or failed) and the resolution of its hold, in one transaction, so the
 * hold resolves exactly once: only a payout still in the state `from` moves. Undefined when
 * another process moved it first.
 */
async function endPayout(
  ctx: PayoutContext,
  payout: Payout,
  end: {
    from: PayoutStatus;
    set: Pick<Payout, "status"> & Partial<Pick<Payout, "failureReason">>;
    resolveHold: (tx: ServiceContext) => Promise<unknown>;
  },
): Promise<Payout | undefined> {
  return ctx.db.transaction(async (db) => {
    const now = ctx.clock();
    const [row] = await db
      .update(payouts)
      .set({ ...end.set, completedAt: now, updatedAt: now })
      .where(and(eq(payouts.id, payout.id), eq(payouts.status, end.from)))
      .returning();
    if (!row) return undefined;
    await end.resolveHold({ ...ctx, db });
    return row;
  });
}

/**
 * Finishes payouts a crash (or an unanswered RPC) left `pending` or `broadcast` (the cron task):
 * each is moved on from what the chain says, without waiting. Rows touched in the last
 * `olderThanMs` are left to the request that is still handling them.
 */
export async function reconcilePayouts(
  ctx: PayoutContext,
  options: { olderThanMs?: number; limit?: number } = {},
): Promise<Array<{ payoutId: string; status: PayoutStatus }>> {
  const cutoff = new Date(ctx.clock().getTime() - (options.olderThanMs ?? 60_000));
  const due = await ctx.db
    .select({ id: payouts.id })
    .from(payouts)
    .where(
      and(
        inArray(payouts.status, ["pending", "broadcast"]),
        sql`${payouts.updatedAt} <= ${cutoff}`,
      ),
    )
    .orderBy(payouts.updatedAt)
    .limit(options.limit ?? 100);
  const results: Array<{ payoutId: string; status: PayoutStatus }> = [];
  for (const { id } of due) {
    try {
      const payout = await advancePayout(ctx, id, { waitMs: 0 });
      results.push({ payoutId: id, status: payout.status });
    } catch (err) {
      // One payout the chain cannot answer for must not stop the others.
      ctx.logger.warn({ payoutId: id, err: reasonOf(err) }, "could not reconcile payout");
    }
  }
  const finished = results.filter((r) => r.status === "paid" || r.status === "failed");
  if (finished.length) ctx.logger.info({ finished }, "payouts reconciled");
  return results;
}

/** The owner's payouts on one network, newest first; `before` is the last id seen. */
export async function listPayouts(
  ctx: ServiceContext,
  scope: NetworkScope,
  page: { limit: number; before?: string | undefined },
): Promise<Payout[]> {
  return ctx.db
    .select()
    .from(payouts)
    .where(
      and(
        eq(payouts.accountId, scope.accountId),
        eq(payouts.network, scope.network),
        page.before === undefined ? undefined : lt(payouts.id, page.before),
      ),
    )
    .orderBy(desc(payouts.id))
    .limit(page.limit);
}

/**
 * Credits paid out, and credits in payouts not yet decided (held out of the earnings), for the
 * earnings summary. Failed payouts count in neither: their credits are available again.
 */
export async function payoutTotals(
  ctx: ServiceContext,
  scope: NetworkScope,
): Promise<{ paidOut: bigint; pending: bigint }> {
  const { rows } = await ctx.db.execute<{ paid: string; pending: string }>(sql`
    select coalesce(sum(credits) filter (where status = 'paid'), 0)::text as paid,
           coalesce(sum(credits) filter (where status in ('pending', 'broadcast')), 0)::text as pending
    from payouts where account_id = ${scope.accountId} and network = ${scope.network}::network`);
  return { paidOut: BigInt(rows[0]?.paid ?? 0), pending: BigInt(rows[0]?.pending ?? 0) };
}

/** A payout as the API shows it. */
export function payoutJson(p: Payout) {
  return {
    id: p.id,
    network: p.network,
    status: p.status,
    credits: creditsToJson(p.credits),
    amountUsdc: usdcToJson(p.usdcAmount),
    to: p.toAddress,
    from: p.fromAddress,
    transaction: p.txHash,
    failureReason: p.failureReason,
    createdAt: p.createdAt,
    completedAt: p.completedAt,
  };
}
