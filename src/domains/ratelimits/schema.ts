import { sql } from "drizzle-orm";
import { check, index, integer, pgTable, primaryKey, text, timestamp } from "drizzle-orm/pg-core";

/**
 * One fixed one-minute window per subject (an account on a network, or a client address) and
 * bucket. Every API process counts in the same row, so a limit holds however many there are;
 * a request is one upsert. Rows of past windows are purged by the rate_limits_purge cron.
 */
export const rateLimitCounters = pgTable(
  "rate_limit_counters",
  {
    subject: text("subject").notNull(),
    bucket: text("bucket").notNull(),
    windowStart: timestamp("window_start", { withTimezone: true }).notNull(),
    count: integer("count").notNull(),
  },
  (t) => [
    primaryKey({ name: "rate_limit_counters_pkey", columns: [t.subject, t.bucket] }),
    index("rate_limit_counters_window_idx").on(t.windowStart),
    check("rate_limit_counters_bucket", sql`${t.bucket} in ('generate', 'batch', 'poll')`),
  ],
);
