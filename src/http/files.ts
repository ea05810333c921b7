import type { Response } from "express";
import type { AppContext } from "../context.js";
import type { NetworkScope } from "../domains/accounts/caller.js";
import { enforceRateLimit } from "../domains/ratelimits/service.js";
import type { Download } from "../domains/storage/downloads.js";
import { AppError } from "../errors.js";
import { signatureQuery, verifyResource } from "../lib/signed-urls.js";
import { callerOf, keyScopeOf } from "./auth.js";
import type { Mount, RouteInput } from "./mount.js";
import type { RouteContract } from "./openapi/contract.js";
import { rateLimitSubjectOf, setRateLimitHeaders } from "./rate-limit.js";

/** The bytes of a stored file, or where to fetch them (a presigned object URL: 302). */
export type StoredFile = Download;

/**
 * A GET route for a stored file (an output, an upload) that opens two ways: with a signed URL
 * (`expires` and `signature` naming exactly this file), or with the owner's API key. A bad or
 * expired signature is a 404, like a file that is not there. Its contract accepts `signedUrl`,
 * so mount parses its input first and leaves authentication and the rate limit to a request
 * without a signature.
 */
export function storedFileRoute<C extends RouteContract, P>(
  ctx: AppContext,
  mount: Mount,
  contract: C,
  file: {
    select(input: RouteInput<C>): P;
    resource(params: P): string;
    read(params: P, owner: NetworkScope | "signed"): Promise<StoredFile>;
    what: string;
  },
): void {
  mount(contract, async (input: RouteInput<C>) => {
    const { req, res } = input;
    const params = file.select(input);
    if (req.query.signature !== undefined) {
      // A download read: the "poll" bucket, per client address (a signed URL names nobody).
      setRateLimitHeaders(res, await enforceRateLimit(ctx, rateLimitSubjectOf(req), "poll"));
      const signed = signatureQuery.safeParse(req.query);
      if (
        !signed.success ||
        !verifyResource(ctx.config, file.resource(params), ctx.clock(), signed.data)
      )
        throw new AppError("not_found", `${file.what} not found, or the link has expired.`);
      send(res, await file.read(params, "signed"));
      return undefined;
    }
    send(res, await file.read(params, keyScopeOf(callerOf(req))));
    return undefined;
  });
}

function send(res: Response, file: StoredFile) {
  if ("location" in file) {
    // A presigned URL is a credential of its own: not cached, and never logged (logger.ts).
    res.set("cache-control", "no-store").redirect(302, file.location);
    return;
  }
  res
    .set("content-type", file.contentType)
    // The type was taken from the bytes when they were stored; browsers must not guess another.
    .set("x-content-type-options", "nosniff")
    .set("cache-control", "private, max-age=86400")
    .send(file.bytes);
}
