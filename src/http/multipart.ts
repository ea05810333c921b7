import type { RequestHandler } from "express";
import multer from "multer";
import { AppError } from "../errors.js";

/**
 * Reads a multipart body with one file field (`file`; uploads also take `image`) held in memory
 * up to `maxBytes`, for the routes that take a file: a body too large is 413
 * payload_too_large, any other malformed one 400 invalid_request. `sent` names what the body
 * should carry ("the image"), `file` what is too large ("The image").
 */
export function singleFileBody(options: {
  maxBytes: number;
  sent: string;
  file: string;
}): RequestHandler {
  const parse = multer({
    storage: multer.memoryStorage(),
    limits: { fileSize: options.maxBytes, files: 1, fields: 10, parts: 12 },
  }).any();
  return (req, res, next) => {
    if (!req.is("multipart/form-data")) {
      throw new AppError(
        "invalid_request",
        `Send ${options.sent} as multipart/form-data with one file field named \`file\`.`,
      );
    }
    parse(req, res, (err: unknown) => {
      if (err instanceof multer.MulterError) {
        return next(
          err.code === "LIMIT_FILE_SIZE"
            ? new AppError(
                "payload_too_large",
                `${options.file} is larger than ${options.maxBytes} bytes.`,
              )
            : new AppError("invalid_request", `Invalid upload: ${err.message}.`),
        );
      }
      next(err ? new AppError("invalid_request", "The multipart body is malformed.") : undefined);
    });
  };
}
