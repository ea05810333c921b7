import { sql } from "drizzle-orm";
import { check, index, integer, pgTable, text, timestamp } from "drizzle-orm/pg-core";
import { accounts } from "../accounts/schema.js";
import { generations } from "../generations/schema.js";

/** Each account's Standard Webhooks signing secret; the one before a rotation stays valid a day. */
export const webhookSecrets = pgTable("webhook_secrets", {
  accountId: text("account_id")
    .primaryKey()
    .references(() => accounts.id),
  secret: text("secret").notNull(),
  previousSecret: text("previous_secret"),
  previousValidUntil: timestamp("previous_valid_until", { withTimezone: true }),
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  rotatedAt: timestamp("rotated_at", { withTimezone: true }),
});

/**
 * One message per generation that reached a terminal status with a webhook URL. Its id is the
 * `webhook-id` of every attempt, so receivers can drop duplicates.
 */
export const webhookDeliveries = pgTable(
  "webhook_deliveries",
  {
    id: text("id").primaryKey(),
    generationId: text("generation_id")
      .notNull()
      .unique()
      .references(() => generations.id),
    accountId: text("account_id")
      .notNull()
      .references(() => accounts.id),
    url: text("url").notNull(),
    status: text("status").notNull().default("pending"),
    attempts: integer("attempts").notNull().default(0),
    lastStatusCode: integer("last_status_code"),
    lastError: text("last_error"),
    nextAttemptAt: timestamp("next_attempt_at", { withTimezone: true }),
    deliveredAt: timestamp("delivered_at", { withTimezone: true }),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    check("webhook_deliveries_status", sql`${t.status} in ('pending', 'delivered', 'failed')`),
    index("webhook_deliveries_account_idx").on(t.accountId, t.createdAt),
  ],
);
