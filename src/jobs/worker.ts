import { EventEmitter } from "node:events";
import { type Runner, run, type WorkerEvents } from "graphile-worker";
import type { AppContext } from "../context.js";
import { crontab } from "./definitions.js";
import { startHeartbeat } from "./heartbeat.js";
import { graphileLogger } from "./logger.js";
import { superviseRunner } from "./supervisor.js";
import { taskList } from "./tasks.js";

/**
 * How a worker holds thousands of jobs in flight on a pool of ten connections. A job is an
 * async task: while it waits on its upstream it holds a slot (a promise, a socket) but no
 * database connection; it takes one from the pool only for each short statement or settling
 * transaction, and never asks for a second while holding one, so the pool cannot deadlock.
 * The pool serves waiters in order (first come, first served: none starves), and a wait is
 * bounded (WORKER_DATABASE_WAIT_MS in `polyforge worker`, the API's 5 s in `polyforge dev`):
 * past it the statement fails and the job is retried later, as on a database outage. Two
 * connections stay out of the jobs' reach: graphile-worker's LISTEN for new jobs, and the
 * heartbeat's (heartbeat.ts).
 *
 * Jobs are fetched for the whole pool, up to FETCH_BATCH per statement, rather than by each
 * idle slot on its own (at a thousand slots, hundreds of polls a second). A fetch locks what it
 * brings; when every slot is busy, what it brought waits for a slot, for at most
 * UNCLAIMED_TTL_MS, and then goes back to the queue for the other workers (this one fetches
 * again once a slot is free). So a busy worker keeps at most FETCH_BATCH jobs from the others.
 */
const FETCH_BATCH = 100;
const UNCLAIMED_TTL_MS = 10_000;
/** graphile-worker's LISTEN, the heartbeat, and at least one for the jobs. */
const MIN_POOL = 3;

/**
 * A graphile-worker runner on the shared pool, restarted whenever it stops on its own (a
 * database restart: see superviseRunner), with its heartbeat (see heartbeat.ts). Stopping it
 * lets running jobs finish for up to SHUTDOWN_TIMEOUT_MS, their completions written; the ones
 * still running then are released, all of them by one force_unlock_workers call, so another
 * worker takes them at once and resumes their upstream jobs.
 */
export async function startWorker(ctx: AppContext): Promise<Runner> {
  const { concurrency } = ctx.config.worker;
  if (ctx.pool.options.max < MIN_POOL) {
    throw new Error(
      `a worker needs a pool of at least ${MIN_POOL} connections (DATABASE_POOL_MAX), not ${ctx.pool.options.max}: it keeps two for itself`,
    );
  }
  // Given to run() rather than read from the runner, so no early job:start is missed.
  const events: WorkerEvents = new EventEmitter();
  events.on("job:start", ({ job }) => {
    ctx.metrics.jobStarted(job.task_identifier, job.run_at, new Date());
  });
  events.on("job:complete", ({ job }) => ctx.metrics.jobFinished(job.task_identifier));
  // A job's locked_by is its pool's id: the heartbeat vouches for the pools alive now.
  const pools = new Set<string>();
  events.on("pool:create", ({ workerPool }) => void pools.add(workerPool.id));
  events.on("pool:release", ({ workerPool }) => void pools.delete(workerPool.id));
  const runner = await superviseRunner({
    logger: ctx.logger.child({ component: "worker" }),
    events,
    start: () =>
      run({
        pgPool: ctx.pool,
        taskList: taskList(ctx),
        crontab,
        concurrency,
        // The process owns its signals and shuts HTTP, worker and database down in order.
        noHandleSignals: true,
        logger: graphileLogger(ctx.logger),
        events,
        preset: {
          worker: {
            // Unbatched, graphile-worker writes a job's completion without awaiting it: a
            // stopping worker closed the pool before the last one was written, and a failed
            // write was an unhandled rejection. Through its batcher (0 ms: no added latency)
            // the pool waits for every write before it ends, and a failed one stops the pool,
            // which superviseRunner replaces.
            completeJobBatchDelay: 0,
            failJobBatchDelay: 0,
            // See FETCH_BATCH.
            localQueue: { size: Math.min(concurrency, FETCH_BATCH), ttl: UNCLAIMED_TTL_MS },
          },
        },
      }),
    databaseAnswers: async () => {
      await ctx.pool.query("select 1");
    },
    releaseLocks: async (poolIds) => {
      await ctx.pool.query("select graphile_worker.force_unlock_workers($1::text[])", [poolIds]);
    },
  });
  // The pool exists once run() returns; its first beat goes out now, as it looks for jobs.
  const heartbeat = startHeartbeat(ctx, () => [...pools]);
  const stop = async (reason?: string) => {
    const graceful = runner.stop(reason).then(() => true);
    graceful.catch(() => {}); // reported below when it comes in time; ignored after that
    let timer: NodeJS.Timeout | undefined;
    const outlasted = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), ctx.config.http.shutdownTimeoutMs);
    });
    let finished = false;
    let released = 0;
    try {
      finished = await Promise.race([graceful, outlasted]);
    } finally {
      clearTimeout(timer);
      released = await heartbeat.stop();
    }
    if (!finished) {
      ctx.logger.warn(
        { released },
        "jobs outlasted the shutdown: released to the other workers, which resume them",
      );
    }
  };
  return { ...runner, stop };
}
