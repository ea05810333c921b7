import { request as httpRequest } from "node:http";
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import addFormatsPlugin from "ajv-formats";
import type { Express } from "express";
import type { OpenApiDocument } from "../../src/http/openapi/document.js";

/** A response as the checks read it, whichever client made the request. */
export interface SeenResponse {
  status: number;
  headers: Record<string, string>;
  text: string;
}

export async function fromFetch(res: Response): Promise<SeenResponse> {
  return {
    status: res.status,
    headers: Object.fromEntries(res.headers.entries()),
    text: await res.text(),
  };
}

/**
 * A request through node:http, which (unlike fetch) sends a body with GET: how a client that
 * sends a broken JSON body to any route is answered.
 */
export function rawRequest(
  url: string,
  options: { method: string; headers?: Record<string, string>; body?: string | Buffer },
): Promise<SeenResponse> {
  return new Promise((resolve, reject) => {
    // An explicit length: node sends a GET's body only then (not chunked, as for a POST).
    const headers = {
      ...options.headers,
      ...(options.body === undefined ? {} : { "content-length": Buffer.byteLength(options.body) }),
    };
    const req = httpRequest(url, { method: options.method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: Object.fromEntries(
            Object.entries(res.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(", ") : v]),
          ) as Record<string, string>,
          text: Buffer.concat(chunks).toString("latin1"),
        }),
      );
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(options.body);
  });
}

interface MediaType {
  schema?: unknown;
}
interface DocumentedResponse {
  headers?: Record<string, unknown>;
  content?: Record<string, MediaType>;
}
interface Operation {
  responses: Record<string, DocumentedResponse>;
}

/** The document's component references, pointed at the components as one ajv schema. */
const toComponents = (schema: unknown): unknown =>
  JSON.parse(
    JSON.stringify(schema).replaceAll(
      '"#/components/schemas/',
      '"https://polyforge.test/components#/$defs/',
    ),
  );

const mediaBase = (type: string) => type.split(";")[0]?.trim().toLowerCase() ?? "";

/**
 * Checks real responses against what the document says of their operation and status, with
 * ajv (draft 2020-12, the document's dialect), and records which operations were seen
 * succeeding and failing.
 */
export class ResponseChecker {
  private readonly ajv: Ajv2020;
  private readonly compiled = new Map<string, ValidateFunction>();
  readonly seen = new Map<string, { success: number[]; error: number[] }>();

  constructor(private readonly document: OpenApiDocument) {
    this.ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormatsPlugin.default(this.ajv);
    // A stored file's bytes: nothing for a JSON validator to check.
    this.ajv.addFormat("binary", true);
    // Every response schema is compiled beside the document's components, so its
    // #/components/… references resolve to the document's own.
    const { schemas } = document.components as { schemas: Record<string, unknown> };
    this.ajv.addSchema(
      toComponents({ $id: "https://polyforge.test/components", $defs: schemas }) as object,
    );
  }

  private validator(key: string, schema: unknown): ValidateFunction {
    let validate = this.compiled.get(key);
    if (!validate) {
      validate = this.ajv.compile(toComponents(schema) as object);
      this.compiled.set(key, validate);
    }
    return validate;
  }

  operation(method: string, template: string): Operation {
    const operation = this.document.paths[template]?.[method] as Operation | undefined;
    if (!operation) throw new Error(`${method.toUpperCase()} ${template} is not in the document`);
    return operation;
  }

  /** Throws unless `res` is what the document promises for this operation and its status. */
  check(method: string, template: string, res: SeenResponse): void {
    const name = `${method.toUpperCase()} ${template} → ${res.status}`;
    const documented = this.operation(method, template).responses[String(res.status)];
    if (!documented) throw new Error(`${name} is not documented; body: ${res.text.slice(0, 300)}`);
    const requestId = res.headers["x-request-id"];
    if (!requestId) throw new Error(`${name} has no X-Request-Id`);

    let errorCode: string | undefined;
    const content = documented.content;
    const type = res.headers["content-type"];
    if (!content) {
      if (res.text) throw new Error(`${name} is documented without a body but has one`);
    } else {
      if (!type) throw new Error(`${name} has no content-type`);
      const match = Object.entries(content).find(([key]) => mediaBase(key) === mediaBase(type));
      if (!match) {
        throw new Error(`${name}: ${type} is not among ${Object.keys(content).join(", ")}`);
      }
      const [key, media] = match;
      if (mediaBase(key) === "application/json") {
        const body: unknown = JSON.parse(res.text);
        const validate = this.validator(`${method} ${template} ${res.status} ${key}`, media.schema);
        if (!validate(body)) {
          throw new Error(
            `${name}: the body does not match its schema: ${this.ajv.errorsText(validate.errors)}\n${res.text.slice(0, 500)}`,
          );
        }
        const error = (body as { error?: { code?: unknown; requestId?: string } }).error;
        // Our error shape (not a library's, such as the MCP SDK's JSON-RPC errors).
        const code = typeof error?.code === "string" ? error.code : undefined;
        if (res.status >= 400 && code && error?.requestId !== requestId) {
          throw new Error(`${name}: error.requestId is not the X-Request-Id`);
        }
        errorCode = code;
      }
    }
    this.checkHeaders(name, documented, res, errorCode);

    const record = this.seen.get(`${method} ${template}`) ?? { success: [], error: [] };
    (res.status < 400 ? record.success : record.error).push(res.status);
    this.seen.set(`${method} ${template}`, record);
  }

  /**
   * The headers that carry meaning on some answers: those a code implies must be there, and
   * any of them that is there must be documented for this status.
   */
  private checkHeaders(
    name: string,
    documented: DocumentedResponse,
    res: SeenResponse,
    code: string | undefined,
  ) {
    const rateLimit = ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"];
    const implied = [
      ...(code === "payment_required" ? ["payment-required"] : []),
      ...(res.status === 429 ? ["retry-after"] : []),
      ...(code === "rate_limited" ? [...rateLimit, "ratelimit-policy"] : []),
      ...(res.status === 405 ? ["allow"] : []),
    ];
    for (const header of implied) {
      if (!res.headers[header]) throw new Error(`${name} (${code}) lacks ${header}`);
    }
    const meaningful = [
      ...implied,
      ...rateLimit,
      "ratelimit-policy",
      "retry-after",
      "payment-required",
      "payment-response",
      "allow",
      "idempotent-replayed",
    ];
    const names = Object.keys(documented.headers ?? {}).map((h) => h.toLowerCase());
    for (const header of meaningful) {
      if (res.headers[header] && !names.includes(header)) {
        throw new Error(`${name} sends ${header}, which is not documented`);
      }
    }
  }
}

interface Layer {
  route?: { path: string | string[]; methods: Record<string, boolean> };
  handle: { stack?: Layer[] };
  rawPath?: unknown;
  slash?: boolean;
}

/**
 * Every method and path the express app routes, found by walking its router stack (express
 * 5) and the routers mounted in it. `router.all` shows up as method `*`.
 */
export function registeredRoutes(app: Express): string[] {
  const found: string[] = [];
  const walk = (stack: Layer[], prefix: string) => {
    for (const layer of stack) {
      if (layer.route) {
        const paths = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path];
        for (const path of paths) {
          for (const [method, on] of Object.entries(layer.route.methods)) {
            if (on) found.push(`${method === "_all" ? "*" : method} ${prefix}${path}`);
          }
        }
      } else if (layer.handle.stack) {
        // Our routers are mounted without a path; a mounted path would prefix its routes.
        const mount = layer.slash || layer.rawPath === undefined ? "" : String(layer.rawPath);
        walk(layer.handle.stack, `${prefix}${mount === "/" ? "" : mount}`);
      }
    }
  };
  walk((app as unknown as { router: { stack: Layer[] } }).router.stack, "");
  return found;
}
