import { createHmac, timingSafeEqual } from "node:crypto";
import { z } from "zod";
import type { Config } from "../config.js";

/**
 * Public, expiring URLs for files that are otherwise the owner's only: generated outputs (so a
 * browser or OpenAI's SDK can open `data[].url` without the API key) and re-hosted reference
 * images (so an upstream can fetch them). The signature is an HMAC of what the URL names and
 * its expiry; expiries are rounded up to the hour, so one file's URL stays the same for an hour
 * and caches work.
 */

export const signatureQuery = z.object({
  expires: z.coerce.number().int().positive(),
  signature: z.string().regex(/^[\w-]{43}$/, "not a signature"),
});

const mac = (secret: string, resource: string, expires: number) =>
  createHmac("sha256", secret).update(`${resource}\n${expires}`).digest("base64url");

/** `expires` and `signature` query parameters granting access to `resource` for `ttlSeconds`. */
export function signResource(
  config: Pick<Config, "urlSigningSecret">,
  resource: string,
  now: Date,
  ttlSeconds: number,
): string {
  const expires = Math.ceil((now.getTime() / 1000 + ttlSeconds) / 3600) * 3600;
  return `expires=${expires}&signature=${mac(config.urlSigningSecret, resource, expires)}`;
}

export function verifyResource(
  config: Pick<Config, "urlSigningSecret">,
  resource: string,
  now: Date,
  given: z.infer<typeof signatureQuery>,
): boolean {
  if (given.expires * 1000 <= now.getTime()) return false;
  const expected = Buffer.from(mac(config.urlSigningSecret, resource, given.expires));
  const actual = Buffer.from(given.signature);
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}
