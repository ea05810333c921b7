import { integer, pgEnum, pgTable, text, timestamp } from "drizzle-orm/pg-core";

export const circuitStateEnum = pgEnum("circuit_state", ["closed", "open", "half_open"]);

/** Each upstream channel's circuit breaker, shared by every worker through PostgreSQL. */
export const channelHealth = pgTable("channel_health", {
  channelId: text("channel_id").primaryKey(),
  state: circuitStateEnum("state").notNull().default("closed"),
  consecutiveFailures: integer("consecutive_failures").notNull().default(0),
  openedAt: timestamp("opened_at", { withTimezone: true }),
  updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
});
