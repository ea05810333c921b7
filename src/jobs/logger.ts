import { Logger as GraphileLogger, type LogLevel } from "graphile-worker";
import type { Logger } from "../logger.js";

const levels: Record<LogLevel, "error" | "warn" | "info" | "debug"> = {
  error: "error",
  warning: "warn",
  info: "info",
  debug: "debug",
};

/** graphile-worker's own logging, routed into the service's pino logger. */
export function graphileLogger(logger: Logger): GraphileLogger {
  const log = logger.child({ component: "worker" });
  return new GraphileLogger((scope) => (level, message, meta) => {
    log[levels[level]]({ ...scope, ...meta }, message);
  });
}
