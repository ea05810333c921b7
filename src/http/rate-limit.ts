import type { Request, RequestHandler, Response } from "express";
import type { ServiceContext } from "../context.js";
import type { RateLimitBucket } from "../domains/ratelimits/limits.js";
import {
  enforceRateLimit,
  type RateLimitDecision,
  type RateLimitSubject,
  rateLimitHeaders,
  releaseRateLimit,
} from "../domains/ratelimits/service.js";

/**
 * Who a request counts against: the authenticated caller's account on its network, else the
 * client address (`req.ip`, which honours TRUST_PROXY).
 */
export function rateLimitSubjectOf(req: Request): RateLimitSubject {
  const caller = req.caller;
  if (caller && caller.kind !== "session") {
    return { kind: "account", accountId: caller.accountId, network: caller.network };
  }
  return { kind: "address", address: req.ip ?? req.socket.remoteAddress ?? "unknown" };
}

export function setRateLimitHeaders(res: Response, decision: RateLimitDecision | undefined) {
  if (decision) res.set(rateLimitHeaders(decision));
}

/**
 * In the buckets that start work (generate, batch) only a request that started some counts: one
 * answered with an error (a validation 400, a 402, a 429) or replayed from its Idempotency-Key
 * is given back once its answer is sent. Reads (poll) count whatever they answer.
 */
export function countOnlyWork(
  ctx: ServiceContext,
  res: Response,
  decision: RateLimitDecision | undefined,
) {
  if (!decision || decision.bucket === "poll") return;
  res.once("finish", () => {
    if (res.statusCode < 400 && res.get("Idempotent-Replayed") !== "true") return;
    releaseRateLimit(ctx, decision).catch((err: unknown) =>
      ctx.logger.warn({ err }, "could not give back a rate-limit count"),
    );
  });
}

/**
 * Limits a route's bucket, after authentication. A request with no caller here is paying with
 * x402: it is counted against its wallet once the payment is verified (the paid generation
 * path), not by address, so agents behind one address do not share a limit; the 402 that asks
 * for payment costs a quote and nothing else.
 */
export function rateLimit(ctx: ServiceContext, bucket: RateLimitBucket): RequestHandler {
  return async (req, res, next) => {
    if (!req.caller) return next();
    const decision = await enforceRateLimit(ctx, rateLimitSubjectOf(req), bucket);
    setRateLimitHeaders(res, decision);
    countOnlyWork(ctx, res, decision);
    next();
  };
}
