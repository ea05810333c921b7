import { sql } from "drizzle-orm";
import { check, index, pgTable, text, timestamp } from "drizzle-orm/pg-core";
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
  },
  (t) => [
    index("api_keys_active_by_account_idx").on(t.accountId).where(sql`${t.revokedAt} is null`),
    check("api_keys_key_hash_format", sql`${t.keyHash} ~ '^[0-9a-f]{64}$'`),
    check("api_keys_last4_format", sql`${t.last4} ~ '^[0-9A-Za-z]{4}$'`),
    check(
      "api_keys_prefix_matches_network",
      sql`(${t.network} = 'live' and ${t.prefix} = 'sk_live_') or (${t.network} = 'test' and ${t.prefix} = 'sk_test_')`,
    ),
  ],
);
