import type { Logger } from "../logger.js";

/**
 * The last resort of the long-running commands (dev, serve, worker): a promise that rejects
 * with nobody listening is logged, and the process goes on. Node's default ends the process,
 * which turned one library's stray rejection during a database restart (graphile-worker
 * discarding a failed write's promise) into a dead worker with thousands of calls in flight.
 * Nothing is lost by going on: every state lives in PostgreSQL and every job is idempotent,
 * while the code that did reject has already given up on what it was doing. Uncaught
 * exceptions still end the process: they leave no such guarantee about the stack they unwound.
 */
export function logUnhandledRejections(logger: Logger): void {
  process.on("unhandledRejection", (reason) => {
    logger.error({ err: reason }, "unhandled promise rejection (logged; the process goes on)");
  });
}
