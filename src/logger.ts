import { type DestinationStream, type Logger, pino } from "pino";
import type { Config } from "./config.js";

export type { Logger };

/**
 * Credentials never reach a log line: request headers that carry keys, sessions or payments
 * are censored wherever pino-http serializes them, and so are fields services log by name.
 */
export const redactedPaths = [
  "req.headers.authorization",
  "req.headers.cookie",
  'req.headers["payment-signature"]',
  'req.headers["x-payment"]',
  'res.headers["set-cookie"]',
  "*.apiKey",
  "*.sessionToken",
  "*.secret",
];

export function createLogger(
  config: Pick<Config, "logLevel">,
  destination?: DestinationStream,
): Logger {
  const options = {
    level: config.logLevel,
    base: { service: "polyforge" },
    redact: { paths: redactedPaths, censor: "[redacted]" },
  };
  return destination ? pino(options, destination) : pino(options);
}
