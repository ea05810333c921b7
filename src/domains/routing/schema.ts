import {
  doublePrecision,
  integer,
  pgEnum,
  pgTable,
  primaryKey,
  text,
  timestamp,
} from "drizzle-orm/pg-core";

export const circuitStateEnum = pgEnum("circuit_state", ["closed", "open", "half_open"]);

/** Each upstream channel's circuit breaker, shared by every worker through PostgreSQL. */
export const channelHealth = pgTable("channel_health", {
  channelId: text("channel_id").primaryKey(),
  state: circuitStateEnum("state").notNull().default("closed"),
  consecutiveFailures: integer("consecutive_failures").notNull().default(0),
  openedAt: timestamp("opened_at", { withTimezone: true }),
  updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
});

/**
 * The other half of a channel's health: how long its successful calls of each model take, a
 * moving average in milliseconds (latency.ts), for `sort: "latency"`. Its own rows, so that measuring never
 * touches (or waits on) the breaker's.
 */
export const channelLatency = pgTable(
  "channel_latency",
  {
    channelId: text("channel_id").notNull(),
    model: text("model").notNull(),
    latencyMs: doublePrecision("latency_ms").notNull(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.channelId, t.model] })],
);
