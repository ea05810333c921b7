import { readFileSync } from "node:fs";
import { Validator } from "@seriousme/openapi-schema-validator";
import type { Runner } from "graphile-worker";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { createSiweMessage } from "viem/siwe";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalChain, localTreasuryKey } from "../../src/chain/local-chain.js";
import { getGenerations } from "../../src/domains/generations/history.js";
import { makeWav } from "../../src/domains/providers/wav.js";
import { getWorkflowRun } from "../../src/domains/workflows/service.js";
import { createHttpApp } from "../../src/http/app.js";
import type { OpenApiDocument } from "../../src/http/openapi/document.js";
import { openApiPath } from "../../src/http/openapi/document.js";
import { openApiDocument } from "../../src/http/openapi/routes.js";
import { startWorker } from "../../src/jobs/worker.js";
import {
  createAccountWithKey,
  createFundedCaller,
  startTestApp,
  type TestApp,
} from "../helpers/app.js";
import {
  fundedPayer,
  fundUsdc,
  payingFetch,
  paymentEnv,
  startTestChain,
  treasury,
} from "../helpers/chain.js";
import { earnRoyalties } from "../helpers/creators.js";
import { solidPng } from "../helpers/images.js";
import {
  fromFetch,
  ResponseChecker,
  rawRequest,
  registeredRoutes,
  type SeenResponse,
} from "../helpers/openapi.js";

/**
 * The OpenAPI document against the running app: it is valid OpenAPI 3.1, it names exactly the
 * routes express serves, and real answers of every route — a success and an error each —
 * match the schema it documents for their status.
 */

const METRICS_TOKEN = "metrics-token-for-the-openapi-test";

let chain: LocalChain;
let app: TestApp;
let worker: Runner;
let served: OpenApiDocument;
let checker: ResponseChecker;

beforeAll(async () => {
  chain = await startTestChain("test");
  app = await startTestApp({
    env: {
      ...paymentEnv([chain]),
      RATE_LIMITS: "on",
      METRICS_TOKEN,
      PAYOUT_TEST_KEY: localTreasuryKey(),
    },
  });
  worker = await startWorker(app.ctx);
  const res = await fetch(`${app.url}/openapi.json`);
  served = (await res.json()) as OpenApiDocument;
  checker = new ResponseChecker(served);
});

afterAll(async () => {
  await worker?.stop();
  await app?.close();
  await chain?.stop();
});

// biome-ignore lint/suspicious/noExplicitAny: tests read bodies field by field, once the checker has validated them against the document.
type Body = any;

/** Sends a request and checks its answer against the document; returns it for more checks. */
async function call(
  operation: string,
  path: string,
  options: {
    token?: string;
    json?: unknown;
    body?: string | Buffer;
    headers?: Record<string, string>;
  } = {},
): Promise<SeenResponse & { json: () => Body }> {
  const [method, template] = operation.split(" ") as [string, string];
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  let body = options.body;
  if (options.json !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(options.json);
  }
  const res = await rawRequest(`${app.url}${path}`, {
    method: method.toUpperCase(),
    headers,
    body,
  });
  checker.check(method, template, res);
  return { ...res, json: () => JSON.parse(res.text) };
}

async function checked(operation: string, res: Response) {
  const [method, template] = operation.split(" ") as [string, string];
  const seen = await fromFetch(res);
  checker.check(method, template, seen);
  return { ...seen, json: (): Body => JSON.parse(seen.text) };
}

/** Any route's answer to a JSON body that does not parse: 400 invalid_json. */
async function brokenJson(operation: string, path: string, token?: string) {
  const res = await call(operation, path, {
    token,
    body: "{ not json",
    headers: { "content-type": "application/json" },
  });
  expect(res.status).toBe(400);
  expect(res.json().error.code).toBe("invalid_json");
}

/**
 * Waits for a generation through the service, not the status endpoint: polling over HTTP
 * would spend the poll bucket this file's requests are checked against.
 */
async function finished(accountId: string, generationId: string) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const [generation] = (
      await getGenerations(app.ctx, { accountId, network: "test" }, [generationId])
    ).data;
    if (generation?.status === "completed" || generation?.status === "failed") return generation;
    if (Date.now() > deadline) throw new Error(`${generationId} did not finish`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const image = { prompt: "a lighthouse at dusk", models: ["z-image-turbo"] };

describe("the OpenAPI document", () => {
  it("is valid OpenAPI 3.1", async () => {
    const spec = structuredClone(served) as unknown as Parameters<Validator["validate"]>[0];
    const result = await new Validator().validate(spec);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(served.openapi).toBe("3.1.0");
  });

  it("is what npm run openapi committed", () => {
    expect(served).toEqual(openApiDocument());
    expect(JSON.parse(readFileSync("openapi.json", "utf8"))).toEqual(served);
  });

  it("names every route express serves, and nothing else", () => {
    const routes = registeredRoutes(createHttpApp(app.ctx));
    expect(routes.length).toBeGreaterThan(20);
    const documented = Object.entries(served.paths).flatMap(([path, operations]) =>
      Object.keys(operations).map((method) => `${method} ${path}`),
    );
    // `router.all` (the 405 of /mcp) is documented as each method it refuses.
    const registered = routes.filter((r) => !r.startsWith("* "));
    const catchAll = routes.filter((r) => r.startsWith("* ")).map((r) => openApiPath(r.slice(2)));
    const normalized = registered.map((r) => {
      const [method, path] = r.split(" ") as [string, string];
      return `${method} ${openApiPath(path)}`;
    });
    const ownedByCatchAll = (entry: string) =>
      catchAll.includes(entry.split(" ")[1] as string) && !normalized.includes(entry);
    expect([...new Set(normalized)].sort()).toEqual(
      documented.filter((d) => !ownedByCatchAll(d)).sort(),
    );
    for (const path of catchAll) expect(Object.keys(served.paths)).toContain(path);
  });

  it("has examples that match their own schemas", () => {
    const problems: string[] = [];
    for (const [path, operations] of Object.entries(served.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        const responses = (operation as { responses: Record<string, { content?: object }> })
          .responses;
        for (const [status, response] of Object.entries(responses)) {
          for (const [type, media] of Object.entries(response.content ?? {})) {
            const { example } = media as { example?: unknown };
            if (example === undefined || type !== "application/json") continue;
            try {
              checker.check(method, path, {
                status: Number(status),
                headers: { "x-request-id": "req_example", "content-type": type },
                text: JSON.stringify(example),
              });
            } catch (err) {
              problems.push(String(err));
            }
          }
        }
      }
    }
    checker.seen.clear();
    expect(problems).toEqual([]);
  });
});

describe("GET /docs", () => {
  it("loads only its own assets, all of them served", async () => {
    const page = await fetch(`${app.url}/docs`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    const html = await page.text();
    const urls = [...html.matchAll(/<(?:script|link|img)\b[^>]*?\b(?:src|href)="([^"]+)"/g)].map(
      (m) => m[1] as string,
    );
    // The stylesheet, two icons, Swagger UI and our start-up script.
    expect(urls).toHaveLength(5);
    for (const url of urls) {
      const absolute = new URL(url, `${app.url}/docs`);
      expect(absolute.origin, url).toBe(new URL(app.url).origin);
      const asset = await fetch(absolute);
      expect(asset.status, url).toBe(200);
      expect((await asset.arrayBuffer()).byteLength, url).toBeGreaterThan(0);
    }
    // Swagger UI is pointed at our document and kept off the online validator.
    const init = await (await fetch(`${app.url}/docs/assets/init.js`)).text();
    expect(init).toContain('url: "/openapi.json"');
    expect(init).toContain("validatorUrl: null");
    // Nothing else of the package is served.
    expect((await fetch(`${app.url}/docs/assets/index.html`)).status).toBe(404);
  });
});

describe("every route answers as documented", () => {
  it("operations: health, readiness, the document and the docs", async () => {
    for (const [operation, path] of [
      ["get /healthz", "/healthz"],
      ["get /readyz", "/readyz"],
      ["get /openapi.json", "/openapi.json"],
      ["get /docs", "/docs"],
    ] as const) {
      expect((await call(operation, path)).status).toBe(200);
      await brokenJson(operation, path);
      // Refused by Node's HTTP parser before express, and still answered as documented.
      const huge = await call(operation, path, { headers: { "x-big": "a".repeat(20_000) } });
      expect(huge.status).toBe(431);
      expect(huge.json().error.code).toBe("request_header_too_large");
    }
  });

  it("metrics, behind its token", async () => {
    const scrape = await call("get /metrics", "/metrics", { token: METRICS_TOKEN });
    expect(scrape.status).toBe(200);
    expect(scrape.text).toContain("polyforge_http_request_duration_seconds");
    expect((await call("get /metrics", "/metrics")).status).toBe(401);
  });

  it("sign-in with a wallet, the session and the account", async () => {
    const issued = await call("post /v1/auth/nonce", "/v1/auth/nonce");
    expect(issued.status).toBe(201);
    await brokenJson("post /v1/auth/nonce", "/v1/auth/nonce");

    const wallet = privateKeyToAccount(generatePrivateKey());
    const nonce = issued.json();
    const message = createSiweMessage({
      address: wallet.address,
      chainId: 84532,
      domain: nonce.domain,
      uri: nonce.uri,
      nonce: nonce.nonce,
      version: "1",
      statement: nonce.statement,
      issuedAt: app.clock.now(),
    });
    const signature = await wallet.signMessage({ message });
    // One digit of r changed (always to another): zeroing the tail instead kept the signature
    // valid whenever s ended in 00 and v was 27, which viem also reads as 00.
    const flipped = signature[10] === "0" ? "1" : "0";
    const badSignature = await call("post /v1/auth/verify", "/v1/auth/verify", {
      json: { message, signature: `${signature.slice(0, 10)}${flipped}${signature.slice(11)}` },
    });
    expect(badSignature.status).toBeGreaterThanOrEqual(400);
    const verified = await call("post /v1/auth/verify", "/v1/auth/verify", {
      json: { message, signature },
    });
    expect(verified.status).toBe(201);
    const session = verified.json().sessionToken as string;

    expect((await call("get /v1/account", "/v1/account", { token: session })).status).toBe(200);
    expect((await call("get /v1/account", "/v1/account")).status).toBe(401);

    expect((await call("post /v1/auth/logout", "/v1/auth/logout")).status).toBe(401);
    expect((await call("post /v1/auth/logout", "/v1/auth/logout", { token: session })).status).toBe(
      204,
    );
    // The session is over.
    expect((await call("get /v1/account", "/v1/account", { token: session })).status).toBe(401);
  });

  it("API keys", async () => {
    const { key } = await createAccountWithKey(app.ctx);
    const created = await call("post /v1/api-keys", "/v1/api-keys", {
      token: key,
      json: { name: "docs" },
      headers: { "idempotency-key": "docs-key-1" },
    });
    expect(created.status).toBe(201);
    const replayed = await call("post /v1/api-keys", "/v1/api-keys", {
      token: key,
      json: { name: "docs" },
      headers: { "idempotency-key": "docs-key-1" },
    });
    expect(replayed.headers["idempotent-replayed"]).toBe("true");
    const mismatch = await call("post /v1/api-keys", "/v1/api-keys", {
      token: key,
      json: { name: "live", network: "live" },
    });
    expect(mismatch.status).toBe(403);

    expect((await call("get /v1/api-keys", "/v1/api-keys", { token: key })).status).toBe(200);
    expect((await call("get /v1/api-keys", "/v1/api-keys", { token: "sk_test_nope" })).status).toBe(
      401,
    );

    const id = created.json().id as string;
    const patch = "patch /v1/api-keys/{id}";
    const limits = { limits: { total: 5000, perDay: null } };
    expect((await call(patch, `/v1/api-keys/${id}`, { token: key, json: limits })).status).toBe(
      200,
    );
    expect(
      (await call(patch, `/v1/api-keys/${id}`, { token: key, json: { limits: { total: -1 } } }))
        .status,
    ).toBe(400);
    expect((await call(patch, "/v1/api-keys/key_none", { token: key, json: limits })).status).toBe(
      404,
    );
    const path = "delete /v1/api-keys/{id}";
    expect((await call(path, `/v1/api-keys/${id}`, { token: key })).status).toBe(200);
    expect((await call(path, "/v1/api-keys/key_none", { token: key })).status).toBe(404);
  });

  it("balance, transactions, payments and credit packs", async () => {
    const { key } = await createFundedCaller(app.ctx, 100n);
    expect((await call("get /v1/balance", "/v1/balance", { token: key })).status).toBe(200);
    expect((await call("get /v1/balance", "/v1/balance")).status).toBe(401);
    expect((await call("get /v1/transactions", "/v1/transactions", { token: key })).status).toBe(
      200,
    );
    const badCursor = await call("get /v1/transactions", "/v1/transactions?cursor=zz", {
      token: key,
    });
    expect(badCursor.status).toBe(400);

    const pack = "post /v1/credits/packs/{pack}";
    const unpaid = await call(pack, "/v1/credits/packs/starter");
    expect(unpaid.status).toBe(402);
    expect(unpaid.json().error.code).toBe("payment_required");
    expect((await call(pack, "/v1/credits/packs/mega", { token: key })).status).toBe(400);
    const payer = await fundedPayer(chain, 10n * 10n ** 6n);
    const bought = await checked(
      pack,
      await payingFetch(payer, "test")(`${app.url}/v1/credits/packs/starter`, { method: "POST" }),
    );
    expect(bought.status).toBe(201);
    const walletKey = bought.json().apiKey as string;

    expect((await call("get /v1/payments", "/v1/payments", { token: walletKey })).status).toBe(200);
    expect(
      (await call("get /v1/payments", "/v1/payments?cursor=nope", { token: walletKey })).status,
    ).toBe(400);
    const byNonce = "get /v1/payments/by-nonce/{nonce}";
    const { rows } = await app.ctx.pool.query("select nonce from payments where id = $1", [
      bought.json().payment.id,
    ]);
    expect((await call(byNonce, `/v1/payments/by-nonce/${rows[0].nonce}`)).status).toBe(200);
    expect((await call(byNonce, `/v1/payments/by-nonce/0x${"0".repeat(64)}`)).status).toBe(404);
  });

  it("creator payouts", async () => {
    const { key } = await createAccountWithKey(app.ctx);
    // Royalties of real uses: 1875 credits of fees, of which the creator earns 80%, 1500.
    await earnRoyalties(app, key, 1875n);
    await fundUsdc(chain, treasury, 100n * 10n ** 6n);
    const create = "post /v1/profile/payouts";
    const body = { credits: 1000 };
    const headers = { "idempotency-key": "docs-payout-1" };
    const paid = await call(create, "/v1/profile/payouts", { token: key, json: body, headers });
    expect(paid.status).toBe(201);
    const replayed = await call(create, "/v1/profile/payouts", { token: key, json: body, headers });
    expect(replayed.headers["idempotent-replayed"]).toBe("true");
    const noKey = await call(create, "/v1/profile/payouts", { token: key, json: body });
    expect(noKey.json().error.code).toBe("idempotency_key_required");
    const tooMuch = await call(create, "/v1/profile/payouts", {
      token: key,
      json: body,
      headers: { "idempotency-key": "docs-payout-2" },
    });
    expect(tooMuch.json().error.code).toBe("insufficient_earnings");

    const list = "get /v1/profile/payouts";
    expect((await call(list, "/v1/profile/payouts", { token: key })).status).toBe(200);
    expect((await call(list, "/v1/profile/payouts?cursor=nope", { token: key })).status).toBe(400);
  });

  it("the batch studio", async () => {
    const { key } = await createFundedCaller(app.ctx, 100n);
    const reserved = await call("post /v1/studio/reserve", "/v1/studio/reserve", {
      token: key,
      json: { credits: 50 },
    });
    expect(reserved.status).toBe(201);
    const tooMuch = await call("post /v1/studio/reserve", "/v1/studio/reserve", {
      token: key,
      json: { credits: 5_000 },
    });
    expect(tooMuch.status).toBe(402);
    const settle = "post /v1/studio/settle";
    const { reservationId } = reserved.json();
    expect(
      (await call(settle, "/v1/studio/settle", { token: key, json: { reservationId } })).status,
    ).toBe(200);
    expect(
      (await call(settle, "/v1/studio/settle", { token: key, json: { reservationId: "res_none" } }))
        .status,
    ).toBe(404);
  });

  it("workflows", async () => {
    const { key, account } = await createFundedCaller(app.ctx, 10n);
    const steps = [
      { id: "sketch", request: image },
      {
        id: "paint",
        request: { ...image, prompt: "the same lighthouse, painted" },
        referenceSteps: [{ step: "sketch" }],
      },
    ];
    const create = "post /v1/workflows";
    const created = await call(create, "/v1/workflows", {
      token: key,
      json: { name: "sketch then paint", steps },
    });
    expect(created.status).toBe(201);
    const duplicate = await call(create, "/v1/workflows", {
      token: key,
      json: { name: "twice", steps: [steps[0], steps[0]] },
    });
    expect(duplicate.json().error).toMatchObject({
      code: "duplicate_step_id",
      field: "steps.1.id",
    });
    const { id } = created.json();

    const list = "get /v1/workflows";
    expect((await call(list, "/v1/workflows?limit=5", { token: key })).status).toBe(200);
    expect((await call(list, "/v1/workflows?limit=0", { token: key })).status).toBe(400);
    const read = "get /v1/workflows/{id}";
    expect((await call(read, `/v1/workflows/${id}`, { token: key })).status).toBe(200);
    const unknown = "wf_01arz3ndektsv4rrffq69g5fav";
    expect((await call(read, `/v1/workflows/${unknown}`, { token: key })).status).toBe(404);

    const run = "post /v1/workflows/{id}/run";
    const started = await call(run, `/v1/workflows/${id}/run`, { token: key });
    expect(started.status).toBe(202);
    // 10 credits, 6 of them reserved by the first run: a second run does not fit.
    const broke = await call(run, `/v1/workflows/${id}/run`, { token: key });
    expect(broke.status).toBe(402);
    expect((await call(run, `/v1/workflows/${unknown}/run`, { token: key })).status).toBe(404);

    const readRun = "get /v1/workflows/{id}/runs/{runId}";
    const { runId } = started.json();
    const deadline = Date.now() + 20_000;
    while (
      (await getWorkflowRun(app.ctx, { accountId: account.id, network: "test" }, id, runId))
        .status === "running"
    ) {
      if (Date.now() > deadline) throw new Error(`${runId} did not end`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const done = await call(readRun, `/v1/workflows/${id}/runs/${runId}`, { token: key });
    expect(done.status).toBe(200);
    expect(done.json().status).toBe("completed");
    const noRun = `/v1/workflows/${id}/runs/wfr_01arz3ndektsv4rrffq69g5fav`;
    expect((await call(readRun, noRun, { token: key })).status).toBe(404);

    const remove = "delete /v1/workflows/{id}";
    expect((await call(remove, `/v1/workflows/${id}`, { token: key })).status).toBe(204);
    expect((await call(remove, `/v1/workflows/${id}`, { token: key })).status).toBe(404);
  });

  it("the catalog", async () => {
    expect((await call("get /v1/models", "/v1/models")).status).toBe(200);
    await brokenJson("get /v1/models", "/v1/models");
  });

  it("generations: submit, status, history, events and downloads", async () => {
    const { key, account } = await createFundedCaller(app.ctx, 100n);
    const submitted = await call("post /v1/generate", "/v1/generate", { token: key, json: image });
    expect(submitted.status).toBe(202);
    const badModel = await call("post /v1/generate", "/v1/generate", {
      token: key,
      json: { ...image, models: ["no-such-model"] },
    });
    expect(badModel.json().error.code).toBe("invalid_model");
    const unpaid = await call("post /v1/generate", "/v1/generate", { json: image });
    expect(unpaid.status).toBe(402);
    const paid = await checked(
      "post /v1/generate",
      await payingFetch(await fundedPayer(chain, 10n ** 6n), "test")(`${app.url}/v1/generate`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(image),
      }),
    );
    expect(paid.status).toBe(202);
    expect(paid.json().accessToken).toMatch(/^gat_/);

    const { generationId } = submitted.json();
    const done = await finished(account.id, generationId);
    expect(done.status).toBe("completed");

    const status = "get /v1/generate/status";
    expect(
      (await call(status, `/v1/generate/status?ids=${generationId}`, { token: key })).status,
    ).toBe(200);
    const byToken = await call(status, `/v1/generate/status?ids=${paid.json().generationId}`, {
      token: paid.json().accessToken,
    });
    expect(byToken.status).toBe(200);
    expect((await call(status, "/v1/generate/status", { token: key })).status).toBe(400);

    expect((await call("get /v1/history", "/v1/history?limit=5", { token: key })).status).toBe(200);
    expect((await call("get /v1/history", "/v1/history?limit=0", { token: key })).status).toBe(400);

    const events = "get /v1/generate/{id}/events";
    const stream = await call(events, `/v1/generate/${generationId}/events`, { token: key });
    expect(stream.status).toBe(200);
    expect(stream.text).toContain("event: done");
    const unknown = "gen_01arz3ndektsv4rrffq69g5fav";
    expect((await call(events, `/v1/generate/${unknown}/events`, { token: key })).status).toBe(404);

    const imageUrl = new URL(done.results[0]?.imageUrl as string);
    const download = "get /v1/download";
    expect((await call(download, `${imageUrl.pathname}${imageUrl.search}`)).status).toBe(200);
    const forged = `${imageUrl.pathname}${imageUrl.search.replace(/signature=[^&]+/, "signature=forged")}`;
    expect((await call(download, forged)).status).toBe(404);
  });

  it("creators: passes, templates, quotes, earnings and analytics", async () => {
    const creator = await createFundedCaller(app.ctx, 100n);
    const user = await createFundedCaller(app.ctx, 100n);
    const created = await call("post /v1/passes", "/v1/passes", {
      token: creator.key,
      json: {
        name: "Ink",
        stylePrompt: "ink wash",
        negativePrompt: "photo",
        fee: 2,
        tags: ["ink"],
      },
    });
    expect(created.status).toBe(201);
    const passId = created.json().id as string;
    const badPass = await call("post /v1/passes", "/v1/passes", {
      token: creator.key,
      json: { name: "Ink", stylePrompt: "ink wash", fee: -1 },
    });
    expect(badPass.status).toBe(400);
    expect(
      (await call("get /v1/passes", "/v1/passes?sort=fee_desc", { token: user.key })).status,
    ).toBe(200);
    expect(
      (await call("get /v1/passes", "/v1/passes?cursor=nope", { token: user.key })).status,
    ).toBe(400);
    const one = "get /v1/passes/{id}";
    expect((await call(one, `/v1/passes/${passId}`, { token: user.key })).status).toBe(200);
    const nowhere = "pass_01arz3ndektsv4rrffq69g5fav";
    expect((await call(one, `/v1/passes/${nowhere}`, { token: user.key })).status).toBe(404);
    const patch = "patch /v1/passes/{id}";
    const path = `/v1/passes/${passId}`;
    expect((await call(patch, path, { token: creator.key, json: { fee: 3 } })).status).toBe(200);
    expect((await call(patch, path, { token: user.key, json: { fee: 1 } })).status).toBe(403);

    const template = await call("post /v1/templates", "/v1/templates", {
      token: creator.key,
      json: { name: "Shot", text: "a photo of {{subject}}", variables: { subject: {} } },
    });
    expect(template.status).toBe(201);
    const templateId = template.json().id as string;
    const undeclared = await call("post /v1/templates", "/v1/templates", {
      token: creator.key,
      json: { name: "Shot", text: "a photo of {{subject}}" },
    });
    expect(undeclared.json().error.code).toBe("invalid_template");
    expect((await call("get /v1/templates", "/v1/templates", { token: user.key })).status).toBe(
      200,
    );
    expect(
      (await call("get /v1/templates", "/v1/templates?limit=0", { token: user.key })).status,
    ).toBe(400);
    const tpl = "get /v1/templates/{id}";
    expect((await call(tpl, `/v1/templates/${templateId}`, { token: user.key })).status).toBe(200);
    expect(
      (await call(tpl, "/v1/templates/tpl_01arz3ndektsv4rrffq69g5fav", { token: user.key })).status,
    ).toBe(404);

    const styled = {
      templateId,
      templateVariables: { subject: "a heron" },
      stylePassIds: [passId],
      models: image.models,
    };
    const quoted = await call("post /v1/generate/quote", "/v1/generate/quote", {
      token: user.key,
      json: styled,
    });
    expect(quoted.status).toBe(200);
    const missing = await call("post /v1/generate/quote", "/v1/generate/quote", {
      token: user.key,
      json: { ...styled, templateVariables: {} },
    });
    expect(missing.json().error.code).toBe("missing_template_variable");
    const submitted = await call("post /v1/generate", "/v1/generate", {
      token: user.key,
      json: styled,
    });
    expect(submitted.status).toBe(202);
    expect((await finished(user.account.id, submitted.json().generationId)).status).toBe(
      "completed",
    );
    const status = await call(
      "get /v1/generate/status",
      `/v1/generate/status?ids=${submitted.json().generationId}`,
      { token: user.key },
    );
    expect(status.json().generations[submitted.json().generationId].stylePassIds).toEqual([passId]);

    const earnings = await call("get /v1/profile/earnings", "/v1/profile/earnings", {
      token: creator.key,
    });
    expect(earnings.json().passes[0].uses).toBe(1);
    expect((await call("get /v1/profile/earnings", "/v1/profile/earnings")).status).toBe(401);
    const analytics = "get /v1/profile/analytics";
    expect(
      (await call(analytics, "/v1/profile/analytics?range=30d", { token: creator.key })).status,
    ).toBe(200);
    expect(
      (await call(analytics, "/v1/profile/analytics?range=1y", { token: creator.key })).status,
    ).toBe(400);

    const archive = "post /v1/passes/{id}/archive";
    expect((await call(archive, `${path}/archive`, { token: creator.key })).status).toBe(200);
    expect((await call(archive, `${path}/archive`, { token: user.key })).status).toBe(403);
  });

  it("batches", async () => {
    const { key } = await createFundedCaller(app.ctx, 100n);
    const batch = "post /v1/generate/batch";
    const requests = [image, { ...image, prompt: "a lighthouse at dawn" }];
    const submitted = await call(batch, "/v1/generate/batch", { token: key, json: { requests } });
    expect(submitted.status).toBe(202);
    expect(submitted.json().batchId).toMatch(/^bat_/);
    const badItem = await call(batch, "/v1/generate/batch", {
      token: key,
      json: { requests: [image, { ...image, models: ["no-such-model"] }] },
    });
    expect(badItem.json().error).toMatchObject({
      code: "invalid_model",
      field: "requests.1.models",
    });
    const unpaid = await call(batch, "/v1/generate/batch", { json: { requests } });
    expect(unpaid.status).toBe(402);
    const paid = await checked(
      batch,
      await payingFetch(await fundedPayer(chain, 10n ** 6n), "test")(
        `${app.url}/v1/generate/batch`,
        {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ requests }),
        },
      ),
    );
    expect(paid.status).toBe(202);
    expect(paid.json().generations[1].accessToken).toMatch(/^gat_/);
  });

  it("OpenAI-compatible images", async () => {
    const { key } = await createFundedCaller(app.ctx, 100n);
    const path = "post /v1/images/generations";
    const images = await call(path, "/v1/images/generations", {
      token: key,
      json: { model: "z-image-turbo", prompt: "a lighthouse", size: "1024x1024" },
    });
    expect(images.status).toBe(200);
    const b64 = await call(path, "/v1/images/generations", {
      token: key,
      json: { model: "z-image-turbo", prompt: "a lighthouse", response_format: "b64_json" },
    });
    expect(b64.status).toBe(200);
    const unknown = await call(path, "/v1/images/generations", {
      token: key,
      json: { model: "no-such-model", prompt: "a lighthouse" },
    });
    expect(unknown.status).toBe(400);
    const unpaid = await call(path, "/v1/images/generations", {
      json: { model: "z-image-turbo", prompt: "a lighthouse" },
    });
    expect(unpaid.status).toBe(402);
  });

  it("OpenAI-compatible chat", async () => {
    const { key } = await createFundedCaller(app.ctx, 100n);
    const path = "post /v1/chat/completions";
    const messages = [{ role: "user", content: "name a lighthouse" }];
    const reply = await call(path, "/v1/chat/completions", {
      token: key,
      json: { model: "gpt-5.4-mini", messages, max_tokens: 50 },
    });
    expect(reply.status).toBe(200);
    const unknown = await call(path, "/v1/chat/completions", {
      token: key,
      json: { model: "no-such-model", messages },
    });
    expect(unknown.status).toBe(400);
    const unpaid = await call(path, "/v1/chat/completions", {
      json: { model: "gpt-5.4-mini", messages },
    });
    expect(unpaid.status).toBe(402);
  });

  it("video jobs", async () => {
    const { key, account } = await createFundedCaller(app.ctx, 100n);
    const create = "post /v1/videos/jobs";
    const job = await call(create, "/v1/videos/jobs", {
      token: key,
      json: { model: "sora-2-preview", prompt: "waves at night", duration: 4 },
    });
    expect(job.status).toBe(202);
    const noDuration = await call(create, "/v1/videos/jobs", {
      token: key,
      json: { model: "sora-2-preview", prompt: "waves at night" },
    });
    expect(noDuration.json().error.code).toBe("duration_required");

    const read = "get /v1/videos/jobs/{id}";
    const { id } = job.json();
    await finished(account.id, id);
    expect((await call(read, `/v1/videos/jobs/${id}`, { token: key })).status).toBe(200);
    const unknown = "gen_01arz3ndektsv4rrffq69g5fav";
    expect((await call(read, `/v1/videos/jobs/${unknown}`, { token: key })).status).toBe(404);
  });

  it("uploads", async () => {
    const { key } = await createAccountWithKey(app.ctx);
    const form = (bytes: Buffer) => {
      const data = new FormData();
      data.append("file", new Blob([new Uint8Array(bytes)]), "photo.png");
      return data;
    };
    const upload = "post /v1/upload-image";
    const send = (bytes: Buffer) =>
      fetch(`${app.url}/v1/upload-image`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}` },
        body: form(bytes),
      });
    const stored = await checked(upload, await send(await solidPng(32, 24)));
    expect(stored.status).toBe(201);
    const notImage = await checked(upload, await send(Buffer.from("not an image at all")));
    expect(notImage.json().error.code).toBe("invalid_image");

    const read = "get /v1/uploads/{id}";
    const { id } = stored.json();
    expect((await call(read, `/v1/uploads/${id}`, { token: key })).status).toBe(200);
    expect(
      (await call(read, "/v1/uploads/img_01arz3ndektsv4rrffq69g5fav", { token: key })).status,
    ).toBe(404);
  });

  it("OpenAI-compatible speech and transcription", async () => {
    const speech = "post /v1/audio/speech";
    const speaker = await createFundedCaller(app.ctx, 100n);
    const spoken = await call(speech, "/v1/audio/speech", {
      token: speaker.key,
      json: { model: "tts-1", input: "a lighthouse", voice: "alloy", response_format: "wav" },
    });
    expect(spoken.status).toBe(200);
    expect(spoken.text.startsWith("RIFF")).toBe(true);
    const badVoice = await call(speech, "/v1/audio/speech", {
      token: speaker.key,
      json: { model: "tts-1", input: "a lighthouse", voice: "nobody" },
    });
    expect(badVoice.status).toBe(400);

    const transcription = "post /v1/audio/transcriptions";
    const listener = await createFundedCaller(app.ctx, 100n);
    const send = (bytes: Buffer, format = "json") => {
      const form = new FormData();
      form.append("model", "whisper-1");
      form.append("response_format", format);
      form.append("file", new Blob([new Uint8Array(bytes)]), "speech.wav");
      return fetch(`${app.url}/v1/audio/transcriptions`, {
        method: "POST",
        headers: { authorization: `Bearer ${listener.key}` },
        body: form,
      });
    };
    const text = await checked(transcription, await send(makeWav({ seconds: 2, seed: "o" })));
    expect(text.status).toBe(200);
    const plain = await checked(
      transcription,
      await send(makeWav({ seconds: 1, seed: "p" }), "text"),
    );
    expect(plain.status).toBe(200);
    const unreadable = await checked(transcription, await send(Buffer.from("not audio")));
    expect(unreadable.json().error.code).toBe("invalid_audio");
  });

  it("the webhook secret", async () => {
    const { key } = await createAccountWithKey(app.ctx);
    for (const [operation, path] of [
      ["get /v1/webhooks/secret", "/v1/webhooks/secret"],
      ["post /v1/webhooks/secret/rotate", "/v1/webhooks/secret/rotate"],
    ] as const) {
      expect((await call(operation, path, { token: key })).status).toBe(200);
      expect((await call(operation, path)).status).toBe(401);
    }
  });

  it("MCP over Streamable HTTP", async () => {
    const { key } = await createAccountWithKey(app.ctx);
    const initialize = {
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: {
        protocolVersion: "2025-06-18",
        capabilities: {},
        clientInfo: { name: "openapi-test", version: "1" },
      },
    };
    const ok = await call("post /mcp", "/mcp", {
      token: key,
      json: initialize,
      headers: { accept: "application/json, text/event-stream" },
    });
    expect(ok.status).toBe(200);
    const notAcceptable = await call("post /mcp", "/mcp", { token: key, json: initialize });
    expect(notAcceptable.status).toBe(406);
    expect((await call("post /mcp", "/mcp", { json: initialize })).status).toBe(401);
    expect((await call("get /mcp", "/mcp", { token: key })).status).toBe(405);
    expect((await call("delete /mcp", "/mcp", { token: key })).status).toBe(405);
  });

  it("rate limits: 429 rate_limited with its headers in the generate, batch and poll buckets", async () => {
    const { key } = await createFundedCaller(app.ctx, 1_000n);
    // Free tier: generate 5, batch 25, poll 50 a minute, counting generations that start (a
    // refused body is given back). Windows are whole minutes: one may end mid-loop, so go on
    // until refused, for at most two windows' worth.
    const untilRefused = async (operation: string, path: string, limit: number, json?: unknown) => {
      for (let i = 0; i <= 2 * limit + 1; i++) {
        const res = await call(operation, path, { token: key, json });
        if (res.status === 429) return res;
      }
      throw new Error(`${operation} was never refused`);
    };
    const image = { prompt: "a kite", models: ["z-image-turbo"] };
    const generate = await untilRefused("post /v1/generate", "/v1/generate", 5, image);
    expect(generate.json().error).toMatchObject({ code: "rate_limited", bucket: "generate" });
    const batch = await untilRefused("post /v1/generate/batch", "/v1/generate/batch", 25, {
      requests: [image],
    });
    expect(batch.json().error).toMatchObject({ code: "rate_limited", bucket: "batch" });
    const poll = await untilRefused("get /v1/history", "/v1/history", 50);
    expect(poll.json().error).toMatchObject({ code: "rate_limited", bucket: "poll" });
  });

  it("covered a success and an error of every documented operation", () => {
    const missing: string[] = [];
    for (const [path, operations] of Object.entries(served.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        const seen = checker.seen.get(`${method} ${path}`);
        const documentsSuccess = Object.keys((operation as { responses: object }).responses).some(
          (status) => Number(status) < 400,
        );
        if (documentsSuccess && !seen?.success.length) missing.push(`${method} ${path}: success`);
        if (!seen?.error.length) missing.push(`${method} ${path}: error`);
      }
    }
    expect(missing).toEqual([]);
  });
});
