import type { Command } from "commander";
import { startWorker } from "../jobs/worker.js";
import { type ShutdownStep, stopOnSignals } from "../lib/shutdown.js";
import { startMetricsServer } from "../metrics/server.js";
import { openLongRunning } from "./open.js";

export function addWorkerCommand(program: Command) {
  program
    .command("worker")
    .description("Background jobs (production: run several against one PostgreSQL)")
    .action(async () => {
      const opened = await openLongRunning({ worker: true });
      const worker = await startWorker(opened.ctx);
      const { workerPort } = opened.config.metrics;
      const metrics =
        workerPort === undefined ? undefined : await startMetricsServer(opened.ctx, workerPort);
      stopOnSignals(opened.logger, opened.config.http.shutdownTimeoutMs, [
        ...(metrics ? [["metrics listener", metrics.close] as ShutdownStep] : []),
        ["worker", () => worker.stop()],
        ["database", opened.close],
      ]);
      if (metrics)
        opened.logger.info({ url: `${metrics.url}/metrics` }, "worker metrics listening");
    });
}
