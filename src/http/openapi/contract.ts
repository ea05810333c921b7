import type { z } from "zod";
import type { ErrorCode } from "../../errors.js";

/**
 * What one HTTP route promises, written once beside the route's own zod schemas (each domain's
 * `contract.ts`) and turned into the OpenAPI document by `document.ts`. Adding a route to the
 * document is adding one `RouteContract` to its domain's list.
 */

/** The credentials a route accepts; any one of them will do. */
export type Credential =
  /** `Authorization: Bearer sk_test_…|sk_live_…`. */
  | "apiKey"
  /** `Authorization: Bearer sess_…`, from signing in with a wallet. */
  | "session"
  /** `Authorization: Bearer gat_…`, which reads one pay-per-call generation. */
  | "generationToken"
  /** No Authorization: an x402 payment (PAYMENT-SIGNATURE) pays for the call. */
  | "x402"
  /** A signed URL (`expires` and `signature` in the query) opens a stored file without a key. */
  | "signedUrl"
  /** `Authorization: Bearer <METRICS_TOKEN>`, on /metrics when the deployment sets one. */
  | "metricsToken"
  /** Nothing, when the deployment does not ask for the credentials listed beside it. */
  | "unlessConfigured";

/** The rate-limit buckets of issue #9; a route in one can answer 429 rate_limited. */
export type RateLimitBucket = "generate" | "batch" | "poll";

export type HttpMethod = "get" | "post" | "put" | "patch" | "delete";

export interface ResponseContract {
  description: string;
  /** The body's schema; absent for a response without a body (204). */
  schema?: z.ZodType;
  /** application/json unless said otherwise (a stored file's types, an event stream, HTML). */
  contentTypes?: readonly string[];
  example?: unknown;
  /** Response headers beyond X-Request-Id, which every response carries. */
  headers?: Record<string, { description: string; required?: boolean }>;
}

export interface RouteContract {
  method: HttpMethod;
  /** The path as express registers it (`/v1/api-keys/:id`); the document writes `{id}`. */
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  tag: string;
  /**
   * The credentials accepted, any one of them; a list inside is several sent together (an API
   * key and a payment). Empty for a public route.
   */
  auth: Array<Credential | Credential[]>;
  params?: z.ZodObject;
  query?: z.ZodObject;
  body?: { schema: z.ZodType; contentType?: string; example?: unknown };
  /**
   * Takes an Idempotency-Key header (and can answer its 409 and 422). `"required"`: refuses to
   * run without one (400 idempotency_key_required), and a replay returns what the first request
   * created as it stands now.
   */
  idempotent?: boolean | "required";
  rateLimit?: RateLimitBucket;
  /** The success answers, by status. */
  responses: Partial<Record<number, ResponseContract>>;
  /**
   * The route's own refusals. Those of its credentials, body, Idempotency-Key and rate limit,
   * and those every route can give, are added by the document from the fields above.
   */
  errors: ErrorCode[];
}

/** Every credential a route's `auth` names, alone or together with others. */
export const credentialsOf = (route: RouteContract): Credential[] => route.auth.flat();

/**
 * A route's own object schema with descriptions for some of its fields, for the document:
 * the same fields and checks, described where the route file has no words for them.
 */
export function describeFields<Schema extends z.ZodObject>(
  schema: Schema,
  descriptions: Partial<Record<keyof Schema["shape"] & string, string>>,
): Schema {
  const described: Record<string, z.ZodType> = {};
  for (const [field, text] of Object.entries(descriptions)) {
    const fieldSchema = schema.shape[field];
    if (!fieldSchema || text === undefined) throw new Error(`no field ${field} to describe`);
    described[field] = fieldSchema.describe(text);
  }
  // The same fields with the same types, only described: the schema's own type still holds.
  return schema.extend(described) as unknown as Schema;
}

/**
 * Identity, for inference: `route({...})` is checked against RouteContract where it is written,
 * and keeps its own schemas' types, which `mount` gives the route's handler.
 */
export const route = <const C extends RouteContract>(contract: C): C => contract;

/** A stored file's download served from the object store (STORAGE_DOWNLOADS=presigned). */
export const presignedRedirect: ResponseContract = {
  description:
    "With object storage and STORAGE_DOWNLOADS=presigned: a redirect to a presigned URL of the object, valid STORAGE_PRESIGNED_TTL_SECONDS, which serves the same bytes and type.",
  headers: { Location: { description: "The presigned object URL.", required: true } },
};
