import type { Request, RequestHandler } from "express";
import type { AppContext } from "../context.js";
import type { Caller, NetworkScope } from "../domains/accounts/caller.js";
import { authenticateSession, isSessionToken } from "../domains/accounts/signin.js";
import { authenticateAccessToken, isAccessToken } from "../domains/generations/access-tokens.js";
import { authenticateApiKey } from "../domains/keys/service.js";
import { AppError } from "../errors.js";

declare module "express-serve-static-core" {
  interface Request {
    caller?: Caller;
  }
}

const BEARER = /^Bearer[ \t]+(\S*)[ \t]*$/i;

/**
 * A request with no Authorization (or a blank one): on routes an agent may pay per call, it
 * pays with x402 instead; elsewhere it is 401 missing_api_key.
 */
export const sendsNoAuthorization = (req: Request) => !req.headers.authorization?.trim();

/**
 * `Authorization: Bearer <token>`. API keys work everywhere; wallet session tokens only where
 * a route allows them (account and key management). The caller bounds what the request sees.
 */
export function authenticate(
  ctx: AppContext,
  options: { sessions?: boolean; generationTokens?: boolean } = {},
): RequestHandler {
  return async (req, _res, next) => {
    const header = req.headers.authorization;
    if (header === undefined || sendsNoAuthorization(req)) {
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
    if (isAccessToken(token)) {
      if (!options.generationTokens) {
        throw new AppError(
          "invalid_api_key",
          "A generation access token only reads its generation's status; this endpoint needs an API key.",
        );
      }
      req.caller = { kind: "generation_token", ...(await authenticateAccessToken(ctx, token)) };
    } else if (isSessionToken(token)) {
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
export function keyScopeOf(caller: Caller): NetworkScope {
  if (caller.kind === "session") throw new Error("route must not accept sign-in sessions");
  // The acting key, when one is: the holds it places count against its spend limits.
  return caller.kind === "api_key"
    ? { accountId: caller.accountId, network: caller.network, apiKeyId: caller.apiKeyId }
    : { accountId: caller.accountId, network: caller.network };
}

/** Of the generation ids asked for, those the caller may read (a token reads only its own). */
export function readableGenerationIds(caller: Caller, ids: string[]): string[] {
  return caller.kind === "generation_token" ? ids.filter((id) => id === caller.generationId) : ids;
}

/**
 * For routes an agent may pay per call: an API key when one is sent; otherwise no caller, and
 * the route takes an x402 payment instead.
 */
export function authenticateUnlessPaying(ctx: AppContext): RequestHandler {
  const auth = authenticate(ctx);
  // A deployment that takes no payments asks for a key, as every other route does.
  if (ctx.payments.networks().length === 0) return auth;
  return (req, res, next) => (sendsNoAuthorization(req) ? next() : auth(req, res, next));
}
