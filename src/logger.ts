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
  "req.query.signature",
  'res.headers["set-cookie"]',
  // A presigned object URL (STORAGE_DOWNLOADS=presigned) is a bearer credential.
  "res.headers.location",
  "*.apiKey",
  "*.sessionToken",
  "*.secret",
  "*.secretAccessKey",
];

/**
 * A signed URL's `signature` is a bearer credential for a day: censored in every line, whether
 * it comes in the request url pino-http logs or in a message a service or upstream wrote. Done
 * on the serialized line, so no field, however it is named, can carry one out.
 */
const SIGNATURE_PARAMETER = /(signature(?:=|%3D))[^&"\s\\#%]+/gi;
/**
 * A presigned object URL's other secrets (X-Amz-Signature is caught above): the access key it
 * names and a session token, whose values are percent-encoded, so they run to the next `&`.
 */
const AMZ_PARAMETER =
  /((?:x-amz-credential|x-amz-security-token)(?:=|%3D))(?:(?!%26)[^&"\s\\#])+/gi;
export const redactSignedUrls = (line: string) =>
  line.replace(SIGNATURE_PARAMETER, "$1[redacted]").replace(AMZ_PARAMETER, "$1[redacted]");

export function createLogger(
  config: Pick<Config, "logLevel">,
  destination?: DestinationStream,
): Logger {
  const options = {
    level: config.logLevel,
    base: { service: "polyforge" },
    redact: { paths: redactedPaths, censor: "[redacted]" },
    hooks: { streamWrite: redactSignedUrls },
  };
  // Written asynchronously: a log line must not block the event loop that serves requests.
  // pino flushes what is pending when the process exits.
  return pino(options, destination ?? pino.destination({ dest: 1, sync: false }));
}
