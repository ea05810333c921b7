import type { ErrorRequestHandler, RequestHandler } from "express";
import { ZodError } from "zod";
import { pgErrorCode } from "../db/client.js";
import { AppError } from "../errors.js";
import type { Logger } from "../logger.js";

interface BodyParserError extends Error {
  type?: string;
  status?: number;
}

/** Every failure as `{ error: { code, message, requestId } }`, the status from the code table. */
function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (err instanceof ZodError) {
    const issues = err.issues.map((i) => ({ path: i.path.join("."), message: i.message }));
    const first = issues[0];
    // Messages are sentences: one full stop, whether or not the schema's own message has one.
    const message = first
      ? `Invalid request: ${first.path ? `${first.path}: ` : ""}${first.message.replace(/[.!?]+$/, "")}.`
      : "Invalid request.";
    return new AppError("invalid_request", message, { issues });
  }
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

export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const error = toAppError(err);
    if (error.status >= 500) {
      // The cause goes to the log only; a 5xx response never carries internals.
      (req.log ?? logger).error({ err: error.cause ?? err }, "request failed");
    }
    if (res.headersSent) return;
    res.set(error.headers);
    res.status(error.status).json({
      error: { code: error.code, message: error.message, requestId: req.id, ...error.details },
    });
  };
}

export const routeNotFound: RequestHandler = (req) => {
  throw new AppError("not_found", `No route for ${req.method} ${req.path}.`);
};
