import { readFileSync } from "node:fs";
import path from "node:path";
import { drizzle } from "drizzle-orm/node-postgres";
import { migrate } from "drizzle-orm/node-postgres/migrator";
import { runMigrations } from "graphile-worker";
import type pg from "pg";
import { z } from "zod";
import { graphileLogger } from "../jobs/logger.js";
import type { Logger } from "../logger.js";

export const migrationsFolder = path.resolve(import.meta.dirname, "../../drizzle");

// Any fixed number works; it only has to be the same for every process of this service.
const MIGRATION_LOCK = 4_207_011;

/**
 * Applies our SQL migrations (drizzle/) and graphile-worker's schema. Several processes may
 * start at once in production, so the whole step runs under one advisory lock.
 */
export async function migrateDatabase(pool: pg.Pool, logger: Logger): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query("select pg_advisory_lock($1)", [MIGRATION_LOCK]);
    try {
      await migrate(drizzle(client), { migrationsFolder });
      await runMigrations({ pgPool: pool, logger: graphileLogger(logger) });
    } finally {
      await client.query("select pg_advisory_unlock($1)", [MIGRATION_LOCK]);
    }
  } finally {
    client.release();
  }
  logger.info({ migrations: expectedMigrationCount() }, "database migrated");
}

const journalSchema = z.object({ entries: z.array(z.object({ tag: z.string() })) });

let journalCount: number | undefined;
export function expectedMigrationCount(): number {
  journalCount ??= journalSchema.parse(
    JSON.parse(readFileSync(path.join(migrationsFolder, "meta/_journal.json"), "utf8")),
  ).entries.length;
  return journalCount;
}

/** True when every migration of this build, ours and graphile-worker's, has been applied. */
export async function migrationsApplied(pool: pg.Pool): Promise<boolean> {
  const { rows } = await pool.query<{ ours: string | null; worker: string | null }>(
    `select to_regclass('drizzle.__drizzle_migrations')::text as ours,
            to_regclass('graphile_worker.migrations')::text as worker`,
  );
  if (!rows[0]?.ours || !rows[0].worker) return false;
  const applied = await pool.query<{ n: number }>(
    "select count(*)::int as n from drizzle.__drizzle_migrations",
  );
  return (applied.rows[0]?.n ?? 0) >= expectedMigrationCount();
}
