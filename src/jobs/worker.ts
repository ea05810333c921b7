import { EventEmitter } from "node:events";
import { type Runner, run, type WorkerEvents } from "graphile-worker";
import type { AppContext } from "../context.js";
import { graphileLogger } from "./logger.js";
import { crontab, taskList } from "./tasks.js";

/** A graphile-worker runner on the shared pool. Stopping it lets running jobs finish first. */
export async function startWorker(ctx: AppContext): Promise<Runner> {
  // Given to run() rather than read from the runner, so no early job:start is missed.
  const events: WorkerEvents = new EventEmitter();
  events.on("job:start", ({ job }) => {
    ctx.metrics.jobStarted(job.task_identifier, job.run_at, new Date());
  });
  return run({
    pgPool: ctx.pool,
    taskList: taskList(ctx),
    crontab,
    concurrency: ctx.config.worker.concurrency,
    // The process owns its signals and shuts HTTP, worker and database down in order.
    noHandleSignals: true,
    logger: graphileLogger(ctx.logger),
    events,
  });
}
