import { sql } from "drizzle-orm";
import type { ServiceContext } from "../context.js";
import { isLiveWorker } from "../domains/workers/service.js";

/**
 * The job queue as graphile-worker's public `graphile_worker.jobs` view shows it, for
 * monitoring. A job is: running while a live worker (one whose heartbeat is recent) holds its
 * lock; stalled while it is locked by a worker that is not live (dead and not yet released, or
 * one that records no heartbeat); failed once its attempts are spent and no worker holds it;
 * runnable once its run_at has come; else scheduled. A lock older than four hours counts as
 * none (graphile-worker's own limit).
 */
export type JobState = "runnable" | "scheduled" | "running" | "stalled" | "failed";

const state = (deadAfterMs: number) => sql`case
  when locked_at is not null and locked_at > now() - interval '4 hours'
    then case when ${isLiveWorker(sql`locked_by`, deadAfterMs)} then 'running' else 'stalled' end
  when attempts >= max_attempts then 'failed'
  when run_at <= now() then 'runnable'
  else 'scheduled' end`;

/** Jobs per task and state; tasks that have no job at all do not appear. */
export async function jobCounts(
  ctx: ServiceContext,
): Promise<Array<{ task: string; state: JobState; jobs: number }>> {
  const { rows } = await ctx.db.execute<{ task: string; state: JobState; jobs: number }>(sql`
    select task_identifier as task, ${state(ctx.config.worker.deadAfterMs)} as state, count(*)::int as jobs
    from graphile_worker.jobs group by 1, 2`);
  return rows;
}

/** How long the oldest runnable job has been waiting for a worker, in seconds; 0 if none. */
export async function oldestRunnableJobAgeSeconds(ctx: ServiceContext): Promise<number> {
  const { rows } = await ctx.db.execute<{ age: number | null }>(sql`
    select extract(epoch from now() - min(run_at))::float8 as age
    from graphile_worker.jobs where ${state(ctx.config.worker.deadAfterMs)} = 'runnable'`);
  return Math.max(0, rows[0]?.age ?? 0);
}

/**
 * The lease of jobs run outside the worker (see domains/generations/inline.ts), in one
 * statement: the jobs of `running` keys are kept from the workers for `leaseMs` more (0: handed
 * to them now), those of `finished` keys are removed. A job a worker has locked meanwhile is
 * left to it. Times are the database's, as the workers' are.
 */
export async function leaseJobs(
  ctx: ServiceContext,
  running: string[],
  finished: string[],
  leaseMs: number,
): Promise<void> {
  await ctx.db.execute(sql`
    with renewed as (
      update graphile_worker._private_jobs set run_at = ${leaseUntil(leaseMs)}
      where key = any(${sql.param(running)}::text[]) and locked_at is null)
    delete from graphile_worker._private_jobs
    where key = any(${sql.param(finished)}::text[]) and locked_at is null`);
}

/** The end of a lease of `leaseMs` from now, in the database's time. */
export const leaseUntil = (leaseMs: number) => sql`now() + ${leaseMs} * interval '1 millisecond'`;
