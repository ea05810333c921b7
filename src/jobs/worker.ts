import { EventEmitter } from "node:events";
import { type Runner, run, type WorkerEvents } from "graphile-worker";
import type { AppContext } from "../context.js";
import { crontab } from "./definitions.js";
import { startHeartbeat } from "./heartbeat.js";
import { graphileLogger } from "./logger.js";
import { superviseRunner } from "./supervisor.js";
import { taskList } from "./tasks.js";

/**
 * A graphile-worker runner on the shared pool, restarted whenever it stops on its own (a
 * database restart: see superviseRunner), with its heartbeat (see heartbeat.ts). Stopping it
 * lets running jobs finish for up to SHUTDOWN_TIMEOUT_MS, their completions written; the ones
 * still running then are released, so another worker takes them at once and resumes their
 * upstream jobs.
 */
export async function startWorker(ctx: AppContext): Promise<Runner> {
  // Given to run() rather than read from the runner, so no early job:start is missed.
  const events: WorkerEvents = new EventEmitter();
  events.on("job:start", ({ job }) => {
    ctx.metrics.jobStarted(job.task_identifier, job.run_at, new Date());
  });
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
        concurrency: ctx.config.worker.concurrency,
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
