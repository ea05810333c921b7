import { z } from "zod";
import { presignedRedirect, route } from "../../http/openapi/contract.js";
import { isUploadId } from "./service.js";

export const uploadIdParam = z.object({
  id: z.string().refine(isUploadId, "not an upload id"),
});

/** What the upload routes answer, and their entries in the OpenAPI document. */

export const imageContentTypes = ["image/png", "image/jpeg", "image/webp"] as const;

export const upload = z
  .object({
    id: z.string().describe("img_…"),
    url: z.string().describe("Use it in referenceImageUrls."),
    contentType: z.enum(imageContentTypes),
    bytes: z.number().int(),
    width: z.number().int(),
    height: z.number().int(),
    sourceUrl: z.string().nullable().describe("Where a re-hosted reference image came from."),
    createdAt: z.iso.datetime(),
  })
  .meta({ id: "Upload" });

/** The multipart form the route reads (multer): one file field, `file` (or `image`). */
export const uploadForm = z.object({
  file: z.file().describe("A PNG, JPEG or WebP image, at most 10 MB and 40 megapixels."),
});

export const uploadContracts = {
  uploadImage: route({
    method: "post",
    path: "/v1/upload-image",
    operationId: "uploadImage",
    summary: "Upload a reference image",
    description:
      "Told apart by its bytes (the file name and declared type are ignored). It belongs to the key's account and network.",
    tag: "Uploads",
    auth: ["apiKey"],
    body: { schema: uploadForm, contentType: "multipart/form-data" },
    responses: { 201: { description: "The stored image.", schema: upload } },
    errors: ["invalid_image"],
  }),
  getUpload: route({
    method: "get",
    path: "/v1/uploads/:id",
    operationId: "getUpload",
    summary: "An uploaded image",
    description: "Opens with a signed URL (what upstreams are given) or the owner's API key.",
    tag: "Uploads",
    auth: ["apiKey", "signedUrl"],
    params: uploadIdParam,
    rateLimit: "poll",
    responses: {
      200: {
        description: "The image.",
        schema: z.string().meta({ format: "binary" }),
        contentTypes: imageContentTypes,
      },
      302: presignedRedirect,
    },
    errors: ["not_found"],
  }),
};
