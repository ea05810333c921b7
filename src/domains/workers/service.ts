import { hostname } from "node:os";
import { type SQL, sql } from "drizzle-orm";
import type { ServiceContext } from "../../context.js";

/**
 * Worker liveness. graphile-worker keeps a dead worker's job locked for about four hours; here
 * each worker pool records a heartbeat, and the jobs of a pool whose heartbeat stopped are
 * released (graphile-worker's own force_unlock_workers) so a live worker runs them again at
 * once. Times are the database's, the one clock every process shares.
 */

const age = (ms: number) => sql`now() - ${ms} * interval '1 millisecond'`;

/**
 * Records that these pools (this process's) are alive. Returns the ones that had no row: new,
 * or presumed dead meanwhile by another worker, which then released their jobs.
 */
export async function recordHeartbeat(ctx: ServiceContext, poolIds: string[]): Promise<string[]> {
  if (poolIds.length === 0) return [];
  const { rows } = await ctx.db.execute<{ pool_id: string; inserted: boolean }>(sql`
    insert into worker_heartbeats (pool_id, host, pid)
    select unnest(${sql.param(poolIds)}::text[]), ${hostname()}, ${process.pid}
    on conflict (pool_id) do update set last_seen_at = now()
    returning pool_id, (xmax = 0) as inserted`);
  return rows.filter((r) => r.inserted).map((r) => r.pool_id);
}

/** Forgets these pools and releases whatever jobs they still hold; returns how many. */
export async function releaseWorkers(ctx: ServiceContext, poolIds: string[]): Promise<number> {
  if (poolIds.length === 0) return 0;
  return ctx.db.transaction(async (tx) => {
    await tx.execute(
      sql`delete from worker_heartbeats where pool_id = any(${sql.param(poolIds)}::text[])`,
    );
    return unlock(tx, poolIds);
  });
}

/**
 * Releases the jobs of every pool whose heartbeat is older than `deadAfterMs`: they run again
 * on a live worker, which resumes their upstream jobs. Two workers doing it at once release
 * each job once (the heartbeat rows are deleted under lock).
 */
export async function releaseDeadWorkers(
  ctx: ServiceContext,
  deadAfterMs: number,
): Promise<{ pools: string[]; jobs: number }> {
  return ctx.db.transaction(async (tx) => {
    const { rows } = await tx.execute<{ pool_id: string }>(sql`
      delete from worker_heartbeats where last_seen_at < ${age(deadAfterMs)} returning pool_id`);
    const pools = rows.map((r) => r.pool_id);
    return { pools, jobs: pools.length ? await unlock(tx, pools) : 0 };
  });
}

async function unlock(tx: ServiceContext["db"], poolIds: string[]): Promise<number> {
  const { rows } = await tx.execute<{ jobs: number }>(sql`
    select count(*)::int as jobs from graphile_worker._private_jobs
    where locked_by = any(${sql.param(poolIds)}::text[])`);
  await tx.execute(sql`select graphile_worker.force_unlock_workers(${sql.param(poolIds)}::text[])`);
  return rows[0]?.jobs ?? 0;
}

/** SQL: whether the pool named by `lockedBy` (a job's locked_by) has a live heartbeat. */
export function isLiveWorker(lockedBy: SQL, deadAfterMs: number): SQL {
  return sql`exists (select 1 from worker_heartbeats w
                     where w.pool_id = ${lockedBy} and w.last_seen_at >= ${age(deadAfterMs)})`;
}
