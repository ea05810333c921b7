import type { Request, RequestHandler } from "express";
import type { ServiceContext } from "../context.js";
import {
  claimIdempotencyKey,
  completeIdempotencyKey,
  releaseIdempotencyKey,
  requestHash,
} from "../domains/idempotency/service.js";
import { AppError } from "../errors.js";
import { callerOf } from "./auth.js";

const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

/**
 * `Idempotency-Key` on a POST that creates something. Per account and network, kept 24 hours:
 * the same key and body replay the first successful response; the same key with another body
 * is 422 idempotency_key_reused; while the first is still running, 409. A failed first attempt
 * frees the key, so the client can retry it. (Routes that charge also store the key with what
 * they create, in the same transaction, so even a crash here cannot make a second charge.)
 * Fields a route marks secret are never stored, so a replay answers without them.
 */
/** The request's Idempotency-Key with the hash of what it asks, for services that store it. */
export function idempotencyOf(req: Request): { key: string; hash: string } | undefined {
  const key = req.get("idempotency-key");
  return key === undefined ? undefined : { key, hash: requestHash(req.method, req.path, req.body) };
}

/**
 * For routes that refuse to run without one (payouts): the request's Idempotency-Key, checked
 * like everywhere else. The hash is of `input`, the parsed body, so equivalent bodies match.
 */
export function requiredIdempotencyKey(
  req: Request,
  input: unknown,
): { key: string; hash: string } {
  const key = req.get("idempotency-key");
  if (key === undefined) {
    throw new AppError(
      "idempotency_key_required",
      "This request needs an Idempotency-Key header (1–255 visible ASCII characters): a retry with the same key can never pay twice.",
    );
  }
  if (!KEY_PATTERN.test(key)) {
    throw new AppError(
      "invalid_request",
      "Idempotency-Key must be 1–255 visible ASCII characters.",
    );
  }
  return { key, hash: requestHash(req.method, req.path, input) };
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === "object" && !Array.isArray(value);

/**
 * A response as the idempotency layer keeps it: without the fields named `secret`. A secret
 * is shown once and never stored, so a replay cannot show it again, revoked or not.
 */
function storableResponse(body: unknown, secret: readonly string[]): unknown {
  if (secret.length === 0 || !isRecord(body)) return body;
  const stored = { ...body };
  for (const field of secret) delete stored[field];
  return stored;
}

/** The header a replay carries naming the fields of the first answer it does not repeat. */
export const WITHHELD_HEADER = "Idempotent-Withheld";

export function idempotent(
  ctx: ServiceContext,
  options: {
    /**
     * Top-level fields of the answer never stored (an API key's secret): a replay answers
     * without them, naming them in `Idempotent-Withheld`.
     */
    secret?: readonly string[];
  } = {},
): RequestHandler {
  const secret = options.secret ?? [];
  return async (req, res, next) => {
    const key = req.get("idempotency-key");
    // A call paid with x402 is made idempotent by its authorization's nonce instead.
    if (key === undefined || !req.caller) return next();
    if (!KEY_PATTERN.test(key)) {
      throw new AppError(
        "invalid_request",
        "Idempotency-Key must be 1–255 visible ASCII characters.",
      );
    }
    const caller = callerOf(req);
    const owner = `${caller.accountId}:${caller.kind === "api_key" ? caller.network : "session"}`;
    const claim = { owner, key, hash: requestHash(req.method, req.path, req.body) };
    const first = await claimIdempotencyKey(ctx, claim);
    if (first !== "claimed") {
      res.status(first.statusCode).set("Idempotent-Replayed", "true");
      const response = first.response;
      const withheld = isRecord(response) ? secret.filter((field) => !(field in response)) : [];
      if (withheld.length) res.set(WITHHELD_HEADER, withheld.join(", "));
      res.json(first.response);
      return;
    }

    // Keep the first successful answer; forget a failed one so a retry can run again.
    const send = res.json.bind(res);
    res.json = (body: unknown) => {
      const stored =
        res.statusCode < 300
          ? completeIdempotencyKey(ctx, claim, {
              statusCode: res.statusCode,
              response: storableResponse(body, secret),
            })
          : releaseIdempotencyKey(ctx, claim);
      stored.then(
        () => send(body),
        (err: unknown) => {
          ctx.logger.error({ err }, "could not record an idempotent response");
          send(body);
        },
      );
      return res;
    };
    next();
  };
}
