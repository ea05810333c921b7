import { index, integer, pgTable, text, timestamp } from "drizzle-orm/pg-core";

/**
 * One row per live graphile-worker pool (one per `polyforge worker` or `polyforge dev`
 * process), keyed by the pool id graphile-worker writes into a job's `locked_by`. A pool whose
 * row stops moving is presumed dead and its jobs are unlocked for the live ones (service.ts).
 */
export const workerHeartbeats = pgTable(
  "worker_heartbeats",
  {
    poolId: text("pool_id").primaryKey(),
    host: text("host").notNull(),
    pid: integer("pid").notNull(),
    startedAt: timestamp("started_at", { withTimezone: true }).notNull().defaultNow(),
    lastSeenAt: timestamp("last_seen_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index("worker_heartbeats_last_seen_idx").on(t.lastSeenAt)],
);
