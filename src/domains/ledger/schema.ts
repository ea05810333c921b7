import { sql } from "drizzle-orm";
import {
  bigint,
  bigserial,
  check,
  foreignKey,
  index,
  jsonb,
  pgEnum,
  pgTable,
  text,
  timestamp,
  unique,
  uniqueIndex,
} from "drizzle-orm/pg-core";
import { networkEnum } from "../../db/columns.js";
import { accounts } from "../accounts/schema.js";
import { apiKeys } from "../keys/schema.js";

/**
 * The credit ledger. Rules that money depends on live in PostgreSQL (constraints, and the
 * triggers and functions of the `ledger_rules` migration), so no code path can break them:
 * - a transfer moves a positive whole number of credits between two accounts of one network;
 * - posted transfers are never updated or deleted;
 * - user accounts keep a stored balance that never goes below zero, maintained by a trigger
 *   on every transfer (system accounts have no floor; their balance is derived from transfers,
 *   which also keeps them from becoming one hot row every transfer must lock);
 * - a hold leaves `pending` at most once.
 */

export const ledgerAccountKind = pgEnum("ledger_account_kind", [
  "credits", // a user's spendable credits
  "earnings", // a creator's royalties
  "issuance", // system: credits minted from USDC or granted; goes negative
  "revenue", // system: credits spent on generations
  "holds", // system: credits held for work in flight
  "royalties", // system: royalties owed before they reach earnings
]);

export const ledgerAccounts = pgTable(
  "ledger_accounts",
  {
    /** Deterministic: `credits:test:acc_…` for users, `revenue:test` for the system. */
    id: text("id").primaryKey(),
    network: networkEnum("network").notNull(),
    kind: ledgerAccountKind("kind").notNull(),
    ownerId: text("owner_id").references(() => accounts.id),
    /** Stored for user accounts only (null for system accounts). */
    balance: bigint("balance", { mode: "bigint" }),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    unique("ledger_accounts_id_network").on(t.id, t.network),
    unique("ledger_accounts_owner_network_kind").on(t.ownerId, t.network, t.kind),
    check(
      "ledger_accounts_owner_matches_kind",
      sql`(${t.kind} in ('credits', 'earnings')) = (${t.ownerId} is not null and ${t.balance} is not null)`,
    ),
    check("ledger_accounts_non_negative", sql`${t.balance} >= 0`),
  ],
);

export const holdStatus = pgEnum("hold_status", ["pending", "posted", "voided", "expired"]);

/**
 * Two-phase spending. Credits on hold sit in the network's `holds` account. Always
 * amount = available + drawn + posted + released; a resolved hold has nothing available.
 */
export const ledgerHolds = pgTable(
  "ledger_holds",
  {
    id: text("id").primaryKey(),
    network: networkEnum("network").notNull(),
    /** The user credits account the hold came from and returns to. */
    accountId: text("account_id").notNull(),
    /** A hold drawn from a reservation (itself a hold) rather than from the balance. */
    parentHoldId: text("parent_hold_id"),
    kind: text("kind").notNull(),
    reference: text("reference"),
    /** The API key that placed it, when one did: its spend counters and limits follow it. */
    apiKeyId: text("api_key_id").references(() => apiKeys.id),
    amount: bigint("amount", { mode: "bigint" }).notNull(),
    available: bigint("available", { mode: "bigint" }).notNull(),
    drawn: bigint("drawn", { mode: "bigint" }).notNull().default(sql`0`),
    posted: bigint("posted", { mode: "bigint" }).notNull().default(sql`0`),
    released: bigint("released", { mode: "bigint" }).notNull().default(sql`0`),
    status: holdStatus("status").notNull().default("pending"),
    /** Id of the operation that resolved the hold, so a replay of it is recognised. */
    resolvedBy: text("resolved_by"),
    expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    resolvedAt: timestamp("resolved_at", { withTimezone: true }),
  },
  (t) => [
    foreignKey({
      name: "ledger_holds_account_same_network",
      columns: [t.accountId, t.network],
      foreignColumns: [ledgerAccounts.id, ledgerAccounts.network],
    }),
    foreignKey({
      name: "ledger_holds_parent",
      columns: [t.parentHoldId],
      foreignColumns: [t.id],
    }),
    check("ledger_holds_amount_positive", sql`${t.amount} > 0`),
    check(
      "ledger_holds_parts_non_negative",
      sql`${t.available} >= 0 and ${t.drawn} >= 0 and ${t.posted} >= 0 and ${t.released} >= 0`,
    ),
    check(
      "ledger_holds_conserved",
      sql`${t.amount} = ${t.available} + ${t.drawn} + ${t.posted} + ${t.released}`,
    ),
    check(
      "ledger_holds_resolution",
      sql`(${t.status} = 'pending') = (${t.resolvedBy} is null and ${t.resolvedAt} is null)
          and (${t.status} = 'pending' or ${t.available} = 0)
          and (${t.status} <> 'pending' or (${t.posted} = 0 and ${t.released} = 0))`,
    ),
    index("ledger_holds_pending_expiry_idx").on(t.expiresAt).where(sql`${t.status} = 'pending'`),
    index("ledger_holds_account_idx").on(t.accountId).where(sql`${t.status} = 'pending'`),
    index("ledger_holds_parent_idx").on(t.parentHoldId),
  ],
);

export const ledgerTransfers = pgTable(
  "ledger_transfers",
  {
    /** Chosen by the caller; the same id twice is one transfer. */
    id: text("id").primaryKey(),
    /** Insertion order, for history and cursors. */
    seq: bigserial("seq", { mode: "bigint" }).notNull().unique(),
    network: networkEnum("network").notNull(),
    debitAccountId: text("debit_account_id").notNull(),
    creditAccountId: text("credit_account_id").notNull(),
    amount: bigint("amount", { mode: "bigint" }).notNull(),
    kind: text("kind").notNull(),
    reference: text("reference"),
    metadata: jsonb("metadata").$type<Record<string, unknown>>().notNull().default({}),
    holdId: text("hold_id"),
    /** Set by the balance trigger for user accounts; null on system sides. */
    debitBalanceAfter: bigint("debit_balance_after", { mode: "bigint" }),
    creditBalanceAfter: bigint("credit_balance_after", { mode: "bigint" }),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    // Composite keys: both sides must exist on the transfer's own network.
    foreignKey({
      name: "ledger_transfers_debit_same_network",
      columns: [t.debitAccountId, t.network],
      foreignColumns: [ledgerAccounts.id, ledgerAccounts.network],
    }),
    foreignKey({
      name: "ledger_transfers_credit_same_network",
      columns: [t.creditAccountId, t.network],
      foreignColumns: [ledgerAccounts.id, ledgerAccounts.network],
    }),
    foreignKey({
      name: "ledger_transfers_hold",
      columns: [t.holdId],
      foreignColumns: [ledgerHolds.id],
    }),
    check("ledger_transfers_amount_positive", sql`${t.amount} > 0`),
    check("ledger_transfers_two_sides", sql`${t.debitAccountId} <> ${t.creditAccountId}`),
    check("ledger_transfers_kind_format", sql`${t.kind} ~ '^[a-z][a-z_]*$'`),
    index("ledger_transfers_debit_idx").on(t.debitAccountId, t.seq),
    index("ledger_transfers_credit_idx").on(t.creditAccountId, t.seq),
    index("ledger_transfers_hold_idx").on(t.holdId),
    // The membership tier (the best pack bought) is read on every rate-limited request.
    index("ledger_transfers_pack_purchase_idx")
      .on(t.creditAccountId)
      .where(sql`${t.kind} = 'pack_purchase'`),
    // A hold is posted at most once and released at most once.
    uniqueIndex("ledger_transfers_one_post_per_hold")
      .on(t.holdId)
      .where(sql`${t.kind} = 'hold_post'`),
    uniqueIndex("ledger_transfers_one_release_per_hold")
      .on(t.holdId)
      .where(sql`${t.kind} = 'hold_release'`),
  ],
);
