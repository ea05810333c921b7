import { sql } from "drizzle-orm";
import { check, index, integer, pgTable, text, timestamp } from "drizzle-orm/pg-core";
import { networkEnum } from "../../db/columns.js";
import { accounts } from "../accounts/schema.js";

/**
 * Images a caller gave us, uploaded or fetched from their URL through the SSRF guard, and
 * re-hosted: generations reference these, so upstreams never fetch a user's URL themselves.
 */
export const uploads = pgTable(
  "uploads",
  {
    id: text("id").primaryKey(),
    accountId: text("account_id")
      .notNull()
      .references(() => accounts.id),
    network: networkEnum("network").notNull(),
    storageKey: text("storage_key").notNull(),
    contentType: text("content_type").notNull(),
    sizeBytes: integer("size_bytes").notNull(),
    width: integer("width").notNull(),
    height: integer("height").notNull(),
    /** The URL it was fetched from; null for a direct upload. */
    sourceUrl: text("source_url"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index("uploads_account_idx").on(t.accountId, t.network, t.createdAt),
    check(
      "uploads_content_type",
      sql`${t.contentType} in ('image/png', 'image/jpeg', 'image/webp')`,
    ),
  ],
);
