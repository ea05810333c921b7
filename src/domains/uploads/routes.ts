import { type RequestHandler, Router } from "express";
import multer from "multer";
import type { AppContext } from "../../context.js";
import { AppError } from "../../errors.js";
import { keyScopeOf } from "../../http/auth.js";
import { storedFileRoute } from "../../http/files.js";
import { mountOn } from "../../http/mount.js";
import { IMAGE_LIMITS } from "../../lib/safe-image.js";
import { uploadContracts } from "./contract.js";
import { readUpload, storeImage, uploadResource, uploadView } from "./service.js";

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
  const mount = mountOn(router, ctx);

  // The multipart body is read by multer, not by the contract's schema (which documents it).
  mount(
    uploadContracts.uploadImage,
    async ({ ctx, caller, req }) => {
      const files = (req.files ?? []) as Express.Multer.File[];
      const file = files.find((f) => f.fieldname === "file" || f.fieldname === "image");
      if (!file) {
        throw new AppError("invalid_request", "No file: send one file field named `file`.");
      }
      const upload = await storeImage(ctx, keyScopeOf(caller), file.buffer);
      return { status: 201, body: uploadView(ctx, upload) };
    },
    { parseBody: false, readBody: singleImage() },
  );

  // The owner with the API key, or anyone with a signed URL (what upstreams are given).
  storedFileRoute(ctx, mount, uploadContracts.getUpload, {
    select: ({ params }) => params.id,
    resource: uploadResource,
    read: (id, owner) => readUpload(ctx, owner, id),
    what: "Upload",
  });

  return router;
}
