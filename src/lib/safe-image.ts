import sharp from "sharp";
import { AppError } from "../errors.js";
import { type SafeFetchOptions, safeFetch } from "./safe-fetch.js";

export const IMAGE_LIMITS = {
  maxBytes: 10 * 1024 * 1024,
  maxPixels: 40_000_000,
  timeoutMs: 10_000,
};
const TYPES: Record<string, string> = { png: "image/png", jpeg: "image/jpeg", webp: "image/webp" };

/**
 * A user's image by URL, through the SSRF guard, checked by its bytes: PNG, JPEG or WebP, and
 * no more pixels than the cap (read from the header, before anything is decoded, so a
 * decompression bomb costs nothing). Re-hosted by the caller, so upstreams never fetch it.
 */
export async function fetchUserImage(
  url: string,
  options: Pick<SafeFetchOptions, "allowHosts" | "resolve"> & Partial<typeof IMAGE_LIMITS> = {},
): Promise<{ bytes: Buffer; contentType: string; width: number; height: number }> {
  const limits = { ...IMAGE_LIMITS, ...options };
  const res = await safeFetch(url, {
    ...options,
    maxBytes: limits.maxBytes,
    timeoutMs: limits.timeoutMs,
    followRedirects: true,
  });
  if (res.status !== 200)
    throw new AppError("unsafe_url", `Refused to use ${url}: it answered ${res.status}.`, {
      reason: "status",
    });
  return checkImage(res.body, { maxPixels: limits.maxPixels, code: "unsafe_url" });
}

/**
 * The image's real type (from its bytes, whatever its name or declared type says) and size,
 * refused when it is not PNG, JPEG or WebP or has more pixels than the cap.
 */
export async function checkImage(
  bytes: Buffer,
  options: { maxPixels?: number; code?: "unsafe_url" | "invalid_image" } = {},
) {
  const maxPixels = options.maxPixels ?? IMAGE_LIMITS.maxPixels;
  const code = options.code ?? "invalid_image";
  // sharp throws synchronously on some inputs (an empty buffer), asynchronously on others.
  const meta = await Promise.resolve()
    .then(() => sharp(bytes, { limitInputPixels: false }).metadata())
    .catch(() => undefined);
  const contentType = meta?.format && TYPES[meta.format];
  if (!meta || !contentType || !meta.width || !meta.height) {
    throw new AppError(code, "The file is not a PNG, JPEG or WebP image.", {
      reason: "type",
    });
  }
  if (meta.width * meta.height > maxPixels) {
    throw new AppError(
      code,
      `The image has ${meta.width}×${meta.height} pixels; the limit is ${maxPixels}.`,
      { reason: "pixels" },
    );
  }
  return { bytes, contentType, width: meta.width, height: meta.height };
}
