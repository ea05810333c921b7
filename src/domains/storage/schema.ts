import { integer, pgTable, text, timestamp } from "drizzle-orm/pg-core";

/**
 * Stored objects no row points at any more, still to be deleted from storage. A sweep records
 * a key here in the transaction that stops pointing at it, and deletes the object after that
 * commits: a failed or interrupted delete is retried by the next sweep, never lost.
 */
export const storageDeletions = pgTable("storage_deletions", {
  key: text("key").primaryKey(),
  attempts: integer("attempts").notNull().default(0),
  lastError: text("last_error"),
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
});
