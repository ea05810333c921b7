import { Router } from "express";
import type { AppContext } from "../../context.js";
import { AppError } from "../../errors.js";
import { keyScopeOf } from "../../http/auth.js";
import { storedFileRoute } from "../../http/files.js";
import { mountOn } from "../../http/mount.js";
import { singleFileBody } from "../../http/multipart.js";
import { IMAGE_LIMITS } from "../../lib/safe-image.js";
import { uploadContracts } from "./contract.js";
import { readUpload, storeImage, uploadResource, uploadView } from "./service.js";

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
    {
      parseBody: false,
      readBody: singleFileBody({
        maxBytes: IMAGE_LIMITS.maxBytes,
        sent: "the image",
        file: "The image",
      }),
    },
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
