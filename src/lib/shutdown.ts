import type { Logger } from "../logger.js";

export type ShutdownStep = [name: string, stop: () => Promise<unknown>];

/**
 * On SIGINT or SIGTERM, runs the steps in order (each waited for) and exits. A second signal
 * exits at once, and so does a shutdown still running past its time limit. Steps are listed
 * front to back: stop taking work, finish it, close storage.
 */
export function stopOnSignals(logger: Logger, timeoutMs: number, steps: ShutdownStep[]): void {
  let stopping = false;
  const onSignal = async (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, "second signal: exiting now");
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, "shutting down");
    // A stuck request or job must not keep the process alive forever; the last step
    // (the database) is still given a moment after the others are abandoned.
    setTimeout(() => {
      logger.error({ timeoutMs }, "shutdown took too long: exiting");
      process.exit(1);
    }, timeoutMs + 5_000).unref();
    let failed = false;
    for (const [name, stop] of steps) {
      try {
        await stop();
        logger.info(`${name} stopped`);
      } catch (err) {
        failed = true;
        logger.error({ err }, `${name} failed to stop cleanly`);
      }
    }
    process.exit(failed ? 1 : 0);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
}
