import { readdirSync, readFileSync } from "node:fs";
import { connect } from "node:net";
import path from "node:path";
import { eq } from "drizzle-orm";
import type { Runner } from "graphile-worker";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrationsFolder } from "../../src/db/migrate.js";
import { generations, idempotencyKeys } from "../../src/db/schema.js";
import { canonicalJson } from "../../src/domains/idempotency/service.js";
import { signedUploadUrl } from "../../src/domains/uploads/service.js";
import { startWorker } from "../../src/jobs/worker.js";
import {
  createAccountWithKey,
  createFundedCaller,
  startTestApp,
  type TestApp,
} from "../helpers/app.js";
import { solidPng } from "../helpers/images.js";

/** Defects a hostile battery found (issue #16): each answered as a 4xx, never a 500. */

let app: TestApp;
let worker: Runner;
beforeAll(async () => {
  app = await startTestApp();
  worker = await startWorker(app.ctx);
});
afterAll(async () => {
  await worker?.stop();
  await app?.close();
});

/** `depth` arrays, one inside the other, around 1, as JSON (too deep for JSON.stringify). */
const nestedJson = (depth: number) => `${"[".repeat(depth)}1${"]".repeat(depth)}`;

/** `depth` arrays, one inside the other, around 1. */
const nested = (depth: number): unknown => {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = [value];
  return value;
};

describe("API key secrets and Idempotency-Key", () => {
  const storedResponses = async (accountId: string) =>
    (await app.ctx.db.select().from(idempotencyKeys)).filter((row) =>
      row.accountId.startsWith(`${accountId}:`),
    );

  it("a replay of key creation answers without the secret, revoked or not; the secret is never stored", async () => {
    const { key, account } = await createAccountWithKey(app.ctx);
    const headers = { "idempotency-key": "create-ci-key" };
    const created = await app.request("POST", "/v1/api-keys", {
      token: key,
      json: { name: "ci" },
      headers,
    });
    expect(created.status).toBe(201);
    const secret: string = created.body.key;
    expect(secret).toMatch(/^sk_test_/);
    expect(created.headers.get("idempotent-withheld")).toBeNull();

    const rows = await storedResponses(account.id);
    expect(rows).toHaveLength(1);
    expect(rows[0]?.statusCode).toBe(201);
    expect(rows[0]?.response).toMatchObject({ id: created.body.id, name: "ci" });
    expect(JSON.stringify(rows)).not.toContain(secret.slice(8));

    const replayed = await app.request("POST", "/v1/api-keys", {
      token: key,
      json: { name: "ci" },
      headers,
    });
    expect(replayed.status).toBe(201);
    expect(replayed.headers.get("idempotent-replayed")).toBe("true");
    expect(replayed.headers.get("idempotent-withheld")).toBe("key");
    const { key: _secret, ...withoutSecret } = created.body;
    expect(replayed.body).toEqual(withoutSecret);

    const revoked = await app.request("DELETE", `/v1/api-keys/${created.body.id}`, { token: key });
    expect(revoked.status).toBe(200);
    const afterRevoke = await app.request("POST", "/v1/api-keys", {
      token: key,
      json: { name: "ci" },
      headers,
    });
    expect(afterRevoke.status).toBe(201);
    expect(afterRevoke.body.key).toBeUndefined();
    expect(JSON.stringify(afterRevoke.body)).not.toContain(secret.slice(8));
  });

  it("migration 0013 scrubs the secrets idempotency records kept before", async () => {
    const file = readdirSync(migrationsFolder).find((f) => f.startsWith("0013_")) as string;
    const migration = readFileSync(path.join(migrationsFolder, file), "utf8");
    const secret = `sk_test_${"a".repeat(64)}`;
    const owner = `acc_migration_${Date.now()}`;
    await app.ctx.db.insert(idempotencyKeys).values([
      {
        accountId: `${owner}:test`,
        key: "old-key-create",
        requestHash: "h1",
        statusCode: 201,
        response: { id: "key_old", name: "laptop", last4: "aaaa", key: secret },
      },
      {
        accountId: `${owner}:test`,
        key: "old-generate",
        requestHash: "h2",
        statusCode: 202,
        response: { generationId: "gen_old", cost: 4 },
      },
    ]);
    for (const statement of migration.split("--> statement-breakpoint")) {
      await app.ctx.pool.query(statement);
    }
    const rows = await storedResponses(owner);
    const byKey = Object.fromEntries(rows.map((r) => [r.key, r.response]));
    expect(byKey["old-key-create"]).toEqual({ id: "key_old", name: "laptop", last4: "aaaa" });
    expect(byKey["old-generate"]).toEqual({ generationId: "gen_old", cost: 4 });
  });
});

describe("deeply nested JSON", () => {
  it("is refused with 400 invalid_request on every route, with an Idempotency-Key too", async () => {
    const { key } = await createFundedCaller(app.ctx, 100n);
    const deep = `{"prompt":"x","models":["z-image-turbo"],"seed":${nestedJson(100_000)}}`;
    for (const route of ["/v1/generate", "/v1/api-keys", "/v1/templates", "/v1/workflows"]) {
      const res = await app.request("POST", route, {
        token: key,
        body: deep,
        headers: { "content-type": "application/json", "idempotency-key": `deep-${route}` },
      });
      expect(res.status, route).toBe(400);
      expect(res.body.error).toMatchObject({
        code: "invalid_request",
        message: "Invalid request: the body nests deeper than 32 levels.",
      });
    }
    // Just past the limit is refused as too deep; within it, the route's own validation answers.
    const tooDeep = await app.request("POST", "/v1/api-keys", {
      token: key,
      json: { name: "n", extra: nested(32) },
    });
    expect(tooDeep.body.error.message).toMatch(/nests deeper than 32 levels/);
    const within = await app.request("POST", "/v1/api-keys", {
      token: key,
      json: { name: "n", extra: nested(30) },
    });
    expect(within.status).toBe(400);
    expect(within.body.error.message).not.toMatch(/nests deeper/);
  });

  it("is refused on /mcp before a tool sees it", async () => {
    const { key } = await createFundedCaller(app.ctx, 100n);
    const res = await app.request("POST", "/mcp", {
      token: key,
      headers: {
        accept: "application/json, text/event-stream",
        "content-type": "application/json",
      },
      body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"generate_image","arguments":{"prompt":"x","extra":${nestedJson(100_000)}}}}`,
    });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("invalid_request");
  });

  it("hashes without recursion, whatever the depth", () => {
    expect(canonicalJson(nested(200_000))).toHaveLength(400_001);
    expect(canonicalJson({ b: [1, { d: undefined, c: "x" }], a: null })).toBe(
      '{"a":null,"b":[1,{"c":"x","d":null}]}',
    );
  });
});

describe("an unknown reservationId", () => {
  it("is 404 not_found for the reservation, and nothing is held or written", async () => {
    const { key, account } = await createFundedCaller(app.ctx, 100n);
    const other = await createFundedCaller(app.ctx, 100n);
    const theirs = await app.request("POST", "/v1/studio/reserve", {
      token: other.key,
      json: { credits: 50 },
    });
    expect(theirs.status).toBe(201);
    for (const reservationId of ["res_doesnotexist", theirs.body.reservationId]) {
      const res = await app.request("POST", "/v1/generate", {
        token: key,
        json: { prompt: "x", models: ["z-image-turbo"], reservationId },
      });
      expect(res.status, reservationId).toBe(404);
      expect(res.body.error).toMatchObject({
        code: "not_found",
        message: "Reservation not found.",
      });
    }
    const settle = await app.request("POST", "/v1/studio/settle", {
      token: key,
      json: { reservationId: "res_doesnotexist" },
    });
    expect(settle.body.error).toMatchObject({
      code: "not_found",
      message: "Reservation not found.",
    });
    const balance = await app.request("GET", "/v1/balance", { token: key });
    expect(balance.body).toMatchObject({ creditBalance: 100, heldCredits: 0 });
    expect(
      await app.ctx.db.select().from(generations).where(eq(generations.accountId, account.id)),
    ).toEqual([]);
  });
});

describe("a NUL character", () => {
  it("is refused with 400 at validation in generate, templates and workflows, naming the field", async () => {
    const { key } = await createFundedCaller(app.ctx, 100n);
    const cases: Array<[string, unknown, string]> = [
      ["/v1/generate", { prompt: "a\u0000b", models: ["z-image-turbo"] }, "prompt"],
      [
        "/v1/templates",
        { name: "t", text: "a {{mood}} sea", variables: { mood: { default: "calm\u0000" } } },
        "variables.mood.default",
      ],
      [
        "/v1/templates",
        { name: "t", text: "a sea", variables: { "mo\u0000od": {} } },
        "variables.mo\\u0000od",
      ],
      [
        "/v1/workflows",
        {
          name: "w",
          steps: [{ id: "a", request: { prompt: "x\u0000", models: ["z-image-turbo"] } }],
        },
        "steps.0.request.prompt",
      ],
    ];
    for (const [route, json, field] of cases) {
      const res = await app.request("POST", route, { token: key, json });
      expect(res.status, `${route} ${field}`).toBe(400);
      expect(res.body.error).toMatchObject({
        code: "invalid_request",
        message: `Invalid request: ${field}: must not contain a NUL character.`,
        issues: [{ path: field, message: "must not contain a NUL character" }],
      });
    }
    const query = await app.request("GET", "/v1/history?model=a%00b", { token: key });
    expect(query.status).toBe(400);
    expect(query.body.error.message).toBe(
      "Invalid request: model: must not contain a NUL character.",
    );
  });
});

describe("oversized headers", () => {
  /**
   * Sends `first` (if any) on one raw socket and waits for its answer, then the oversized
   * request on the same socket; resolves with what came back after the first answer.
   */
  const oversized = (first?: string) =>
    new Promise<string>((resolve, reject) => {
      const url = new URL(app.url);
      const socket = connect(Number(url.port), url.hostname);
      const big = `GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`;
      let answer = "";
      let sentBig = first === undefined;
      socket.on("data", (chunk) => {
        answer += chunk.toString("utf8");
        if (!sentBig && answer.includes('{"status":"ok"}')) {
          sentBig = true;
          answer = "";
          socket.write(big);
        }
      });
      socket.on("end", () => resolve(answer));
      socket.on("error", reject);
      socket.write(first ?? big);
    });

  it("are 431 request_header_too_large in the error shape, on a fresh or a kept-alive socket", async () => {
    for (const first of [undefined, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"]) {
      const raw = await oversized(first);
      const [head = "", body = ""] = raw.split("\r\n\r\n");
      expect(head).toMatch(/^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/);
      expect(head).toMatch(/\r\ncontent-type: application\/json; charset=utf-8/i);
      const requestId = /\r\nx-request-id: (req_\w+)/i.exec(head)?.[1];
      expect(requestId).toBeDefined();
      expect(JSON.parse(body)).toEqual({
        error: {
          code: "request_header_too_large",
          message: expect.stringMatching(/headers are too large/),
          requestId,
        },
      });
    }
  });

  it("are documented as 431 for every operation", async () => {
    const document = (await app.request("GET", "/openapi.json")).body;
    const missing: string[] = [];
    for (const [route, operations] of Object.entries<Record<string, { responses: object }>>(
      document.paths,
    )) {
      for (const [method, operation] of Object.entries(operations)) {
        if (!("431" in operation.responses)) missing.push(`${method} ${route}`);
      }
    }
    expect(Object.keys(document.paths).length).toBeGreaterThan(10);
    expect(missing).toEqual([]);
  });
});

describe("signed URLs in the request log", () => {
  it("have their signature redacted, downloads and uploads alike", async () => {
    const { key } = await createFundedCaller(app.ctx, 100n);
    const images = await app.request("POST", "/v1/images/generations", {
      token: key,
      json: { model: "z-image-turbo", prompt: "a red kite", response_format: "url" },
    });
    expect(images.status, JSON.stringify(images.body)).toBe(200);
    const download = new URL(images.body.data[0].url);

    const form = new FormData();
    form.append("file", new Blob([new Uint8Array(await solidPng(8, 8))], { type: "image/png" }));
    const uploaded = await fetch(`${app.url}/v1/upload-image`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}` },
      body: form,
    });
    const { id: uploadId } = (await uploaded.json()) as { id: string };
    const upload = new URL(signedUploadUrl(app.ctx, uploadId, 3600));

    const signatures: string[] = [];
    for (const url of [download, upload]) {
      const opened = await fetch(app.url + url.pathname + url.search);
      expect(opened.status, url.pathname).toBe(200);
      signatures.push(url.searchParams.get("signature") as string);
    }
    const all = app.logs.join("\n");
    expect(all).toContain(`/v1/download?id=${download.searchParams.get("id")}`);
    expect(all).toContain(`${upload.pathname}?expires=${upload.searchParams.get("expires")}`);
    expect(all).toContain("signature=[redacted]");
    for (const signature of signatures) {
      expect(signature).toMatch(/^[\w-]{43}$/);
      expect(all).not.toContain(signature);
    }
  });
});
