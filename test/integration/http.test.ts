import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAppContext } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { createDatabaseClient } from "../../src/db/client.js";
import { startHttpServer } from "../../src/http/server.js";
import { createLogger } from "../../src/logger.js";
import { createAccountWithKey, startTestApp, type TestApp } from "../helpers/app.js";
import { createTestDatabase } from "../helpers/database.js";

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(() => app.close());

describe("HTTP basics", () => {
  it("answers bad JSON with 400 invalid_json in the error shape", async () => {
    const { key } = await createAccountWithKey(app.ctx);
    const res = await app.request("POST", "/v1/api-keys", {
      token: key,
      body: '{"name": ',
      headers: { "content-type": "application/json" },
    });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({
      error: {
        code: "invalid_json",
        message: expect.any(String),
        requestId: res.headers.get("x-request-id"),
      },
    });
  });

  it("answers bad JSON before authentication is even looked at", async () => {
    const res = await app.request("POST", "/v1/auth/verify", {
      body: "{nope",
      headers: { "content-type": "application/json" },
    });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("invalid_json");
  });

  it("answers an oversized body with 413 payload_too_large", async () => {
    const res = await app.request("POST", "/v1/auth/verify", {
      json: { message: "x".repeat(2_000_000) },
    });
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe("payload_too_large");
  });

  it("answers unknown routes with 404 not_found in the error shape", async () => {
    for (const [method, path] of [
      ["GET", "/nope"],
      ["POST", "/v1/generate/whatever"],
      ["PUT", "/v1/api-keys"],
    ]) {
      const res = await app.request(method as string, path as string);
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.body.error.code).toBe("not_found");
      expect(res.body.error.requestId).toMatch(/^req_/);
    }
  });

  it("echoes a sane X-Request-Id and generates one otherwise", async () => {
    const given = await app.request("GET", "/healthz", {
      headers: { "x-request-id": "trace-abc.123" },
    });
    expect(given.headers.get("x-request-id")).toBe("trace-abc.123");
    const generated = await app.request("GET", "/healthz");
    expect(generated.headers.get("x-request-id")).toMatch(/^req_[0-9a-z]{26}$/);
    const hostile = await app.request("GET", "/healthz", {
      headers: { "x-request-id": 'a b"<script>' },
    });
    expect(hostile.headers.get("x-request-id")).toMatch(/^req_/);
    const logged = app.logs.find((l) => l.includes("trace-abc.123"));
    expect(logged).toBeDefined();
  });

  it("serves /healthz and /readyz", async () => {
    const health = await app.request("GET", "/healthz");
    expect(health).toMatchObject({ status: 200, body: { status: "ok" } });
    const ready = await app.request("GET", "/readyz");
    expect(ready).toMatchObject({ status: 200, body: { status: "ready" } });
  });

  it("never logs credentials", async () => {
    const { key } = await createAccountWithKey(app.ctx);
    const secretPayment = "eyJwYXltZW50IjoidG9wLXNlY3JldCJ9";
    await app.request("GET", "/v1/account", {
      token: key,
      headers: { "payment-signature": secretPayment, cookie: "session=cookie-secret" },
    });
    const created = await app.request("POST", "/v1/api-keys", {
      token: key,
      json: { name: "logged?" },
    });
    const all = app.logs.join("\n");
    expect(all).toContain("/v1/account");
    expect(all).toContain("[redacted]");
    for (const secret of [
      key,
      key.slice(8),
      secretPayment,
      "cookie-secret",
      created.body.key.slice(8),
    ]) {
      expect(all).not.toContain(secret);
    }
  });
});

describe("readiness and failures", () => {
  it("reports 503 not_ready on a database without migrations", async () => {
    const empty = await createTestDatabase({ migrated: false });
    const config = loadConfig({
      NODE_ENV: "test",
      DATABASE_URL: empty.url,
      PORT: "0",
      LOG_LEVEL: "silent",
    });
    const logger = createLogger(config);
    const client = createDatabaseClient(empty.url, { poolMax: 2, logger });
    const server = await startHttpServer(createAppContext(config, logger, client));
    try {
      const res = await fetch(`${server.url}/readyz`);
      expect(res.status).toBe(503);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("not_ready");
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    } finally {
      await server.close();
      await client.close();
      await empty.drop();
    }
  });

  it("answers 500 internal_error without internals when the database is gone", async () => {
    const { key } = await createAccountWithKey(app.ctx);
    const broken = await startTestApp();
    await broken.ctx.pool.end();
    const res = await broken.request("GET", "/v1/account", { token: key });
    expect(res.status).toBe(500);
    expect(res.body.error.code).toBe("internal_error");
    expect(res.body.error.message).not.toMatch(/pool|pg|sql|Error:/i);
    expect(res.body.error.requestId).toMatch(/^req_/);
    const ready = await broken.request("GET", "/readyz");
    expect(ready.status).toBe(503);
    // The cause is logged for engineers.
    expect(broken.logs.some((l) => l.includes("request failed") && l.includes("pool"))).toBe(true);
    await broken.close().catch(() => {}); // its pool is already closed
    await broken.database.drop();
  });
});
