import type { Request, RequestHandler, Response, Router } from "express";
import type { z } from "zod";
import type { AppContext } from "../context.js";
import type { Caller } from "../domains/accounts/caller.js";
import { AppError, notFound } from "../errors.js";
import { authenticate, authenticateUnlessPaying } from "./auth.js";
import { idempotent, requiredIdempotencyKey } from "./idempotency.js";
import { type Credential, credentialsOf, type RouteContract } from "./openapi/contract.js";
import { rateLimit } from "./rate-limit.js";
import { type RequestContext, requestContextOf } from "./request-context.js";

/**
 * The one way a route is added to the HTTP app: from its contract, the same object the OpenAPI
 * document is built from. The contract's `auth`, `rateLimit` and `idempotent` become the route's
 * middleware, its schemas parse the request, and the handler gets typed input and the caller,
 * so what the document promises and what the route does cannot drift apart.
 */

type Output<S> = S extends z.ZodType ? z.output<S> : undefined;
type Flat<T> = T extends readonly (infer U)[] ? U : T;
type CredentialOf<C extends RouteContract> = Flat<C["auth"][number]>;
/** The credentials mount itself checks; the others (x402, a signed URL) may leave no caller. */
type Authenticated = "apiKey" | "session" | "generationToken";

export type CallerOf<C extends RouteContract> = [Extract<CredentialOf<C>, Authenticated>] extends [
  never,
]
  ? undefined
  : [Exclude<CredentialOf<C>, Authenticated>] extends [never]
    ? Caller
    : Caller | undefined;

/** An Idempotency-Key with the hash of the parsed body, for routes that require one. */
export interface RequiredIdempotency {
  key: string;
  hash: string;
}

export interface RouteInput<C extends RouteContract> {
  /** The application context with this request's caller and its request-bound logger. */
  ctx: RequestContext;
  params: Output<C["params"]>;
  query: Output<C["query"]>;
  body: C["body"] extends { schema: infer S } ? Output<S> : undefined;
  caller: CallerOf<C>;
  /** Present where the contract says `idempotent: "required"`. */
  idempotency: C["idempotent"] extends "required" ? RequiredIdempotency : undefined;
  /** The escape hatch, for what a JSON reply cannot say (streams, files, x402 headers). */
  req: Request;
  res: Response;
}

/**
 * A value as the handler may hand it to JSON: a Date is written as its ISO string, and a
 * string field is any string (services read enum columns as text; the schema's enum is what
 * the document promises, the field names, nullability and number-versus-string are checked).
 */
type Wire<T> = T extends string
  ? string | Date
  : T extends readonly (infer U)[]
    ? readonly Wire<U>[]
    : T extends object
      ? { [K in keyof T]: Wire<T[K]> }
      : T;

/**
 * A body whose type TypeScript cannot check against the contract: a view carrying a jsonb
 * column the service types as a plain record (a result's `routing`). Use only for those; the
 * contract's schema still says what the body is.
 */
export const uncheckedBody = (body: unknown): never => body as never;

type Responses<C extends RouteContract> = C["responses"];

/** One of the contract's success answers, its body typed from that status's schema. */
export type Reply<C extends RouteContract> = {
  [S in keyof Responses<C> & number]: {
    status: S;
    body: NonNullable<Responses<C>[S]> extends { schema: infer B } ? Wire<Output<B>> : undefined;
    headers?: Record<string, string>;
  };
}[keyof Responses<C> & number];

/**
 * Answers with a Reply, or with nothing when it has answered through `res` itself (a stream, a
 * file, an x402 402).
 */
export type RouteHandler<C extends RouteContract> = (
  input: RouteInput<C>,
) => Promise<Reply<C> | undefined>;

export interface MountOptions {
  /**
   * The thing a path id names ("Pass"). An id that cannot name anything (`/v1/passes/banana`)
   * is then answered as an id that names nothing is, 404 for that thing, not a 400 about its
   * format: a client asks for a resource, and either it is there or it is not. Without it, a
   * bad path is a 400 like a bad query.
   */
  notFound?: string;
  /** Top-level answer fields an Idempotency-Key replay never repeats (see `idempotent`). */
  secret?: readonly string[];
  /** The body parsed when the request has none (a route whose every field is optional). */
  emptyBody?: unknown;
  /**
   * false: the handler reads `req.body` itself, unparsed (the MCP SDK parses its JSON-RPC and
   * answers its own refusals); the contract's body schema only documents it.
   */
  parseBody?: false;
  /** Reads a body express.json does not (multipart), once the caller is authenticated. */
  readBody?: RequestHandler;
}

const MOUNTED = Symbol("polyforge.mountedContracts");

type MountedHandler = RequestHandler & { [MOUNTED]?: readonly RouteContract[] };

/**
 * The contracts a route's final handler was mounted from (one, or those a method refusal
 * answers for); empty for a route added without mount.
 */
export const mountedContracts = (handler: unknown): readonly RouteContract[] =>
  (typeof handler === "function" && (handler as MountedHandler)[MOUNTED]) || [];

/** The authentication the contract's credentials ask for, if mount does it at all. */
function authenticationOf(ctx: AppContext, accepted: Credential[]): RequestHandler | undefined {
  if (!accepted.some((c) => c === "apiKey" || c === "session" || c === "generationToken")) {
    return undefined;
  }
  if (accepted.includes("x402")) return authenticateUnlessPaying(ctx);
  return authenticate(ctx, {
    sessions: accepted.includes("session"),
    generationTokens: accepted.includes("generationToken"),
  });
}

/** A request opened by a signed URL: it names no caller, and its handler checks the signature. */
const opensWithSignature = (req: Request) => req.query.signature !== undefined;

// The handler is its own type parameter, checked against RouteHandler<C> once C is known from
// the contract: inferred together, TypeScript would widen the reply's `status: 201` to number.
export type Mount = <C extends RouteContract, H extends RouteHandler<C> = RouteHandler<C>>(
  contract: C,
  handler: H,
  options?: MountOptions,
) => void;

/** `mount(contract, handler)` for the routes of one router. */
export function mountOn(router: Router, ctx: AppContext): Mount {
  return (contract, handler, options = {}) => {
    const accepted = credentialsOf(contract);
    const signedUrl = accepted.includes("signedUrl");
    const chain: RequestHandler[] = [];
    const parsed = new WeakMap<Request, { params: unknown; query: unknown }>();
    const parseLocation = (req: Request) => {
      let params: unknown;
      if (contract.params) {
        if (options.notFound === undefined) params = contract.params.parse(req.params);
        else {
          const result = contract.params.safeParse(req.params);
          if (!result.success) throw notFound(options.notFound);
          params = result.data;
        }
      }
      const query = contract.query?.parse(req.query);
      return { params, query };
    };
    // A signed URL's signature is checked against the parsed input, so a route that takes one
    // parses before it authenticates: a bad query is a 400 whoever asks.
    if (signedUrl) {
      chain.push((req, _res, next) => {
        parsed.set(req, parseLocation(req));
        next();
      });
    }
    const skipIfSigned = (step: RequestHandler): RequestHandler =>
      signedUrl
        ? (req, res, next) => (opensWithSignature(req) ? next() : step(req, res, next))
        : step;
    const authentication = authenticationOf(ctx, accepted);
    if (authentication) chain.push(skipIfSigned(authentication));
    if (contract.rateLimit) chain.push(skipIfSigned(rateLimit(ctx, contract.rateLimit)));
    if (contract.idempotent === true) chain.push(idempotent(ctx, { secret: options.secret ?? [] }));
    if (options.readBody) chain.push(options.readBody);

    const run: MountedHandler = async (req, res) => {
      const { params, query } = parsed.get(req) ?? parseLocation(req);
      const body =
        options.parseBody === false
          ? undefined
          : contract.body?.schema.parse(
              req.body === undefined && options.emptyBody !== undefined
                ? options.emptyBody
                : req.body,
            );
      const idempotency =
        contract.idempotent === "required" ? requiredIdempotencyKey(req, body) : undefined;
      const input = {
        ctx: requestContextOf(ctx, req),
        params,
        query,
        body,
        caller: req.caller,
        idempotency,
        req,
        res,
      };
      const reply = await (handler as RouteHandler<typeof contract>)(
        input as RouteInput<typeof contract>,
      );
      if (!reply) return;
      res.status(reply.status);
      if (reply.headers) res.set(reply.headers);
      if (reply.body === undefined) res.end();
      else res.json(reply.body);
    };
    run[MOUNTED] = [contract];
    router[contract.method](contract.path, ...chain, run);
  };
}

/**
 * Any method on a path other than the one it serves is a 405 naming the allowed one; the
 * refusal answers for the contracts that document it (MCP's GET and DELETE), so the route walk
 * knows it is declared.
 */
export function refuseOtherMethods(
  router: Router,
  refusals: readonly RouteContract[],
  allow: string,
  message: string,
) {
  const path = refusals[0]?.path;
  if (path === undefined || refusals.some((r) => r.path !== path)) {
    throw new Error("refusals are of one path");
  }
  const refuse: MountedHandler = () => {
    throw new AppError("method_not_allowed", message, undefined, { headers: { allow } });
  };
  refuse[MOUNTED] = refusals;
  router.all(path, refuse);
}
