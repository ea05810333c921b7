import type { Request, RequestHandler } from "express";
import type { ServiceContext } from "../context.js";
import type { Caller } from "../domains/accounts/caller.js";
import { authenticateSession, isSessionToken } from "../domains/accounts/signin.js";
import { authenticateApiKey } from "../domains/keys/service.js";
import { AppError } from "../errors.js";
import type { Network } from "../lib/network.js";

declare module "express-serve-static-core" {
  interface Request {
    caller?: Caller;
  }
}

const BEARER = /^Bearer[ \t]+(\S*)[ \t]*$/i;

/**
 * `Authorization: Bearer <token>`. API keys work everywhere; wallet session tokens only where
 * a route allows them (account and key management). The caller bounds what the request sees.
 */
export function authenticate(
  ctx: ServiceContext,
  options: { sessions: boolean } = { sessions: false },
): RequestHandler {
  return async (req, _res, next) => {
    const header = req.headers.authorization;
    if (header === undefined || header.trim() === "") {
      throw new AppError(
        "missing_api_key",
        "Missing API key: send it as `Authorization: Bearer sk_test_…` (or sk_live_…).",
      );
    }
    const token = BEARER.exec(header)?.[1];
    if (!token) {
      throw new AppError(
        "invalid_api_key",
        "Malformed Authorization header: expected `Bearer <API key>`.",
      );
    }
    if (isSessionToken(token)) {
      if (!options.sessions) {
        throw new AppError(
          "invalid_api_key",
          "This endpoint needs an API key; a sign-in session can only manage the account's keys.",
        );
      }
      req.caller = await authenticateSession(ctx, token);
    } else {
      req.caller = await authenticateApiKey(ctx, token);
    }
    req.log?.setBindings({ accountId: req.caller.accountId });
    next();
  };
}

export function callerOf(req: Request): Caller {
  if (!req.caller) throw new Error("route is missing the authenticate middleware");
  return req.caller;
}

/** The caller of a route mounted with API-key authentication: its account and network. */
export function keyScopeOf(req: Request): { accountId: string; network: Network } {
  const caller = callerOf(req);
  if (caller.kind !== "api_key") throw new Error("route must authenticate with API keys only");
  return { accountId: caller.accountId, network: caller.network };
}
