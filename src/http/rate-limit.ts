import type { Request, RequestHandler, Response } from "express";
import type { ServiceContext } from "../context.js";
import type { RateLimitBucket } from "../domains/ratelimits/limits.js";
import {
  enforceRateLimit,
  type RateLimitDecision,
  type RateLimitSubject,
  rateLimitHeaders,
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
 * Limits a route's bucket, after authentication. A request with no caller here is paying with
 * x402: it is counted against its wallet once the payment is verified (the paid generation
 * path), not by address, so agents behind one address do not share a limit; the 402 that asks
 * for payment costs a quote and nothing else.
 */
export function rateLimit(ctx: ServiceContext, bucket: RateLimitBucket): RequestHandler {
  return async (req, res, next) => {
    if (!req.caller) return next();
    setRateLimitHeaders(res, await enforceRateLimit(ctx, rateLimitSubjectOf(req), bucket));
    next();
  };
}
