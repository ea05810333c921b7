import { Logger as GraphileLogger, type LogLevel } from "graphile-worker";
import type { Logger } from "../logger.js";

const levels: Record<LogLevel, "error" | "warn" | "info" | "debug"> = {
  error: "error",
  warning: "warn",
  info: "info",
  debug: "debug",
};

/**
 * graphile-worker's start-up advice that assumes a running job holds a database connection or
 * finishes in milliseconds: ours wait on their upstream holding none, so far more run at once
 * than the pool has connections or a fetch brings jobs (see worker.ts). Said at debug level.
 */
const ADVICE =
  /^(WARNING: having maxPoolSize \(\d+\) smaller than concurrency|Your job batch size \(\d+\) is smaller than your concurrency setting)/;

/** graphile-worker's own logging, routed into the service's pino logger. */
export function graphileLogger(logger: Logger): GraphileLogger {
  const log = logger.child({ component: "worker" });
  return new GraphileLogger((scope) => (level, message, meta) => {
    const to = level === "warning" && ADVICE.test(message) ? "debug" : levels[level];
    log[to]({ ...scope, ...meta }, message);
  });
}
