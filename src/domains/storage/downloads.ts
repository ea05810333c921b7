import type { ServiceContext } from "../../context.js";

/** A stored file as a download answers it: its bytes, or where to fetch them (a presigned URL). */
export type Download = { bytes: Buffer; contentType: string } | { location: string };

/**
 * The download of a stored key: with STORAGE_DOWNLOADS=presigned (object storage), a fresh
 * presigned URL of the object, valid STORAGE_PRESIGNED_TTL_SECONDS; otherwise its bytes, read
 * through the API. `missing` is what to throw when no bytes are stored under the key.
 */
export async function storedDownload(
  ctx: Pick<ServiceContext, "config" | "storage">,
  key: string,
  contentType: string,
  missing: () => Error,
): Promise<Download> {
  const { downloads, presignedTtlSeconds } = ctx.config.storage;
  if (downloads === "presigned" && ctx.storage.presignedUrl) {
    const location = await ctx.storage.presignedUrl(key, {
      expiresInSeconds: presignedTtlSeconds,
      contentType,
    });
    return { location };
  }
  const bytes = await ctx.storage.get(key);
  if (!bytes) throw missing();
  return { bytes, contentType };
}
