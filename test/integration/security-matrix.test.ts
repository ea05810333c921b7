import type { Runner } from "graphile-worker";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LocalChain } from "../../src/chain/local-chain.js";
import { createApiKey } from "../../src/domains/keys/service.js";
import { grantCredits } from "../../src/domains/ledger/service.js";
import {
  type Credential,
  credentialsOf,
  type RouteContract,
} from "../../src/http/openapi/contract.js";
import { apiContracts } from "../../src/http/openapi/routes.js";
import { startWorker } from "../../src/jobs/worker.js";
import { creditUnits } from "../../src/lib/credits.js";
import { newId } from "../../src/lib/ids.js";
import type { Network } from "../../src/lib/network.js";
import {
  createAccountWithKey,
  startTestApp,
  type TestApp,
  waitForGeneration,
} from "../helpers/app.js";
import { fundedPayer, payingFetch, paymentEnv, startTestChain } from "../helpers/chain.js";
import { solidPng } from "../helpers/images.js";
import {
  type Answer,
  placesOf,
  type RequestParts,
  type ResourceKind,
  type Resources,
  requestParts,
  resourcePrefixes,
  send,
  sharedKinds,
  signIn,
} from "../helpers/security.js";

/**
 * The shared security matrix (issue #18): every attack below runs against every route of
 * `apiContracts` it applies to, decided from the route's contract alone (its `auth`, its
 * parameters, its errors). A route is covered the moment its contract is declared. Expected
 * answers are the API's current ones (src/http/auth.ts and the credential verbs it calls).
 */

const METRICS_TOKEN = "matrix-metrics-token-0123456789";

let app: TestApp;
let chain: LocalChain;
let worker: Runner;

type Party = Awaited<ReturnType<typeof createAccountWithKey>>;
/** The owner of every resource the id attacks aim at, with a key on each network. */
let owner: Party & { liveKey: string; resources: Record<Network, Resources> };
/** Another account of the test network. */
let other: Party;
/** An account whose only key is revoked. */
let revokedKey: string;
/** A fresh account whose key shows the routes that take keys really accept it. */
let control: Party;
/** A pay-per-call video job (its access token and id) and another job the same wallet paid for. */
let paid: { token: string; id: string; siblingId: string };

beforeAll(async () => {
  chain = await startTestChain("test");
  app = await startTestApp({
    env: {
      ...paymentEnv([chain]),
      LOG_LEVEL: "error",
      METRICS_TOKEN,
      CHANNELS: JSON.stringify([
        {
          id: "sandbox",
          provider: "sandbox",
          networks: ["test", "live"],
          models: "*",
          priority: 0,
        },
      ]),
    },
  });
  worker = await startWorker(app.ctx);

  const a = await createAccountWithKey(app.ctx, "test");
  const live = await createApiKey(
    app.ctx,
    { accountId: a.account.id },
    { name: "live", network: "live" },
  );
  for (const network of ["test", "live"] as const) {
    await grantCredits(app.ctx, {
      id: newId("grant"),
      ownerId: a.account.id,
      network,
      amount: creditUnits(100_000n),
      reason: "security matrix",
    });
  }
  const [test, liveResources] = await Promise.all([
    createResources(a.key, a.apiKey.id),
    createResources(live.key, live.apiKey.id),
  ]);
  owner = { ...a, liveKey: live.key, resources: { test, live: liveResources } };
  other = await createAccountWithKey(app.ctx, "test");
  await grantCredits(app.ctx, {
    id: newId("grant"),
    ownerId: other.account.id,
    network: "test",
    amount: creditUnits(1_000n),
    reason: "security matrix",
  });
  control = await createAccountWithKey(app.ctx, "test");

  const doomed = await createAccountWithKey(app.ctx, "test");
  const revoked = await app.call("revokeApiKey", {
    params: { id: doomed.apiKey.id },
    token: doomed.key,
  });
  expect(revoked.status).toBe(200);
  revokedKey = doomed.key;

  // Real x402 payments for two video jobs from one wallet: each answers with an access token
  // that reads its own job only, not even the wallet's other one.
  const payer = await fundedPayer(chain, 20n * 10n ** 6n);
  const payForJob = async (prompt: string) => {
    const res = await payingFetch(payer, "test")(`${app.url}/v1/videos/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "sora-2-preview", prompt, duration: 4 }),
    });
    const job = (await res.json()) as { id: string; accessToken: string };
    expect(res.status, JSON.stringify(job)).toBe(202);
    return job;
  };
  const first = await payForJob("paid waves");
  const second = await payForJob("more paid waves");
  paid = { token: first.accessToken, id: first.id, siblingId: second.id };
}, 120_000);

afterAll(async () => {
  await worker?.stop();
  await app?.close();
  await chain?.stop();
});

/** One resource of each kind for the key's account on the key's network, through the API. */
async function createResources(key: string, apiKeyId: string): Promise<Resources> {
  const post = async (path: string, json: unknown, want = 201) => {
    const res = await app.request("POST", path, { token: key, json });
    expect(res.status, `${path}: ${JSON.stringify(res.body)}`).toBe(want);
    return res.body;
  };
  const model = "z-image-turbo";
  const generation = await post("/v1/generate", { prompt: "a matrix", models: [model] }, 202);
  const video = await post(
    "/v1/videos/jobs",
    { model: "sora-2-preview", prompt: "owned waves", duration: 4 },
    202,
  );
  const form = new FormData();
  form.append("file", new Blob([new Uint8Array(await solidPng(16, 16))], { type: "image/png" }));
  const uploaded = await fetch(`${app.url}/v1/upload-image`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}` },
    body: form,
  });
  expect(uploaded.status).toBe(201);
  const upload = (await uploaded.json()) as { id: string };
  const pass = await post("/v1/passes", {
    name: "Matrix",
    stylePrompt: "green glyphs",
    tags: ["matrix"],
    fee: 1,
  });
  const template = await post("/v1/templates", {
    name: "Matrix",
    text: "a {{thing}}",
    variables: { thing: {} },
  });
  const workflow = await post("/v1/workflows", {
    name: "matrix",
    steps: [{ id: "one", request: { prompt: "a matrix", models: [model] } }],
  });
  const run = await post(`/v1/workflows/${workflow.id}/run`, undefined, 202);
  const reservation = await post("/v1/studio/reserve", { credits: 10 });
  await waitForGeneration(app, key, generation.generationId);
  return {
    key: { id: apiKeyId },
    generation: { id: generation.generationId, fields: { model } },
    video: { id: video.id },
    upload: { id: upload.id },
    pass: { id: pass.id },
    template: { id: template.id },
    workflow: { id: workflow.id },
    run: { id: run.runId },
    reservation: { id: reservation.id },
  };
}

// --- What a route's contract says ------------------------------------------------------------

const takes = (route: RouteContract, credential: Credential) =>
  credentialsOf(route).includes(credential);
/** Routes whose Authorization is a bearer token that src/http/auth.ts reads. */
const bearer = (route: RouteContract) =>
  takes(route, "apiKey") || takes(route, "session") || takes(route, "generationToken");
const metrics = (route: RouteContract) => takes(route, "metricsToken");
const guarded = (route: RouteContract) => route.auth.length > 0;
/** The resource kinds a well-formed request to the route names (its ids). */
const kindsNamed = (route: RouteContract): ResourceKind[] => [
  ...new Set(requestParts(route).names.map((n) => n.kind)),
];
const namesResources = (route: RouteContract) => kindsNamed(route).length > 0;

// --- What an answer must be ------------------------------------------------------------------

const label = (route: RouteContract, answer: Answer) =>
  `${route.method.toUpperCase()} ${route.path} → ${answer.status} ${JSON.stringify(answer.body)}`;

function expectRefused(route: RouteContract, answer: Answer, status: number, code: string) {
  expect(answer.status, label(route, answer)).toBe(status);
  expect(answer.body?.error?.code, label(route, answer)).toBe(code);
}

/** Past authentication: whatever the route then answers, not a refusal of the credential. */
function expectAccepted(route: RouteContract, answer: Answer) {
  expect([401, 403], label(route, answer)).not.toContain(answer.status);
  expect(answer.status, label(route, answer)).toBeLessThan(500);
}

/**
 * Ids the caller may not see are answered as ids that name nothing: 404 not_found where the
 * route can say it, else (a status lookup by ids) a success that lists them only as notFound.
 */
function expectHidden(route: RouteContract, answer: Answer, parts: RequestParts) {
  if (route.errors.includes("not_found")) return expectRefused(route, answer, 404, "not_found");
  expect(answer.status, label(route, answer)).toBeLessThan(300);
  for (const { id } of parts.names) {
    for (const place of placesOf(answer.body, id))
      expect(place, label(route, answer)).toMatch(/\.notFound\.\d+$/);
  }
}

/** No id of the owner's own (unshared) resources in an answer to anyone else, unless asked. */
function expectNoOwnerData(route: RouteContract, answer: Answer, parts: RequestParts) {
  const asked = new Set(parts.names.map((n) => n.id));
  for (const resources of Object.values(owner.resources)) {
    for (const [kind, resource] of Object.entries(resources) as [ResourceKind, { id: string }][]) {
      if (sharedKinds.has(kind) || asked.has(resource.id)) continue;
      expect(placesOf(answer.body, resource.id), `${kind} ${label(route, answer)}`).toEqual([]);
    }
  }
}

const bearerHeader = (token: string) => ({ authorization: `Bearer ${token}` });

// --- The attacks -----------------------------------------------------------------------------

interface Attack {
  name: string;
  appliesTo(route: RouteContract): boolean;
  run(route: RouteContract): Promise<void>;
}

/** A bad credential in the Authorization header, refused the way auth.ts refuses it. */
function badCredential(
  name: string,
  token: () => string,
  codeFor: (route: RouteContract) => string,
): Attack {
  return {
    name,
    appliesTo: (route) => bearer(route) || metrics(route),
    async run(route) {
      const answer = await send(app, route, requestParts(route), { authorization: token() });
      expectRefused(route, answer, 401, codeFor(route));
    },
  };
}

/** An id attack: `token` asks for the owner's resources of `network`. */
function foreignIds(
  name: string,
  network: Network,
  token: () => string,
  expectAnswer: (route: RouteContract, answer: Answer, parts: RequestParts) => void,
): Attack {
  return {
    name,
    appliesTo: (route) => takes(route, "apiKey") && namesResources(route),
    async run(route) {
      const parts = requestParts(route, owner.resources[network]);
      const answer = await send(app, route, parts, bearerHeader(token()));
      expectAnswer(route, answer, parts);
      expectNoOwnerData(route, answer, parts);
    },
  };
}

const attacks: Attack[] = [
  {
    name: "no credential",
    appliesTo: guarded,
    async run(route) {
      const answer = await send(app, route, requestParts(route), {});
      // Where an x402 payment may stand in for a key, the answer is the payment's offer.
      if (takes(route, "x402")) expectRefused(route, answer, 402, "payment_required");
      else expectRefused(route, answer, 401, "missing_api_key");
    },
  },
  // GET /metrics reads only `Bearer <token>`: any other header is no token at all.
  badCredential(
    "a malformed Authorization header",
    () => "Basic dXNlcjpwYXNz",
    (route) => (bearer(route) ? "invalid_api_key" : "missing_api_key"),
  ),
  badCredential(
    "a malformed API key",
    () => `Bearer sk_test_${"A".repeat(63)}`,
    () => "invalid_api_key",
  ),
  badCredential(
    "an API key nobody issued",
    () => `Bearer sk_test_${"z".repeat(64)}`,
    () => "invalid_api_key",
  ),
  badCredential(
    "a revoked API key",
    () => `Bearer ${revokedKey}`,
    () => "invalid_api_key",
  ),
  badCredential(
    "a session token nobody issued",
    () => `Bearer sess_${"x".repeat(48)}`,
    (route) => (takes(route, "session") ? "invalid_session" : "invalid_api_key"),
  ),
  badCredential(
    "a forged generation access token",
    () => `Bearer gat_${paid.id}.${"A".repeat(43)}`,
    () => "invalid_api_key",
  ),
  {
    name: "a real wallet session",
    appliesTo: (route) => bearer(route) || metrics(route),
    async run(route) {
      // A fresh session each time: signing out (one of the routes) ends the one it is sent with.
      const session = await signIn(app, owner.wallet);
      const answer = await send(app, route, requestParts(route), bearerHeader(session));
      if (takes(route, "session")) expectAccepted(route, answer);
      else expectRefused(route, answer, 401, "invalid_api_key");
    },
  },
  {
    name: "a real API key",
    appliesTo: (route) => bearer(route) || metrics(route),
    async run(route) {
      const answer = await send(app, route, requestParts(route), bearerHeader(control.key));
      if (takes(route, "apiKey")) expectAccepted(route, answer);
      else expectRefused(route, answer, 401, "invalid_api_key");
    },
  },
  {
    name: "a generation access token where tokens are not taken",
    appliesTo: (route) => (bearer(route) || metrics(route)) && !takes(route, "generationToken"),
    async run(route) {
      const answer = await send(app, route, requestParts(route), bearerHeader(paid.token));
      expectRefused(route, answer, 401, "invalid_api_key");
    },
  },
  {
    name: "a generation access token on its own generation",
    appliesTo: (route) => takes(route, "generationToken"),
    async run(route) {
      const parts = requestParts(route, { generation: { id: paid.id }, video: { id: paid.id } });
      const answer = await send(app, route, parts, bearerHeader(paid.token));
      expect(answer.status, label(route, answer)).toBe(200);
      if (answer.body?.generations) expect(Object.keys(answer.body.generations)).toEqual([paid.id]);
    },
  },
  {
    name: "a generation access token outside its generation",
    appliesTo: (route) => takes(route, "generationToken"),
    async run(route) {
      const sibling = { id: paid.siblingId };
      for (const resources of [{ generation: sibling, video: sibling }, owner.resources.test]) {
        const parts = requestParts(route, resources);
        const answer = await send(app, route, parts, bearerHeader(paid.token));
        expectHidden(route, answer, parts);
        expectNoOwnerData(route, answer, parts);
      }
    },
  },
  {
    name: "a forged signed URL",
    appliesTo: (route) => takes(route, "signedUrl"),
    async run(route) {
      const parts = requestParts(route, owner.resources.test);
      parts.query.expires = String(Math.ceil(Date.now() / 3_600_000 + 24) * 3600);
      parts.query.signature = "A".repeat(43);
      const answer = await send(app, route, parts, {});
      expectRefused(route, answer, 404, "not_found");
    },
  },
  foreignIds(
    "another account's ids",
    "test",
    () => other.key,
    (route, answer, parts) => {
      const kinds = parts.names.map((n) => n.kind);
      if (!kinds.every((kind) => sharedKinds.has(kind))) return expectHidden(route, answer, parts);
      // The network's shared catalogue: readable by any key, changed only by its creator.
      if (route.errors.includes("not_creator"))
        return expectRefused(route, answer, 403, "not_creator");
      expect(answer.status, label(route, answer)).toBe(200);
    },
  ),
  {
    name: "another account's wallet session on ids",
    appliesTo: (route) => takes(route, "session") && namesResources(route),
    async run(route) {
      const parts = requestParts(route, owner.resources.test);
      const session = await signIn(app, other.wallet);
      const answer = await send(app, route, parts, bearerHeader(session));
      expectHidden(route, answer, parts);
      expectNoOwnerData(route, answer, parts);
    },
  },
  foreignIds("a sk_live_ key on sk_test_ resources", "test", () => owner.liveKey, expectHidden),
  foreignIds("a sk_test_ key on sk_live_ resources", "live", () => owner.key, expectHidden),
  {
    // The control of the id attacks: the same reads with the owner's own key do succeed.
    name: "the owner's key on its own ids (control)",
    appliesTo: (route) => takes(route, "apiKey") && namesResources(route) && route.method === "get",
    async run(route) {
      for (const [network, key] of [
        ["test", owner.key],
        ["live", owner.liveKey],
      ] as const) {
        const parts = requestParts(route, owner.resources[network]);
        const answer = await send(app, route, parts, bearerHeader(key));
        expect(answer.status, label(route, answer)).toBe(200);
        // A JSON answer is about the ids asked for (a file or an event stream is not JSON).
        if (answer.contentType.startsWith("application/json"))
          for (const { id } of parts.names) expect(placesOf(answer.body, id)).not.toEqual([]);
      }
    },
  },
  {
    name: "another account's lists",
    appliesTo: (route) =>
      takes(route, "apiKey") && !namesResources(route) && route.method === "get",
    async run(route) {
      const parts = requestParts(route);
      const answer = await send(app, route, parts, bearerHeader(other.key));
      expect(answer.status, label(route, answer)).toBeLessThan(300);
      expectNoOwnerData(route, answer, parts);
    },
  },
];

describe("the security matrix", () => {
  it("covers every guarded route, and every attack aims at some route", () => {
    const guardedRoutes = apiContracts.filter(guarded);
    expect(guardedRoutes.length).toBeGreaterThan(40);
    for (const attack of attacks)
      expect(apiContracts.filter(attack.appliesTo).length, attack.name).toBeGreaterThan(0);
    // Every kind of resource is named by some route, so each one's ids are attacked.
    const named = new Set(apiContracts.flatMap(kindsNamed));
    expect([...named].sort()).toEqual(Object.keys(resourcePrefixes).sort());
  });

  for (const attack of attacks) {
    describe(attack.name, () => {
      for (const route of apiContracts.filter(attack.appliesTo)) {
        it(`${route.method.toUpperCase()} ${route.path}`, () => attack.run(route));
      }
    });
  }
});
