import { sql } from "drizzle-orm";
import { bigint, check, date, index, pgTable, text, timestamp } from "drizzle-orm/pg-core";
import { networkEnum } from "../../db/columns.js";
import { accounts } from "../accounts/schema.js";

export const apiKeys = pgTable(
  "api_keys",
  {
    id: text("id").primaryKey(),
    accountId: text("account_id")
      .notNull()
      .references(() => accounts.id),
    network: networkEnum("network").notNull(),
    name: text("name").notNull(),
    /** SHA-256 (hex) of the whole key; the key itself is shown once and never stored. */
    keyHash: text("key_hash").notNull().unique(),
    prefix: text("prefix").notNull(),
    last4: text("last4").notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    lastUsedAt: timestamp("last_used_at", { withTimezone: true }),
    revokedAt: timestamp("revoked_at", { withTimezone: true }),
    /**
     * Spend limits, in ledger units (null: none). Enforced by the trigger on ledger_holds
     * (drizzle/0018_key_limits.sql, 0019_key_draws.sql) in the statement that places a hold of
     * the key, a hold drawn from a reservation of another key or of a session included.
     */
    limitTotal: bigint("limit_total", { mode: "bigint" }),
    limitPerDay: bigint("limit_per_day", { mode: "bigint" }),
    /** What the key's holds set aside less what they returned: settled charges plus open holds. */
    spentTotal: bigint("spent_total", { mode: "bigint" }).notNull().default(sql`0`),
    /** The same, for the holds placed on spent_day_date (a UTC day). */
    spentDay: bigint("spent_day", { mode: "bigint" }).notNull().default(sql`0`),
    spentDayDate: date("spent_day_date", { mode: "string" }),
  },
  (t) => [
    index("api_keys_active_by_account_idx").on(t.accountId).where(sql`${t.revokedAt} is null`),
    check("api_keys_key_hash_format", sql`${t.keyHash} ~ '^[0-9a-f]{64}$'`),
    check(
      "api_keys_limits_non_negative",
      sql`(${t.limitTotal} is null or ${t.limitTotal} >= 0) and (${t.limitPerDay} is null or ${t.limitPerDay} >= 0)`,
    ),
    check("api_keys_spent_non_negative", sql`${t.spentTotal} >= 0 and ${t.spentDay} >= 0`),
    check("api_keys_last4_format", sql`${t.last4} ~ '^[0-9A-Za-z]{4}$'`),
    check(
      "api_keys_prefix_matches_network",
      sql`(${t.network} = 'live' and ${t.prefix} = 'sk_live_') or (${t.network} = 'test' and ${t.prefix} = 'sk_test_')`,
    ),
  ],
);
