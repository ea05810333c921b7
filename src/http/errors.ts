import type { ErrorRequestHandler, RequestHandler } from "express";
import { ZodError } from "zod";
import { isDatabaseUnavailable, pgErrorCode } from "../db/client.js";
import { AppError, appErrorFromZod } from "../errors.js";
import type { Logger } from "../logger.js";

interface BodyParserError extends Error {
  type?: string;
  status?: number;
}

/** Every failure as `{ error: { code, message, requestId } }`, the status from the code table. */
function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (err instanceof ZodError) return appErrorFromZod(err);
  // Input PostgreSQL cannot store (a NUL byte, a malformed value) is the caller's mistake.
  const code = pgErrorCode(err);
  if (
    code === "22021" ||
    code === "22P05" ||
    code === "22P02" ||
    code === "22001" ||
    code === "22007" ||
    code === "22008"
  ) {
    return new AppError(
      "invalid_request",
      "The request contains a value that cannot be stored (for example a NUL character).",
    );
  }
  if (isDatabaseUnavailable(err)) return databaseUnavailable(err);
  const parserError = err as BodyParserError;
  if (parserError?.type === "entity.parse.failed") {
    return new AppError("invalid_json", "The request body is not valid JSON.");
  }
  if (parserError?.type === "entity.too.large") {
    return new AppError("payload_too_large", "The request body is too large.");
  }
  if (
    typeof parserError?.status === "number" &&
    parserError.status >= 400 &&
    parserError.status < 500
  ) {
    return new AppError("invalid_request", parserError.message);
  }
  return new AppError(
    "internal_error",
    "Something went wrong on our side; it has been logged.",
    undefined,
    {
      cause: err,
    },
  );
}

/** How long a client is told to wait when the database is out: a restart takes seconds. */
export const DATABASE_RETRY_AFTER_SECONDS = 5;

/** An outage is not a bug: 503 with Retry-After, so clients retry and alerts can tell them apart. */
export function databaseUnavailable(cause: unknown): AppError {
  return new AppError(
    "service_unavailable",
    "The service is briefly unavailable: its database cannot be reached. Try again in a few seconds.",
    undefined,
    { cause, headers: { "Retry-After": String(DATABASE_RETRY_AFTER_SECONDS) } },
  );
}

export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const error = toAppError(err);
    if (error.code === "service_unavailable") {
      // An outage, not a bug: one line per request, without the stack.
      (req.log ?? logger).warn({ reason: String(error.cause) }, "database unavailable");
    } else if (error.status >= 500) {
      // The cause goes to the log only; a 5xx response never carries internals.
      (req.log ?? logger).error({ err: error.cause ?? err }, "request failed");
    }
    // A streamed answer already under way cannot take an error status: end it, never leave it open.
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.set(error.headers);
    res.status(error.status).json({
      error: { code: error.code, message: error.message, requestId: req.id, ...error.details },
    });
  };
}

export const routeNotFound: RequestHandler = (req) => {
  throw new AppError("not_found", `No route for ${req.method} ${req.path}.`);
};
