import { type SQL, sql } from "drizzle-orm";
import type { ServiceContext } from "../../context.js";
import { pgErrorCode } from "../../db/client.js";
import { AppError, insufficientCredits, keyLimitExceeded, notFound } from "../../errors.js";
import { formatCredits } from "../../lib/credits.js";
import type { Network } from "../../lib/network.js";
import type { NetworkScope } from "../accounts/caller.js";
import {
  ledgerAccountNetwork,
  systemLedgerAccount,
  type UserAccountKind,
  userLedgerAccount,
} from "./accounts.js";
import { type MembershipTier, tierOfRank, tierRankSql } from "./packs.js";

/**
 * The only code that moves credits. Every function takes a ServiceContext whose `db` may be
 * the caller's open transaction, so a ledger movement commits or rolls back together with the
 * caller's own writes. Amounts are whole credits as bigint; ids make every call idempotent.
 */

export const transferKinds = [
  "grant", // operator or demo credits, from issuance
  "pack_purchase", // a credit pack paid in USDC, from issuance
  "payment", // credits bought at $0.01 each by a pay-per-call USDC payment, from issuance
  "spend", // a direct charge
  "refund", // money back outside a hold
  "transfer", // between two accounts
  "hold", // credits set aside for work in flight
  "hold_post", // the part of a hold that was spent
  "hold_release", // the part of a hold that returned
  "royalty", // a creator's share
] as const;
export type TransferKind = (typeof transferKinds)[number];

export interface TransferInput {
  id: string;
  network: Network;
  debit: string;
  credit: string;
  amount: bigint;
  kind: TransferKind;
  reference?: string | null;
  metadata?: Record<string, unknown>;
  holdId?: string | null;
}

export interface Transfer extends TransferInput {
  seq: bigint;
  debitBalanceAfter: bigint | null;
  creditBalanceAfter: bigint | null;
  createdAt: Date;
  /** True when this id had already been posted with the same fields. */
  replayed: boolean;
}

const big = (v: string | number | bigint | null): bigint | null => (v === null ? null : BigInt(v));

function assertAmount(amount: bigint, allowZero: boolean) {
  if (typeof amount !== "bigint" || amount < (allowZero ? 0n : 1n)) {
    throw new AppError(
      "invalid_request",
      `Amount must be a ${allowZero ? "non-negative" : "positive"} whole number of credits.`,
    );
  }
}

/**
 * One idempotent double-entry transfer, in one round trip (SQL function ledger_transfer).
 * An overdraft of a user account is refused with 402 insufficient_credits; the same id with
 * other fields with 409 idempotency_conflict.
 */
export async function transfer(ctx: ServiceContext, input: TransferInput): Promise<Transfer> {
  const [result] = await transferMany(ctx, [input]);
  if (result instanceof Error) throw result;
  return result as Transfer;
}

type TransferOutcomeRow = {
  outcome: "created" | "replayed" | "conflict" | "insufficient";
  seq: string | null;
  debit_balance_after: string | null;
  credit_balance_after: string | null;
  created_at: Date | string | null;
  have: string | null;
};

function validateTransfer(input: TransferInput): AppError | undefined {
  if (typeof input.amount !== "bigint" || input.amount < 1n) {
    return new AppError("invalid_request", "Amount must be a positive whole number of credits.");
  }
  // The database refuses this too (composite foreign keys); failing here says why.
  for (const side of [input.debit, input.credit]) {
    if (ledgerAccountNetwork(side) !== input.network) {
      return new AppError(
        "invalid_request",
        `Account ${side} is not on the ${input.network} network.`,
      );
    }
  }
  return undefined;
}

function outcomeOf(input: TransferInput, row: TransferOutcomeRow | undefined): Transfer | AppError {
  if (!row) throw new Error("ledger_transfer returned nothing");
  if (row.outcome === "insufficient") return insufficientCredits(input.amount, big(row.have) ?? 0n);
  if (row.outcome === "conflict") {
    return new AppError(
      "idempotency_conflict",
      `Transfer ${input.id} already exists with different details.`,
      {
        id: input.id,
      },
    );
  }
  return {
    ...input,
    reference: input.reference ?? null,
    metadata: input.metadata ?? {},
    holdId: input.holdId ?? null,
    seq: BigInt(row.seq as string),
    debitBalanceAfter: big(row.debit_balance_after),
    creditBalanceAfter: big(row.credit_balance_after),
    createdAt: new Date(row.created_at as string),
    replayed: row.outcome === "replayed",
  };
}

/**
 * Several independent transfers in one statement (one round trip, one commit when the caller
 * has no transaction open). Each succeeds or fails on its own: the result at each position is
 * the transfer or the AppError it met, in input order.
 */
export async function transferMany(
  ctx: ServiceContext,
  inputs: TransferInput[],
): Promise<Array<Transfer | AppError>> {
  const results: Array<Transfer | AppError | undefined> = inputs.map(validateTransfer);
  // Ordered by the user account each one locks first, so two batches over the same accounts
  // take their row locks in one order and cannot deadlock each other.
  const lockKey = (t: TransferInput) => (t.debit < t.credit ? t.debit : t.credit);
  const order = inputs
    .map((input, index) => ({ input, index }))
    .filter(({ index }) => results[index] === undefined)
    .sort((a, b) =>
      lockKey(a.input) < lockKey(b.input)
        ? -1
        : lockKey(a.input) > lockKey(b.input)
          ? 1
          : a.index - b.index,
    );
  const valid = order.map((o) => o.input);
  if (valid.length === 0) return results as AppError[];
  // One array parameter per column (sql.param keeps drizzle from expanding it into a list).
  const column = <T>(f: (t: TransferInput) => T) => sql.param(valid.map(f));
  const { rows } = await ctx.db.execute<TransferOutcomeRow & { ord: string }>(sql`
    select t.ord, r.* from unnest(
        ${column((t) => t.id)}::text[], ${column((t) => t.network)}::network[],
        ${column((t) => t.debit)}::text[], ${column((t) => t.credit)}::text[],
        ${column((t) => t.amount.toString())}::bigint[], ${column((t) => t.kind)}::text[],
        ${column((t) => t.reference ?? null)}::text[],
        ${column((t) => JSON.stringify(t.metadata ?? {}))}::jsonb[],
        ${column((t) => t.holdId ?? null)}::text[]
      ) with ordinality as t(id, network, debit, credit, amount, kind, reference, metadata, hold_id, ord)
    cross join lateral ledger_transfer(t.id, t.network, t.debit, t.credit, t.amount, t.kind,
                                       t.reference, t.metadata, t.hold_id, ${ctx.clock()}) r
    order by t.ord`);
  order.forEach(({ input, index }, position) => {
    results[index] = outcomeOf(input, rows[position]);
  });
  return results as Array<Transfer | AppError>;
}

export type HoldStatus = "pending" | "posted" | "voided" | "expired";

export interface Hold {
  id: string;
  network: Network;
  accountId: string;
  parentHoldId: string | null;
  kind: string;
  reference: string | null;
  /** The API key that placed it, counted against the key's spend limits; null for a session. */
  apiKeyId: string | null;
  amount: bigint;
  available: bigint;
  drawn: bigint;
  posted: bigint;
  released: bigint;
  status: HoldStatus;
  resolvedBy: string | null;
  expiresAt: Date;
  createdAt: Date;
  resolvedAt: Date | null;
}

type HoldRow = {
  id: string;
  network: Network;
  account_id: string;
  parent_hold_id: string | null;
  kind: string;
  reference: string | null;
  api_key_id: string | null;
  amount: string;
  available: string;
  drawn: string;
  posted: string;
  released: string;
  status: HoldStatus;
  resolved_by: string | null;
  expires_at: Date;
  created_at: Date;
  resolved_at: Date | null;
};

const toHold = (r: HoldRow): Hold => ({
  id: r.id,
  network: r.network,
  accountId: r.account_id,
  parentHoldId: r.parent_hold_id,
  kind: r.kind,
  reference: r.reference,
  apiKeyId: r.api_key_id,
  amount: BigInt(r.amount),
  available: BigInt(r.available),
  drawn: BigInt(r.drawn),
  posted: BigInt(r.posted),
  released: BigInt(r.released),
  status: r.status,
  resolvedBy: r.resolved_by,
  expiresAt: new Date(r.expires_at),
  createdAt: new Date(r.created_at),
  resolvedAt: r.resolved_at && new Date(r.resolved_at),
});

async function holdRows(ctx: ServiceContext, query: SQL): Promise<Hold[]> {
  const { rows } = await ctx.db.execute<HoldRow>(query);
  return rows.map(toHold);
}

export async function getHold(ctx: ServiceContext, holdId: string): Promise<Hold | undefined> {
  return (await holdRows(ctx, sql`select * from ledger_holds where id = ${holdId}`))[0];
}

/** The kinds of hold other holds may draw from: a studio reservation, a generation batch's hold. */
export const RESERVATION_HOLD_KIND = "reservation";
export const BATCH_HOLD_KIND = "batch";
const DRAWABLE_HOLD_KINDS = [RESERVATION_HOLD_KIND, BATCH_HOLD_KIND];

/**
 * A creator's earnings set aside for a payout in USDC. Only the payout resolves it, from what
 * the chain says of its transaction (posted when mined, voided when it can never be): the expiry
 * sweeper never touches it, since voiding it while the transaction may still be mined would
 * pay the same earnings twice.
 */
export const PAYOUT_HOLD_KIND = "payout";
/** Holds that never expire: their owner resolves them, however long that takes. */
const NEVER_EXPIRING_HOLD_KINDS = [PAYOUT_HOLD_KIND];

/**
 * The transfers of a hold are named after it, so they can never collide with another
 * transfer's id: `<hold>/fund`, `<hold>/post`, `<hold>/release`.
 */
export const holdTransferId = (holdId: string, part: "fund" | "post" | "release") =>
  `${holdId}/${part}`;

export interface HoldInput {
  id: string;
  network: Network;
  /** The owner (accounts.id) whose credits are held. */
  ownerId: string;
  /** Which of the owner's ledger accounts the hold takes from (and returns to): credits by default. */
  accountKind?: UserAccountKind;
  amount: bigint;
  expiresAt: Date;
  kind: string;
  reference?: string | null;
  /** Draw from this pending reservation instead of the balance. */
  parentHoldId?: string | null;
  /** The API key placing it: counted against the key's spend limits (402 key_limit_exceeded). */
  apiKeyId?: string | undefined;
}

/** The driver's error carrying SQLSTATE `code`, if `err` or one of its causes is one. */
function pgCause(err: unknown, code: string): Error | undefined {
  let cause: unknown = err;
  while (cause instanceof Error && (cause as { code?: unknown }).code !== code) cause = cause.cause;
  return cause instanceof Error ? cause : undefined;
}

/** A key's spend limit raised by the hold's trigger (PFKEY) as its 402; anything else as it was. */
export function keyLimitError(err: unknown): unknown {
  if (pgErrorCode(err) !== "PFKEY") return err;
  const cause = pgCause(err, "PFKEY");
  return cause ? keyLimitExceeded(cause.message) : err;
}

/**
 * Sets credits aside: from the owner's balance into the network's holds account, or (with
 * parentHoldId) out of a reservation's remaining credits. Idempotent by id.
 */
export async function placeHold(
  ctx: ServiceContext,
  input: HoldInput,
): Promise<{ hold: Hold; replayed: boolean }> {
  assertAmount(input.amount, false);
  const account = userLedgerAccount(input.ownerId, input.network, input.accountKind);
  return ctx.db.transaction(async (tx) => {
    const c = { ...ctx, db: tx };
    // Before the insert: the new hold's row references its parent, so an unknown parent would
    // otherwise be a foreign-key failure instead of the reservation's 404. Locked before the
    // insert's key-limit trigger locks the balance row and the key's, the order a draw by
    // ledger_place_holds and a resolution of the parent take: they cannot deadlock with this one.
    if (input.parentHoldId) {
      await drawableParent(c, input.parentHoldId, account, input.network, { lock: true });
    }
    await tx.execute(sql`select ledger_ensure_account(${account})`);
    const [inserted] = await holdRows(
      c,
      sql`insert into ledger_holds (id, network, account_id, parent_hold_id, kind, reference, api_key_id, amount, available, expires_at, created_at)
          values (${input.id}, ${input.network}::network, ${account}, ${input.parentHoldId ?? null}, ${input.kind},
                  ${input.reference ?? null}, ${input.apiKeyId ?? null}, ${input.amount.toString()}::bigint, ${input.amount.toString()}::bigint,
                  ${input.expiresAt}, ${ctx.clock()})
          on conflict (id) do nothing returning *`,
    ).catch((err: unknown) => {
      throw keyLimitError(err);
    });
    if (!inserted) {
      const existing = await getHold(c, input.id);
      const same =
        existing &&
        existing.network === input.network &&
        existing.accountId === account &&
        existing.amount === input.amount &&
        existing.kind === input.kind &&
        existing.parentHoldId === (input.parentHoldId ?? null) &&
        existing.reference === (input.reference ?? null) &&
        existing.apiKeyId === (input.apiKeyId ?? null) &&
        existing.expiresAt.getTime() === input.expiresAt.getTime();
      if (!same) {
        throw new AppError(
          "idempotency_conflict",
          `Hold ${input.id} already exists with different details.`,
          {
            id: input.id,
          },
        );
      }
      return { hold: existing, replayed: true };
    }

    if (input.parentHoldId) {
      await drawFromReservation(c, input, account);
    } else {
      await transfer(c, {
        id: holdTransferId(input.id, "fund"),
        network: input.network,
        debit: account,
        credit: systemLedgerAccount(input.network, "holds"),
        amount: input.amount,
        kind: "hold",
        reference: input.reference ?? null,
        holdId: input.id,
      });
    }
    return { hold: inserted, replayed: false };
  });
}

/**
 * The terms of new holds placed by ledger_place_holds (drizzle/0015_generation_submit.sql)
 * inside a caller's statement (a generation's submit): funded from the owner's balance, or
 * drawn from `parentHoldId` (a reservation or a batch's hold of the owner's). The caller adds
 * the holds themselves: `[{ id, amount, fundId: holdTransferId(id, "fund") }]`.
 */
export function holdPlacement(input: {
  network: Network;
  ownerId: string;
  kind: string;
  reference: string;
  expiresAt: Date;
  now: Date;
  parentHoldId: string | null;
  apiKeyId?: string | undefined;
}) {
  return {
    network: input.network,
    account: userLedgerAccount(input.ownerId, input.network),
    holdsAccount: systemLedgerAccount(input.network, "holds"),
    kind: input.kind,
    reference: input.reference,
    expiresAt: input.expiresAt.toISOString(),
    now: input.now.toISOString(),
    parentHoldId: input.parentHoldId,
    apiKeyId: input.apiKeyId ?? null,
    drawableKinds: DRAWABLE_HOLD_KINDS,
  };
}

/**
 * A new hold funded from the owner's balance in one statement (ledger_place_holds), for the
 * doors where every round trip is on the caller's time (a chat's first token). Unlike
 * placeHold it does not replay: the id must be new. A short balance is 402 insufficient_credits.
 */
export async function placeNewHold(
  ctx: ServiceContext,
  input: Omit<HoldInput, "parentHoldId" | "accountKind">,
): Promise<Hold> {
  assertAmount(input.amount, false);
  const now = ctx.clock();
  const placement = {
    ...holdPlacement({
      network: input.network,
      ownerId: input.ownerId,
      kind: input.kind,
      reference: input.reference ?? input.id,
      expiresAt: input.expiresAt,
      now,
      parentHoldId: null,
      apiKeyId: input.apiKeyId,
    }),
    holds: [
      { id: input.id, amount: input.amount.toString(), fundId: holdTransferId(input.id, "fund") },
    ],
  };
  try {
    await ctx.db.execute(sql`select ledger_place_holds(${JSON.stringify(placement)}::jsonb)`);
  } catch (err) {
    if (pgErrorCode(err) !== "PF402") throw keyLimitError(err);
    // The function raises the balance it found as the message, on the driver's error.
    const cause = pgCause(err, "PF402");
    const have = cause && /^\d+$/.test(cause.message) ? cause.message : "0";
    throw insufficientCredits(input.amount, BigInt(have));
  }
  return {
    id: input.id,
    network: input.network,
    accountId: placement.account,
    parentHoldId: null,
    kind: input.kind,
    reference: placement.reference,
    apiKeyId: placement.apiKeyId,
    amount: input.amount,
    available: input.amount,
    drawn: 0n,
    posted: 0n,
    released: 0n,
    status: "pending",
    resolvedBy: null,
    expiresAt: input.expiresAt,
    createdAt: now,
    resolvedAt: null,
  };
}

/**
 * A hold `account` may draw from on `network` (a reservation of its own), else 404; `lock`
 * takes its row for the draw's update.
 */
async function drawableParent(
  ctx: ServiceContext,
  parentId: string,
  account: string,
  network: Network,
  options: { lock?: boolean } = {},
): Promise<Hold> {
  const [parent] = await holdRows(
    ctx,
    sql`select * from ledger_holds where id = ${parentId} and account_id = ${account}
        ${options.lock ? sql`for no key update` : sql``}`,
  );
  if (
    !parent ||
    !DRAWABLE_HOLD_KINDS.includes(parent.kind) ||
    parent.accountId !== account ||
    parent.network !== network
  ) {
    throw notFound("Reservation");
  }
  return parent;
}

async function drawFromReservation(ctx: ServiceContext, input: HoldInput, account: string) {
  const parentId = input.parentHoldId as string;
  const now = ctx.clock();
  const { rowCount } = await ctx.db.execute(sql`
    update ledger_holds set available = available - ${input.amount.toString()}::bigint,
                            drawn = drawn + ${input.amount.toString()}::bigint
    where id = ${parentId} and kind = any(${sql.param(DRAWABLE_HOLD_KINDS)}::text[]) and account_id = ${account}
      and network = ${input.network}::network and status = 'pending' and expires_at > ${now} and available >= ${input.amount.toString()}::bigint`);
  if (rowCount) return;
  const parent = await drawableParent(ctx, parentId, account, input.network);
  if (parent.status !== "pending" || parent.expiresAt <= now) {
    throw new AppError(
      "reservation_closed",
      `Reservation ${parentId} is ${parent.status === "pending" ? "expired" : "settled"}.`,
    );
  }
  throw insufficientCredits(input.amount, parent.available);
}

export interface ResolveInput {
  holdId: string;
  /** Id of this resolution; a replay with the same id returns the same result. */
  id: string;
  /** Credits to post (0 for a void); the rest of what is available returns to the owner. */
  amount: bigint;
  status: Exclude<HoldStatus, "pending">;
  /** Where posted credits go; the network's revenue account by default. */
  to?: string;
  reference?: string | null;
  /** Recorded on the transfers the resolution makes (a payout's transaction hash). */
  metadata?: Record<string, unknown>;
}

/**
 * Resolves a hold exactly once: posts `amount` and releases the rest, or releases everything.
 * Whoever gets there first wins (a job, its final failure, the expiry sweeper); the others
 * get 409 hold_already_resolved, and a replay of the winner's own id gets its result again.
 */
export async function resolveHold(
  ctx: ServiceContext,
  input: ResolveInput,
): Promise<{ hold: Hold; replayed: boolean }> {
  assertAmount(input.amount, true);
  if (input.status !== "posted" && input.amount !== 0n) {
    throw new AppError("invalid_request", "Only a post can spend credits from a hold.");
  }
  return ctx.db.transaction(async (tx) => {
    const c = { ...ctx, db: tx };
    const amount = input.amount.toString();
    const [hold] = await holdRows(
      c,
      sql`update ledger_holds
          set status = ${input.status}::hold_status, posted = ${amount}::bigint,
              released = available - ${amount}::bigint, available = 0,
              resolved_by = ${input.id}, resolved_at = ${ctx.clock()}
          where id = ${input.holdId} and status = 'pending' and available >= ${amount}::bigint
          returning *`,
    );
    if (!hold) {
      const existing = await getHold(c, input.holdId);
      if (!existing) throw notFound("Hold");
      if (existing.resolvedBy === input.id) {
        // A replay must ask for exactly what was done, destination included.
        const { rows } = await tx.execute<{ credit_account_id: string }>(
          sql`select credit_account_id from ledger_transfers where id = ${holdTransferId(existing.id, "post")}`,
        );
        const destination = rows[0]?.credit_account_id ?? null;
        const wanted =
          existing.posted > 0n
            ? (input.to ?? systemLedgerAccount(existing.network, "revenue"))
            : null;
        if (
          existing.status === input.status &&
          existing.posted === input.amount &&
          destination === wanted
        ) {
          return { hold: existing, replayed: true };
        }
        throw new AppError(
          "idempotency_conflict",
          `Resolution ${input.id} was made with different details.`,
          {
            id: input.id,
          },
        );
      }
      if (existing.status === "pending") {
        throw new AppError(
          "invalid_request",
          `Cannot post ${formatCredits(input.amount)} credits: the hold has ${formatCredits(existing.available)} available.`,
        );
      }
      throw new AppError(
        "hold_already_resolved",
        `Hold ${input.holdId} is already ${existing.status}.`,
        {
          status: existing.status,
        },
      );
    }
    const holds = systemLedgerAccount(hold.network, "holds");
    if (hold.posted > 0n) {
      await transfer(c, {
        id: holdTransferId(hold.id, "post"),
        network: hold.network,
        debit: holds,
        credit: input.to ?? systemLedgerAccount(hold.network, "revenue"),
        amount: hold.posted,
        kind: "hold_post",
        reference: input.reference ?? hold.reference,
        ...(input.metadata && { metadata: input.metadata }),
        holdId: hold.id,
      });
    }
    if (hold.released > 0n) {
      await transfer(c, {
        id: holdTransferId(hold.id, "release"),
        network: hold.network,
        debit: holds,
        credit: hold.accountId,
        amount: hold.released,
        kind: "hold_release",
        reference: input.reference ?? hold.reference,
        ...(input.metadata && { metadata: input.metadata }),
        holdId: hold.id,
      });
    }
    return { hold, replayed: false };
  });
}

export const postHold = (ctx: ServiceContext, input: Omit<ResolveInput, "status">) =>
  resolveHold(ctx, { ...input, status: "posted" });

export const voidHold = (
  ctx: ServiceContext,
  input: Omit<ResolveInput, "status" | "amount" | "to">,
) => resolveHold(ctx, { ...input, amount: 0n, status: "voided" });

/**
 * Voids pending holds past their expiry (the sweeper's cron task). Each in its own
 * transaction; a hold resolved meanwhile by someone else is skipped. Payout holds are never
 * expired (see PAYOUT_HOLD_KIND).
 */
export async function expireHolds(ctx: ServiceContext, limit = 500): Promise<number> {
  const due = await holdRows(
    ctx,
    sql`select * from ledger_holds where status = 'pending' and expires_at <= ${ctx.clock()}
          and kind <> all(${sql.param(NEVER_EXPIRING_HOLD_KINDS)}::text[])
        order by expires_at limit ${limit}`,
  );
  let expired = 0;
  for (const hold of due) {
    try {
      await resolveHold(ctx, {
        holdId: hold.id,
        id: `expire:${hold.id}`,
        amount: 0n,
        status: "expired",
        reference: "expired",
      });
      expired++;
    } catch (err) {
      // Resolved meanwhile by its owner: fine. Anything else is logged, and must not keep
      // the holds due after this one from expiring.
      if (!(err instanceof AppError && err.code === "hold_already_resolved")) {
        ctx.logger.error({ err, holdId: hold.id }, "could not expire hold");
      }
    }
  }
  if (expired) ctx.logger.info({ expired }, "expired holds voided");
  return expired;
}

/**
 * Pending holds and the credits they still hold, per network: what the holds system accounts
 * carry (a hold drawn from a reservation takes its credits out of the reservation's available
 * part, so nothing is counted twice). For monitoring; both networks always appear.
 */
export async function openHoldTotals(
  ctx: ServiceContext,
): Promise<Array<{ network: Network; holds: number; credits: bigint }>> {
  const { rows } = await ctx.db.execute<{ network: Network; holds: number; credits: string }>(sql`
    select n.network::text as network, count(h.id)::int as holds, coalesce(sum(h.available), 0)::text as credits
    from unnest(enum_range(null::network)) as n(network)
    left join ledger_holds h on h.network = n.network and h.status = 'pending'
    group by n.network order by n.network`);
  return rows.map((r) => ({ network: r.network, holds: r.holds, credits: BigInt(r.credits) }));
}

/**
 * How many distinct references (a generation's id, for generation holds) hold credits of the
 * owner's account on a network in holds of `kind` that are still pending.
 */
export async function countPendingHoldReferences(
  ctx: ServiceContext,
  owner: NetworkScope,
  kind: string,
): Promise<number> {
  const { rows } = await ctx.db.execute<{ n: number }>(sql`
    select ledger_pending_references(${userLedgerAccount(owner.accountId, owner.network)}, ${kind}) as n`);
  return rows[0]?.n ?? 0;
}

export interface Balance {
  network: Network;
  creditBalance: bigint;
  heldCredits: bigint;
  earnings: bigint;
  membershipTier: MembershipTier;
}

export async function getBalance(
  ctx: ServiceContext,
  ownerId: string,
  network: Network,
): Promise<Balance> {
  const credits = userLedgerAccount(ownerId, network, "credits");
  const earnings = userLedgerAccount(ownerId, network, "earnings");
  const { rows } = await ctx.db.execute<{
    credits: string | null;
    earnings: string | null;
    held: string;
    tier_rank: number;
  }>(sql`
    select (select balance from ledger_accounts where id = ${credits}) as credits,
           (select balance from ledger_accounts where id = ${earnings}) as earnings,
           (select coalesce(sum(available), 0) from ledger_holds where account_id = ${credits} and status = 'pending') as held,
           ${tierRankSql(credits)} as tier_rank`);
  const row = rows[0];
  return {
    network,
    creditBalance: BigInt(row?.credits ?? 0),
    heldCredits: BigInt(row?.held ?? 0),
    earnings: BigInt(row?.earnings ?? 0),
    membershipTier: tierOfRank(row?.tier_rank ?? 0),
  };
}

/**
 * The balance of one ledger account (0 before its first use), its row locked until the
 * caller's transaction ends: a decision taken on it (pay out everything available) cannot be
 * raced by another that locks it too. Only inside a transaction.
 */
export async function lockBalance(ctx: ServiceContext, ledgerAccountId: string): Promise<bigint> {
  const { rows } = await ctx.db.execute<{ balance: string }>(
    sql`select balance from ledger_accounts where id = ${ledgerAccountId} for update`,
  );
  return BigInt(rows[0]?.balance ?? 0);
}

/** The amounts of the transfers with these ids (an id with no transfer is absent). */
export async function transferAmounts(
  ctx: ServiceContext,
  ids: readonly string[],
): Promise<Map<string, bigint>> {
  if (ids.length === 0) return new Map();
  const { rows } = await ctx.db.execute<{ id: string; amount: string }>(
    sql`select id, amount from ledger_transfers where id = any(${sql.param([...ids])}::text[])`,
  );
  return new Map(rows.map((r) => [r.id, BigInt(r.amount)]));
}

export interface LedgerEntry {
  id: string;
  seq: bigint;
  /** 0 for the debit side, 1 for the credit side: a transfer between two of the owner's
   * accounts is two entries with one seq. (seq, side) orders and pages entries. */
  side: 0 | 1;
  account: "credits" | "earnings";
  kind: string;
  /** Signed, from the owner's side: negative leaves the account. */
  amount: bigint;
  balanceAfter: bigint;
  reference: string | null;
  holdId: string | null;
  metadata: Record<string, unknown>;
  createdAt: Date;
}

export interface EntryCursor {
  seq: bigint;
  side: 0 | 1;
}

/** The owner's ledger entries on one network, newest first; `before` is the last entry seen. */
export async function listEntries(
  ctx: ServiceContext,
  ownerId: string,
  network: Network,
  page: { limit: number; before?: EntryCursor | undefined; kind?: string | undefined },
): Promise<LedgerEntry[]> {
  const ids = [
    userLedgerAccount(ownerId, network, "credits"),
    userLedgerAccount(ownerId, network, "earnings"),
  ];
  const beforeSeq = page.before === undefined ? null : page.before.seq.toString();
  const beforeSide = page.before?.side ?? null;
  const kind = page.kind ?? null;
  const side = (column: "debit_account_id" | "credit_account_id") => {
    const debit = column === "debit_account_id";
    return sql`
    (select id, seq, ${debit ? 0 : 1}::int as side, ${sql.raw(column)} as account_id, kind, reference, hold_id, metadata, created_at,
            ${debit ? sql`-amount` : sql`amount`} as amount,
            ${debit ? sql`debit_balance_after` : sql`credit_balance_after`} as balance_after
     from ledger_transfers
     where ${sql.raw(column)} in (${ids[0]}, ${ids[1]})
       and (${beforeSeq}::bigint is null or (seq, ${debit ? 0 : 1}::int) < (${beforeSeq}::bigint, ${beforeSide}::int))
       and (${kind}::text is null or kind = ${kind}::text)
     order by seq desc limit ${page.limit})`;
  };
  const { rows } = await ctx.db.execute<{
    id: string;
    seq: string;
    side: number;
    account_id: string;
    kind: string;
    reference: string | null;
    hold_id: string | null;
    metadata: Record<string, unknown>;
    created_at: Date;
    amount: string;
    balance_after: string;
  }>(
    sql`${side("debit_account_id")} union all ${side("credit_account_id")} order by seq desc, side desc limit ${page.limit}`,
  );
  return rows.map((r) => ({
    id: r.id,
    seq: BigInt(r.seq),
    side: r.side === 0 ? 0 : 1,
    account: r.account_id.startsWith("earnings:") ? "earnings" : "credits",
    kind: r.kind,
    amount: BigInt(r.amount),
    balanceAfter: BigInt(r.balance_after),
    reference: r.reference,
    holdId: r.hold_id,
    metadata: r.metadata,
    createdAt: new Date(r.created_at),
  }));
}

/** Credits from the network's issuance account to an owner: operator grants and the demo. */
export function grantCredits(
  ctx: ServiceContext,
  input: { id: string; ownerId: string; network: Network; amount: bigint; reason: string },
): Promise<Transfer> {
  return transfer(ctx, {
    id: input.id,
    network: input.network,
    debit: systemLedgerAccount(input.network, "issuance"),
    credit: userLedgerAccount(input.ownerId, input.network),
    amount: input.amount,
    kind: "grant",
    reference: input.reason,
  });
}
