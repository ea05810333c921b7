import { sql } from "drizzle-orm";
import {
  bigint,
  check,
  index,
  pgEnum,
  pgTable,
  text,
  timestamp,
  unique,
  uniqueIndex,
} from "drizzle-orm/pg-core";
import { networkEnum } from "../../db/columns.js";
import { accounts } from "../accounts/schema.js";

/**
 * pending: the earnings are held in the ledger; no transaction is signed yet, so none can be
 * mined. broadcast: a transaction is signed and its hash stored (this row is committed before
 * it is sent); only the chain decides what became of it. paid: mined successfully, the hold
 * posted. failed: it never moved USDC and never can (reverted, refused, or its nonce taken by
 * another transaction), the hold voided and the earnings available again.
 */
export const payoutStatus = pgEnum("payout_status", ["pending", "broadcast", "paid", "failed"]);

/** Creator payouts: earnings sent as USDC from the treasury to the creator's wallet. */
export const payouts = pgTable(
  "payouts",
  {
    /** po_…; also the id of the ledger hold on the creator's earnings. */
    id: text("id").primaryKey(),
    accountId: text("account_id")
      .notNull()
      .references(() => accounts.id),
    network: networkEnum("network").notNull(),
    /** Ledger units (1/10,000 credit), as every amount in the database. */
    credits: bigint("credits", { mode: "bigint" }).notNull(),
    /** USDC base units (6 decimals): one per ledger unit. */
    usdcAmount: bigint("usdc_amount", { mode: "bigint" }).notNull(),
    /** EIP-55 addresses: the creator's wallet and the treasury that pays. */
    toAddress: text("to_address").notNull(),
    fromAddress: text("from_address").notNull(),
    status: payoutStatus("status").notNull().default("pending"),
    txHash: text("tx_hash"),
    nonce: bigint("nonce", { mode: "bigint" }),
    /** The signed transaction, so the very same one (same hash) can be sent again. */
    rawTransaction: text("raw_transaction"),
    failureReason: text("failure_reason"),
    idempotencyKey: text("idempotency_key").notNull(),
    requestHash: text("request_hash").notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull(),
    broadcastAt: timestamp("broadcast_at", { withTimezone: true }),
    completedAt: timestamp("completed_at", { withTimezone: true }),
  },
  (t) => [
    // One Idempotency-Key is one payout of the account on the network, ever.
    unique("payouts_account_idempotency_key").on(t.accountId, t.network, t.idempotencyKey),
    uniqueIndex("payouts_tx_hash").on(t.network, t.txHash),
    index("payouts_account_idx").on(t.accountId, t.network, t.id),
    index("payouts_unresolved_idx")
      .on(t.updatedAt)
      .where(sql`${t.status} in ('pending', 'broadcast')`),
    check("payouts_credits_positive", sql`${t.credits} > 0`),
    check("payouts_usdc_amount", sql`${t.usdcAmount} = ${t.credits}`),
    check(
      "payouts_addresses",
      sql`${t.toAddress} ~ '^0x[0-9a-fA-F]{40}$' and ${t.fromAddress} ~ '^0x[0-9a-fA-F]{40}$'`,
    ),
    check(
      "payouts_signed",
      sql`${t.status} in ('pending', 'failed') or (${t.txHash} is not null and ${t.nonce} is not null and ${t.rawTransaction} is not null)`,
    ),
    check("payouts_unsigned_while_pending", sql`${t.status} <> 'pending' or ${t.txHash} is null`),
    check(
      "payouts_completed",
      sql`(${t.status} in ('paid', 'failed')) = (${t.completedAt} is not null)`,
    ),
  ],
);
