import type { PrivateKeyAccount } from "viem/accounts";
import { createSiweMessage } from "viem/siwe";
import type { z } from "zod";
import type { RouteContract } from "../../src/http/openapi/contract.js";
import type { TestApp } from "./app.js";

/**
 * What the security matrix (test/integration/security-matrix.test.ts) needs to call any route
 * from its contract alone: well-formed parameters, the resource kind each id parameter names,
 * a real wallet session, and a request that also copes with event streams.
 */

/** The kinds of resource a route's parameters name, each with its id prefix. */
export const resourcePrefixes = {
  key: "key",
  generation: "gen",
  video: "gen",
  upload: "img",
  pass: "pass",
  template: "tpl",
  workflow: "wf",
  run: "wfr",
  reservation: "res",
} as const;
export type ResourceKind = keyof typeof resourcePrefixes;

/**
 * Passes and templates are a network's shared catalogue: any key of the network reads them,
 * only their creator changes them (403 not_creator). Every other kind is its owner's alone.
 */
export const sharedKinds: ReadonlySet<ResourceKind> = new Set(["pass", "template"]);

/** A path parameter names the kind of the segment before it (`/v1/passes/:id` → pass). */
const kindBySegment: Record<string, ResourceKind> = {
  "api-keys": "key",
  generate: "generation",
  jobs: "video",
  uploads: "upload",
  passes: "pass",
  templates: "template",
  workflows: "workflow",
  runs: "run",
};

/** Query and body fields that carry an id, by name. */
const kindByField: Record<string, ResourceKind> = {
  ids: "generation",
  reservationId: "reservation",
};

/** A well-formed id of `kind` that names nothing. */
export const fakeId = (kind: ResourceKind) => `${resourcePrefixes[kind]}_${"0".repeat(26)}`;

/** Non-id values a parameter may need to be well-formed, tried in order. */
const fillers = ["z-image-turbo", `0x${"ab".repeat(32)}`, "7d"];

/** One real resource of an account: its id and the other values routes about it take. */
export interface Resource {
  id: string;
  /** Values for other required fields of routes that name it (a generation's `model`). */
  fields?: Record<string, string>;
}
export type Resources = Record<ResourceKind, Resource>;

export interface RequestParts {
  path: string;
  query: Record<string, string>;
  json?: unknown;
  /** Every resource id the request names, with its kind. */
  names: Array<{ kind: ResourceKind; id: string }>;
}

function kindOfPathParam(route: RouteContract, name: string): ResourceKind | undefined {
  const segments = route.path.split("/");
  const at = segments.indexOf(`:${name}`);
  return kindBySegment[segments[at - 1] ?? ""];
}

/** The kind of a query field: by its name, else the one kind whose fake id its schema takes. */
function kindOfField(name: string, schema: z.ZodType): ResourceKind | undefined {
  const named = kindByField[name];
  if (named) return named;
  const accepted = (Object.keys(resourcePrefixes) as ResourceKind[]).filter(
    (kind) => resourcePrefixes[kind] !== "gen" || kind === "generation",
  );
  const matching = accepted.filter((kind) => schema.safeParse(fakeId(kind)).success);
  return matching.length === 1 ? matching[0] : undefined;
}

function fillValue(
  where: string,
  name: string,
  schema: z.ZodType,
  kind: ResourceKind | undefined,
  resources: Partial<Resources>,
  names: RequestParts["names"],
): string {
  if (kind) {
    const id = resources[kind]?.id ?? fakeId(kind);
    names.push({ kind, id });
    return id;
  }
  const known = Object.values(resources).find((r) => r?.fields?.[name] !== undefined);
  const options = (schema as { options?: unknown[] }).options;
  const candidates = [
    ...(known?.fields?.[name] ? [known.fields[name]] : []),
    ...(Array.isArray(options) ? options.map(String) : []),
    ...fillers,
  ];
  const value = candidates.find((c) => schema.safeParse(c).success);
  if (value === undefined)
    throw new Error(`no well-formed value for ${where} ${name}: add one to the security helper`);
  return value;
}

/**
 * A well-formed request for `route`: every path parameter and required query field filled,
 * with the ids of `resources` where a parameter names one of their kinds (fake ids otherwise),
 * and the contract's example body with its ids replaced likewise.
 */
export function requestParts(
  route: RouteContract,
  resources: Partial<Resources> = {},
): RequestParts {
  const names: RequestParts["names"] = [];
  let path = route.path;
  for (const [name, schema] of Object.entries(route.params?.shape ?? {}) as [string, z.ZodType][]) {
    const value = fillValue(
      route.path,
      name,
      schema,
      kindOfPathParam(route, name),
      resources,
      names,
    );
    path = path.replace(`:${name}`, encodeURIComponent(value));
  }
  const query: Record<string, string> = {};
  for (const [name, schema] of Object.entries(route.query?.shape ?? {}) as [string, z.ZodType][]) {
    if (schema.safeParse(undefined).success) continue;
    query[name] = fillValue(route.path, name, schema, kindOfField(name, schema), resources, names);
  }
  const example = route.body?.contentType ? undefined : route.body?.example;
  const json = example === undefined ? undefined : withIds(example, resources, names);
  return { path, query, json, names };
}

/** The example with every id of a known kind (`res_…`) replaced by the resource's own. */
function withIds(
  value: unknown,
  resources: Partial<Resources>,
  names: RequestParts["names"],
): unknown {
  if (typeof value === "string") {
    const kind = (Object.keys(kindByField) as string[])
      .map((field) => kindByField[field] as ResourceKind)
      .find((k) => new RegExp(`^${resourcePrefixes[k]}_[0-9a-z]{26}$`).test(value));
    if (!kind) return value;
    const id = resources[kind]?.id ?? value;
    names.push({ kind, id });
    return id;
  }
  if (Array.isArray(value)) return value.map((v) => withIds(v, resources, names));
  if (value && typeof value === "object")
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, withIds(v, resources, names)]),
    );
  return value;
}

export interface Answer {
  status: number;
  contentType: string;
  // biome-ignore lint/suspicious/noExplicitAny: the matrix reads any route's answer generically.
  body: any;
}

/**
 * Sends `parts` to `route`. An event stream is not read to its end (a pending generation's
 * stream stays open): its status and type are the answer.
 */
export async function send(
  app: TestApp,
  route: RouteContract,
  parts: RequestParts,
  headers: Record<string, string>,
): Promise<Answer> {
  const search = new URLSearchParams(parts.query).toString();
  const url = `${app.url}${parts.path}${search ? `?${search}` : ""}`;
  const all = { ...headers };
  let body: string | undefined;
  if (parts.json !== undefined) {
    all["content-type"] = "application/json";
    body = JSON.stringify(parts.json);
  }
  const abort = new AbortController();
  const res = await fetch(url, {
    method: route.method.toUpperCase(),
    headers: all,
    body,
    signal: abort.signal,
  });
  const contentType = res.headers.get("content-type") ?? "";
  if (contentType.startsWith("text/event-stream")) {
    abort.abort();
    return { status: res.status, contentType, body: undefined };
  }
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {}
  return { status: res.status, contentType, body: parsed };
}

/** A real wallet session for `wallet`: a nonce, a signed EIP-4361 message, POST /v1/auth/verify. */
export async function signIn(app: TestApp, wallet: PrivateKeyAccount): Promise<string> {
  const issued = await app.call("createSignInNonce");
  const message = createSiweMessage({
    address: wallet.address,
    chainId: 84532,
    domain: issued.body.domain,
    uri: issued.body.uri,
    nonce: issued.body.nonce,
    version: "1",
    statement: issued.body.statement,
    issuedAt: app.clock.now(),
  });
  const signature = await wallet.signMessage({ message });
  const verified = await app.call("signIn", { json: { message, signature } });
  if (verified.status !== 201) throw new Error(`sign-in failed: ${JSON.stringify(verified.body)}`);
  return verified.body.sessionToken;
}

/** Where in `body` the string `id` appears (as a value or a key), as dotted paths. */
export function placesOf(body: unknown, id: string, at = "$"): string[] {
  if (typeof body === "string") return body.includes(id) ? [at] : [];
  if (Array.isArray(body)) return body.flatMap((v, i) => placesOf(v, id, `${at}.${i}`));
  if (body && typeof body === "object")
    return Object.entries(body).flatMap(([k, v]) => [
      ...(k.includes(id) ? [`${at}.${k}`] : []),
      ...placesOf(v, id, `${at}.${k}`),
    ]);
  return [];
}
