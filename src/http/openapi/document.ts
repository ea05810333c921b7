import { z } from "zod";
import type { ErrorCode } from "../../errors.js";
import {
  type Credential,
  credentialsOf,
  type ResponseContract,
  type RouteContract,
} from "./contract.js";
import {
  errorBodySchema,
  errorCodesOf,
  errorExample,
  errorExamples,
  errorsByStatus,
} from "./errors.js";

/**
 * The OpenAPI 3.1 document, built from the routes' contracts and their zod schemas with zod's
 * own JSON Schema output (draft 2020-12, the dialect OpenAPI 3.1 uses). Requests are described
 * as they are accepted (zod's input side: defaults make a field optional), responses as they
 * are sent. Schemas given an id with `.meta({ id })` become shared components.
 */

type Json = Record<string, unknown>;

export const OPENAPI_TITLE = "Polyforge API";
export const OPENAPI_VERSION = "0.1.0";

const SECURITY_SCHEMES = {
  apiKey: {
    type: "http",
    scheme: "bearer",
    bearerFormat: "sk_test_… | sk_live_…",
    description:
      "An API key: `sk_test_` spends test credits (Base Sepolia), `sk_live_` live ones (Base). A key acts only on its own network.",
  },
  session: {
    type: "http",
    scheme: "bearer",
    bearerFormat: "sess_…",
    description:
      "A wallet session token from POST /v1/auth/verify (Sign-In with Ethereum). Manages the account and its keys; nothing else.",
  },
  generationToken: {
    type: "http",
    scheme: "bearer",
    bearerFormat: "gat_…",
    description:
      "A generation access token, returned by a call paid with x402: reads that one generation (status, events, video job) and nothing else.",
  },
  metricsToken: {
    type: "http",
    scheme: "bearer",
    description:
      "METRICS_TOKEN, for GET /metrics when the deployment sets one (otherwise the endpoint is open).",
  },
  x402: {
    type: "apiKey",
    in: "header",
    name: "PAYMENT-SIGNATURE",
    description:
      "Pay per call with x402 (protocol v2, USDC, EIP-3009): send the request without Authorization, get 402 with a PAYMENT-REQUIRED header, then send it again with the signed payment in PAYMENT-SIGNATURE.",
  },
} as const;

const HEADERS = {
  RequestId: {
    description: "The request's id: the client's X-Request-Id when it is sane, else ours.",
    schema: { type: "string" },
  },
  PaymentRequired: {
    description:
      "On `payment_required`: the x402 PaymentRequired object (base64 JSON) naming the amount, asset, network and treasury to pay.",
    schema: { type: "string" },
  },
  PaymentResponse: {
    description: "On a call paid with x402: the settlement (base64 JSON), with its transaction.",
    schema: { type: "string" },
  },
  RetryAfter: {
    description: "Seconds to wait before trying again.",
    schema: { type: "integer", minimum: 0 },
  },
  RateLimitLimit: {
    description: "Requests allowed in the bucket per window.",
    schema: { type: "integer", minimum: 0 },
  },
  RateLimitRemaining: {
    description: "Requests left in the bucket in this window.",
    schema: { type: "integer", minimum: 0 },
  },
  RateLimitReset: {
    description: "Seconds until the window resets.",
    schema: { type: "integer", minimum: 0 },
  },
  RateLimitPolicy: {
    description: "The bucket's quota and window: `5;w=60` is 5 requests per 60 seconds.",
    schema: { type: "string" },
  },
  Allow: { description: "The methods the path accepts.", schema: { type: "string" } },
  IdempotentReplayed: {
    description:
      "`true` when this is the stored answer to an earlier request with the same Idempotency-Key.",
    schema: { type: "string", enum: ["true"] },
  },
} as const;

const headerRef = (name: keyof typeof HEADERS) => ({ $ref: `#/components/headers/${name}` });

const RATE_LIMIT_HEADERS = {
  "RateLimit-Limit": headerRef("RateLimitLimit"),
  "RateLimit-Remaining": headerRef("RateLimitRemaining"),
  "RateLimit-Reset": headerRef("RateLimitReset"),
  "RateLimit-Policy": headerRef("RateLimitPolicy"),
};

/** `:id` → `{id}`. */
export const openApiPath = (expressPath: string) =>
  expressPath.replace(/:([A-Za-z0-9_]+)/g, "{$1}");

/** Walks a JSON Schema, pointing zod's local `#/$defs/…` references at the components. */
function pointRefsAtComponents(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(pointRefsAtComponents);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, v]) => [
      key,
      key === "$ref" && typeof v === "string"
        ? v.replace(/^#\/\$defs\//, "#/components/schemas/")
        : pointRefsAtComponents(v),
    ]),
  );
}

class SchemaConverter {
  readonly components: Record<string, Json> = {};

  convert(schema: z.ZodType, io: "input" | "output"): Json {
    const {
      $schema: _dialect,
      $defs,
      ...rest
    } = z.toJSONSchema(schema, {
      io,
      // The format says it; zod's long date-time pattern only repeats it.
      override: ({ jsonSchema }) => {
        if (jsonSchema.format === "date-time") delete jsonSchema.pattern;
      },
    }) as Json & { $defs?: Record<string, Json> };
    for (const [id, def] of Object.entries($defs ?? {})) {
      const pointed = pointRefsAtComponents(def) as Json;
      const known = this.components[id];
      if (known && JSON.stringify(known) !== JSON.stringify(pointed)) {
        throw new Error(`two different schemas share the component id ${id}`);
      }
      this.components[id] = pointed;
    }
    return pointRefsAtComponents(rest) as Json;
  }
}

function parameters(
  converter: SchemaConverter,
  where: "path" | "query",
  schema: z.ZodObject | undefined,
): Json[] {
  if (!schema) return [];
  const object = converter.convert(schema, "input") as {
    properties?: Record<string, Json>;
    required?: string[];
  };
  return Object.entries(object.properties ?? {}).map(([name, property]) => {
    const { description, ...propertySchema } = property;
    return {
      name,
      in: where,
      required: where === "path" || (object.required ?? []).includes(name),
      ...(description === undefined ? {} : { description }),
      schema: propertySchema,
    };
  });
}

const IDEMPOTENCY_HEADER = {
  name: "Idempotency-Key",
  in: "header",
  required: false,
  description:
    "1–255 visible ASCII characters. The same key and body replay the first answer for 24 hours (with `Idempotent-Replayed: true`); another body is 422 idempotency_key_reused; while the first runs, 409 idempotency_key_in_flight.",
  schema: { type: "string", minLength: 1, maxLength: 255, pattern: "^[\\x21-\\x7e]+$" },
};

const REQUIRED_IDEMPOTENCY_HEADER = {
  ...IDEMPOTENCY_HEADER,
  required: true,
  description:
    "Required; 1–255 visible ASCII characters. The same key and body return what the first request created, as it stands now (with `Idempotent-Replayed: true`), and never do it twice; another body is 422 idempotency_key_reused.",
};

const NEEDS_NOTHING: Credential[] = ["signedUrl", "unlessConfigured"];

/**
 * Alternatives, any one of which will do (credentials listed together are sent together);
 * `{}` is the alternative that needs no credential.
 */
function securityOf(auth: RouteContract["auth"]): Json[] {
  const open = auth.some((c) => typeof c === "string" && NEEDS_NOTHING.includes(c));
  const requirements = auth
    .filter((c) => typeof c !== "string" || !NEEDS_NOTHING.includes(c))
    .map((c) => Object.fromEntries((Array.isArray(c) ? c : [c]).map((name) => [name, []])));
  return [...requirements, ...(open ? [{}] : [])];
}

function successResponse(
  converter: SchemaConverter,
  route: RouteContract,
  response: ResponseContract,
): Json {
  const headers: Json = { "X-Request-Id": headerRef("RequestId") };
  if (credentialsOf(route).includes("x402")) {
    headers["PAYMENT-RESPONSE"] = headerRef("PaymentResponse");
  }
  if (route.rateLimit) Object.assign(headers, RATE_LIMIT_HEADERS);
  if (route.idempotent) headers["Idempotent-Replayed"] = headerRef("IdempotentReplayed");
  for (const [name, header] of Object.entries(response.headers ?? {})) {
    headers[name] = {
      description: header.description,
      required: header.required ?? false,
      schema: { type: "string" },
    };
  }
  const schema = response.schema && converter.convert(response.schema, "output");
  return {
    description: response.description,
    headers,
    ...(schema && {
      content: Object.fromEntries(
        (response.contentTypes ?? ["application/json"]).map((type) => [
          type,
          { schema, ...(response.example === undefined ? {} : { example: response.example }) },
        ]),
      ),
    }),
  };
}

function errorResponse(
  converter: SchemaConverter,
  route: RouteContract,
  status: number,
  codes: ErrorCode[],
): Json {
  const headers: Json = { "X-Request-Id": headerRef("RequestId") };
  // Every answer given after the limiter counted the request carries the bucket's state.
  if (route.rateLimit) Object.assign(headers, RATE_LIMIT_HEADERS);
  if (status === 402 && codes.includes("payment_required")) {
    headers["PAYMENT-REQUIRED"] = headerRef("PaymentRequired");
  }
  if (status === 429 || (status === 503 && codes.includes("service_unavailable"))) {
    headers["Retry-After"] = headerRef("RetryAfter");
  }
  if (status === 405) headers.Allow = headerRef("Allow");
  return {
    description: codes.map((code) => `\`${code}\`: ${errorExamples[code]}`).join("\n\n"),
    headers,
    content: {
      "application/json": {
        schema: converter.convert(errorBodySchema(codes), "output"),
        examples: Object.fromEntries(
          codes.map((code) => [code, { $ref: `#/components/examples/${code}` }]),
        ),
      },
    },
  };
}

function mergeResponses(ours: Json, theirs: Json): Json {
  const content = { ...(ours.content as Record<string, { schema: Json }>) };
  for (const [type, media] of Object.entries(
    (theirs.content ?? {}) as Record<string, { schema: Json }>,
  )) {
    const mine = content[type];
    content[type] = mine ? { ...mine, schema: { anyOf: [mine.schema, media.schema] } } : media;
  }
  return {
    description: `${theirs.description}\n\n${ours.description}`,
    headers: { ...(ours.headers as Json), ...(theirs.headers as Json) },
    content,
  };
}

function operation(converter: SchemaConverter, route: RouteContract): Json {
  const responses: Record<string, Json> = {};
  for (const [status, codes] of errorsByStatus(errorCodesOf(route))) {
    responses[status] = errorResponse(converter, route, status, codes);
  }
  for (const [status, response] of Object.entries(route.responses)) {
    if (!response) continue;
    const own = successResponse(converter, route, response);
    const ours = responses[status];
    // A status both we and a library answer (the MCP SDK's JSON-RPC refusals): either body.
    responses[status] = ours ? mergeResponses(ours, own) : own;
  }
  const body = route.body;
  return {
    operationId: route.operationId,
    summary: route.summary,
    ...(route.description === undefined ? {} : { description: route.description }),
    tags: [route.tag],
    security: securityOf(route.auth),
    parameters: [
      ...parameters(converter, "path", route.params),
      ...parameters(converter, "query", route.query),
      ...(route.idempotent === "required"
        ? [REQUIRED_IDEMPOTENCY_HEADER]
        : route.idempotent
          ? [IDEMPOTENCY_HEADER]
          : []),
    ],
    ...(body && {
      requestBody: {
        required: true,
        content: {
          [body.contentType ?? "application/json"]: {
            schema: converter.convert(body.schema, "input"),
            ...(body.example === undefined ? {} : { example: body.example }),
          },
        },
      },
    }),
    responses: Object.fromEntries(
      Object.entries(responses).sort(([a], [b]) => Number(a) - Number(b)),
    ),
  };
}

export interface OpenApiDocument {
  openapi: "3.1.0";
  info: Json;
  servers: Json[];
  tags: Json[];
  paths: Record<string, Record<string, Json>>;
  components: Json;
}

/** The document for `routes`: every route, its parameters, bodies, answers and refusals. */
export function buildOpenApiDocument(routes: readonly RouteContract[]): OpenApiDocument {
  const converter = new SchemaConverter();
  const paths: OpenApiDocument["paths"] = {};
  const seen = new Set<string>();
  for (const route of routes) {
    const path = openApiPath(route.path);
    const key = `${route.method} ${path}`;
    if (seen.has(key)) throw new Error(`${key} is described twice`);
    seen.add(key);
    paths[path] ??= {};
    (paths[path] as Record<string, Json>)[route.method] = operation(converter, route);
  }
  const tags = [...new Set(routes.map((r) => r.tag))].map((name) => ({ name }));
  return {
    openapi: "3.1.0",
    info: {
      title: OPENAPI_TITLE,
      version: OPENAPI_VERSION,
      description:
        "One API over many image and video generation models, paid in USDC: with credits and an API key, or per call with x402. Errors are `{ error: { code, message, requestId } }`; branch on `code`.",
    },
    // Relative, so the document is the same on every machine and Swagger UI calls the server
    // that served it.
    servers: [{ url: "/", description: "The server that serves this document" }],
    tags,
    paths,
    components: {
      securitySchemes: SECURITY_SCHEMES,
      headers: HEADERS,
      examples: Object.fromEntries(
        (Object.keys(errorExamples) as ErrorCode[]).map((code) => [
          code,
          { summary: code, value: errorExample(code) },
        ]),
      ),
      schemas: Object.fromEntries(
        Object.entries(converter.components).sort(([a], [b]) => a.localeCompare(b)),
      ),
    },
  };
}
