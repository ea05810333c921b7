import { and, eq, inArray } from "drizzle-orm";
import type { ServiceContext } from "../../context.js";
import { AppError, notFound } from "../../errors.js";
import { newId } from "../../lib/ids.js";
import { checkUrl } from "../../lib/safe-fetch.js";
import { checkImage, fetchUserImage } from "../../lib/safe-image.js";
import { signResource } from "../../lib/signed-urls.js";
import type { NetworkScope } from "../accounts/caller.js";
import { type Download, storedDownload } from "../storage/downloads.js";
import { extensionOf } from "../storage/local.js";
import { uploads } from "./schema.js";

const UPLOAD_ID = /^img_[0-9a-z]{26}$/;
export const isUploadId = (id: string) => UPLOAD_ID.test(id);

export type Upload = typeof uploads.$inferSelect;

export const uploadResource = (id: string) => `upload:${id}`;
export const uploadUrl = (ctx: Pick<ServiceContext, "config">, id: string) =>
  `${ctx.config.http.publicUrl}/v1/uploads/${id}`;

/** A URL anyone holding it can read until it expires: what upstreams are given. */
export function signedUploadUrl(
  ctx: Pick<ServiceContext, "config" | "clock">,
  id: string,
  ttlSeconds: number,
): string {
  return `${uploadUrl(ctx, id)}?${signResource(ctx.config, uploadResource(id), ctx.clock(), ttlSeconds)}`;
}

export function uploadView(ctx: Pick<ServiceContext, "config">, upload: Upload) {
  return {
    id: upload.id,
    url: uploadUrl(ctx, upload.id),
    contentType: upload.contentType,
    bytes: upload.sizeBytes,
    width: upload.width,
    height: upload.height,
    sourceUrl: upload.sourceUrl,
    createdAt: upload.createdAt,
  };
}

/** Checks an image by its bytes, stores it and records it as the caller's. */
export async function storeImage(
  ctx: ServiceContext,
  scope: NetworkScope,
  bytes: Buffer,
  sourceUrl?: string,
): Promise<Upload> {
  const image = await checkImage(bytes, { code: sourceUrl ? "unsafe_url" : "invalid_image" });
  const id = newId("img");
  const storageKey = `uploads/${id}.${extensionOf(image.contentType)}`;
  await ctx.storage.put(storageKey, bytes);
  const [row] = await ctx.db
    .insert(uploads)
    .values({
      id,
      accountId: scope.accountId,
      network: scope.network,
      storageKey,
      contentType: image.contentType,
      sizeBytes: bytes.length,
      width: image.width,
      height: image.height,
      sourceUrl: sourceUrl ?? null,
      createdAt: ctx.clock(),
    })
    .returning();
  return row as Upload;
}

/** An upload's download (its bytes, or a presigned URL of them): to its owner, or to anyone whose signature the route has checked. */
export async function readUpload(
  ctx: ServiceContext,
  owner: NetworkScope | "signed",
  id: string,
): Promise<Download> {
  const [row] = await ctx.db
    .select()
    .from(uploads)
    .where(
      owner === "signed"
        ? eq(uploads.id, id)
        : and(
            eq(uploads.id, id),
            eq(uploads.accountId, owner.accountId),
            eq(uploads.network, owner.network),
          ),
    );
  if (!row) throw notFound("Upload");
  return storedDownload(ctx, row.storageKey, row.contentType, () => notFound("Upload"));
}

/**
 * The caller's reference images as upload ids. Our own upload URLs must name the caller's
 * uploads; any other URL is fetched once through the SSRF guard, checked and re-hosted, so
 * upstreams only ever see our copies.
 */
export async function rehostReferenceImages(
  ctx: ServiceContext,
  scope: NetworkScope,
  urls: readonly string[],
): Promise<string[]> {
  if (urls.length === 0) return [];
  const own = await checkOwnUploads(ctx, scope, urls);
  return Promise.all(
    urls.map(async (url, i) => {
      const id = own[i];
      if (id !== undefined) return id;
      const image = await fetchUserImage(url, { allowHosts: ctx.config.ssrfAllowHosts });
      return (await storeImage(ctx, scope, image.bytes, url)).id;
    }),
  );
}

/**
 * What can be known of reference images without fetching them (saving a workflow, whose steps
 * fetch theirs when they run): our own upload URLs name the caller's uploads, and every other
 * URL passes the SSRF guard's address check.
 */
export async function checkReferenceImages(
  ctx: ServiceContext,
  scope: NetworkScope,
  urls: readonly string[],
): Promise<void> {
  const own = await checkOwnUploads(ctx, scope, urls);
  for (const [i, url] of urls.entries()) {
    if (own[i] !== undefined) continue;
    await checkUrl(url, { allowHosts: ctx.config.ssrfAllowHosts }).catch((err: unknown) => {
      throw err instanceof AppError
        ? new AppError(err.code, err.message, { ...err.details, field: "referenceImageUrls" })
        : err;
    });
  }
}

/** Per URL, the upload id when it is one of ours (refused unless the caller's), else undefined. */
async function checkOwnUploads(
  ctx: ServiceContext,
  scope: NetworkScope,
  urls: readonly string[],
): Promise<(string | undefined)[]> {
  const ownPrefix = `${ctx.config.http.publicUrl}/v1/uploads/`;
  const own = urls.map((url) =>
    url.startsWith(ownPrefix) ? url.slice(ownPrefix.length).split(/[?#]/)[0] : undefined,
  );
  const ownIds = own.filter((id): id is string => id !== undefined);
  const bad = ownIds.find((id) => !isUploadId(id));
  if (bad !== undefined) throw missingUpload(bad, "referenceImageUrls");
  await assertOwnUploads(ctx, scope, ownIds, "referenceImageUrls");
  return own;
}

/**
 * Refuses (invalid_reference_image on `field`, naming the first) any of `ids` that is not an
 * upload of the owner on its network.
 */
export async function assertOwnUploads(
  ctx: ServiceContext,
  owner: NetworkScope,
  ids: readonly string[],
  field: string,
): Promise<void> {
  if (ids.length === 0) return;
  const found = await ctx.db
    .select({ id: uploads.id })
    .from(uploads)
    .where(
      and(
        inArray(uploads.id, [...ids]),
        eq(uploads.accountId, owner.accountId),
        eq(uploads.network, owner.network),
      ),
    );
  const known = new Set(found.map((r) => r.id));
  const missing = ids.find((id) => !known.has(id));
  if (missing !== undefined) throw missingUpload(missing, field);
}

const missingUpload = (id: string, field: string) =>
  new AppError(
    "invalid_reference_image",
    `Upload ${id} does not exist on this account and network.`,
    { field },
  );
