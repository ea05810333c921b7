import { sql } from "drizzle-orm";
import {
  bigint,
  check,
  index,
  pgEnum,
  pgTable,
  text,
  timestamp,
  uniqueIndex,
} from "drizzle-orm/pg-core";
import { networkEnum } from "../../db/columns.js";
import { accounts } from "../accounts/schema.js";
import type { PackId } from "../ledger/packs.js";

/**
 * settling: claimed by one request, settlement under way. pending: broadcast (or possibly
 * broadcast) with no answer yet; the chain decides, through reconciliation. settled: on chain,
 * credits minted in the same transaction that set this. failed: never moved money.
 */
export const paymentStatus = pgEnum("payment_status", ["settling", "pending", "settled", "failed"]);
export const paymentPurpose = pgEnum("payment_purpose", ["pack", "generation"]);

/** x402 payments in USDC: one row per EIP-3009 authorization, whatever became of it. */
export const payments = pgTable(
  "payments",
  {
    id: text("id").primaryKey(),
    network: networkEnum("network").notNull(),
    /** The account credited: the API key's, or the paying wallet's own. */
    accountId: text("account_id")
      .notNull()
      .references(() => accounts.id),
    /** EIP-55 addresses. */
    payer: text("payer").notNull(),
    payTo: text("pay_to").notNull(),
    asset: text("asset").notNull(),
    /** The authorization's 32-byte nonce, lower-case hex. */
    nonce: text("nonce").notNull(),
    /** USDC base units (6 decimals). */
    amount: bigint("amount", { mode: "bigint" }).notNull(),
    credits: bigint("credits", { mode: "bigint" }).notNull(),
    purpose: paymentPurpose("purpose").notNull(),
    pack: text("pack").$type<PackId>(),
    generationId: text("generation_id"),
    status: paymentStatus("status").notNull(),
    transaction: text("transaction"),
    validBefore: timestamp("valid_before", { withTimezone: true }).notNull(),
    error: text("error"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull(),
    settledAt: timestamp("settled_at", { withTimezone: true }),
  },
  (t) => [
    // One authorization is one payment, ever: the second request carrying it finds this row.
    uniqueIndex("payments_authorization").on(t.network, t.asset, t.payer, t.nonce),
    uniqueIndex("payments_transaction").on(t.network, t.transaction),
    index("payments_account_idx").on(t.accountId, t.network, t.createdAt),
    index("payments_unresolved_idx")
      .on(t.status)
      .where(sql`${t.status} in ('settling', 'pending')`),
    check("payments_amount_positive", sql`${t.amount} > 0 and ${t.credits} > 0`),
    check("payments_nonce_format", sql`${t.nonce} ~ '^0x[0-9a-f]{64}$'`),
    check(
      "payments_settled_has_transaction",
      sql`${t.status} <> 'settled' or (${t.transaction} is not null and ${t.settledAt} is not null)`,
    ),
    check("payments_purpose_fields", sql`(${t.purpose} = 'pack') = (${t.pack} is not null)`),
  ],
);
