import { EventEmitter } from "node:events";
import { type Runner, run, type WorkerEvents } from "graphile-worker";
import type { AppContext } from "../context.js";
import { graphileLogger } from "./logger.js";
import { superviseRunner } from "./supervisor.js";
import { crontab, taskList } from "./tasks.js";

/**
 * A graphile-worker runner on the shared pool, restarted whenever it stops on its own (a
 * database restart: see superviseRunner). Stopping it lets running jobs finish first, and
 * their completions are written before it resolves.
 */
export async function startWorker(ctx: AppContext): Promise<Runner> {
  // Given to run() rather than read from the runner, so no early job:start is missed.
  const events: WorkerEvents = new EventEmitter();
  events.on("job:start", ({ job }) => {
    ctx.metrics.jobStarted(job.task_identifier, job.run_at, new Date());
  });
  return superviseRunner({
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
}
