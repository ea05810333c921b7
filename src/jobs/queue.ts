import { sql } from "drizzle-orm";
import type { ServiceContext } from "../context.js";

/**
 * The job queue as graphile-worker's public `graphile_worker.jobs` view shows it, for
 * monitoring. A job is, in graphile-worker's own terms: failed once its attempts are spent (it
 * stays until removed); running while a worker holds its lock (a lock older than four hours is
 * presumed dead, and the job can run again); runnable once its run_at has come; else scheduled.
 */
export type JobState = "runnable" | "scheduled" | "running" | "failed";

const STATE = sql`case
  when attempts >= max_attempts then 'failed'
  when locked_at is not null and locked_at > now() - interval '4 hours' then 'running'
  when run_at <= now() then 'runnable'
  else 'scheduled' end`;

/** Jobs per task and state; tasks that have no job at all do not appear. */
export async function jobCounts(
  ctx: ServiceContext,
): Promise<Array<{ task: string; state: JobState; jobs: number }>> {
  const { rows } = await ctx.db.execute<{ task: string; state: JobState; jobs: number }>(sql`
    select task_identifier as task, ${STATE} as state, count(*)::int as jobs
    from graphile_worker.jobs group by 1, 2`);
  return rows;
}

/** How long the oldest runnable job has been waiting for a worker, in seconds; 0 if none. */
export async function oldestRunnableJobAgeSeconds(ctx: ServiceContext): Promise<number> {
  const { rows } = await ctx.db.execute<{ age: number | null }>(sql`
    select extract(epoch from now() - min(run_at))::float8 as age
    from graphile_worker.jobs where ${STATE} = 'runnable'`);
  return Math.max(0, rows[0]?.age ?? 0);
}
