import { type RequestHandler, Router } from "express";
import multer from "multer";
import { z } from "zod";
import type { AppContext } from "../../context.js";
import { AppError } from "../../errors.js";
import { authenticate, keyScopeOf } from "../../http/auth.js";
import { storedFileRoute } from "../../http/files.js";
import { IMAGE_LIMITS } from "../../lib/safe-image.js";
import { isUploadId, readUpload, storeImage, uploadResource, uploadView } from "./service.js";

/** One file field, `file` (or `image`), held in memory up to the 10 MB cap. */
function singleImage(): RequestHandler {
  const parse = multer({
    storage: multer.memoryStorage(),
    limits: { fileSize: IMAGE_LIMITS.maxBytes, files: 1, fields: 10, parts: 12 },
  }).any();
  return (req, res, next) => {
    if (!req.is("multipart/form-data")) {
      throw new AppError(
        "invalid_request",
        "Send the image as multipart/form-data with one file field named `file`.",
      );
    }
    parse(req, res, (err: unknown) => {
      if (err instanceof multer.MulterError) {
        return next(
          err.code === "LIMIT_FILE_SIZE"
            ? new AppError(
                "payload_too_large",
                `The image is larger than ${IMAGE_LIMITS.maxBytes} bytes.`,
              )
            : new AppError("invalid_request", `Invalid upload: ${err.message}.`),
        );
      }
      next(err ? new AppError("invalid_request", "The multipart body is malformed.") : undefined);
    });
  };
}

export function uploadRoutes(ctx: AppContext): Router {
  const router = Router();
  const auth = authenticate(ctx);

  router.post("/v1/upload-image", auth, singleImage(), async (req, res) => {
    const files = (req.files ?? []) as Express.Multer.File[];
    const file = files.find((f) => f.fieldname === "file" || f.fieldname === "image");
    if (!file) {
      throw new AppError("invalid_request", "No file: send one file field named `file`.");
    }
    const upload = await storeImage(ctx, ctx.generations.storage, keyScopeOf(req), file.buffer);
    res.status(201).json(uploadView(ctx, upload));
  });

  // The owner with the API key, or anyone with a signed URL (what upstreams are given).
  storedFileRoute(ctx, router, "/v1/uploads/:id", {
    parse: (req) => uploadIdParam.parse(req.params).id,
    resource: uploadResource,
    read: (id, owner) => readUpload(ctx, ctx.generations.storage, owner, id),
    what: "Upload",
  });

  return router;
}
