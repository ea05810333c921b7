import type { Request } from "express";
import type { AppContext } from "../context.js";
import { type Caller, type Scope, scopeOf } from "../domains/accounts/caller.js";

/**
 * What a service called from one HTTP request receives: the application context with the
 * caller, its scope, and a logger bound to the request id (and, once authenticated, the
 * account). It is a ServiceContext, so any verb takes it as is and every line it logs names the
 * request.
 */
export interface RequestContext extends AppContext {
  /** The request's id (X-Request-Id), as the error body and every log line carry it. */
  requestId: string;
  /** Undefined on a public route, or for an x402 payer before its payment is verified. */
  caller: Caller | undefined;
  scope: Scope | undefined;
}

/** The one place a request context is built: after the request-id and auth middleware ran. */
export function requestContextOf(ctx: AppContext, req: Request): RequestContext {
  const requestId = String(req.id);
  return {
    ...ctx,
    requestId,
    // pino-http's child logger binds the request (its `req.id` on every line); auth adds the
    // account to it. Outside pino-http, the same shape by hand.
    logger: req.log ?? ctx.logger.child({ req: { id: requestId } }),
    caller: req.caller,
    scope: req.caller && scopeOf(req.caller),
  };
}
