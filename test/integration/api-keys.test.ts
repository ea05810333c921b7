import { and, eq, isNull } from "drizzle-orm";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiKeys } from "../../src/db/schema.js";
import { findOrCreateWalletAccount } from "../../src/domains/accounts/service.js";
import { createApiKey } from "../../src/domains/keys/service.js";
import { sha256Hex } from "../../src/lib/secrets.js";
import { createAccountWithKey, startTestApp, type TestApp } from "../helpers/app.js";

const randomWallet = () => privateKeyToAccount(generatePrivateKey()).address;

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(() => app.close());

describe("API keys", () => {
  it("are shown once at creation and stored only as a SHA-256 hash", async () => {
    const { key } = await createAccountWithKey(app.ctx, "test");
    const created = await app.request("POST", "/v1/api-keys", {
      token: key,
      json: { name: "ci" },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: "ci", network: "test", prefix: "sk_test_" });
    const secret: string = created.body.key;
    expect(secret).toMatch(/^sk_test_[0-9A-Za-z]{64}$/);
    expect(created.body.last4).toBe(secret.slice(-4));

    const [row] = await app.ctx.db.select().from(apiKeys).where(eq(apiKeys.id, created.body.id));
    expect(row?.keyHash).toBe(sha256Hex(secret));
    // The row's bigint columns (spend counters) as strings.
    const text = JSON.stringify(row, (_, v) => (typeof v === "bigint" ? v.toString() : v));
    expect(text).not.toContain(secret.slice(8));

    const listed = await app.request("GET", "/v1/api-keys", { token: key });
    expect(listed.status).toBe(200);
    const entry = listed.body.data.find((k: { id: string }) => k.id === created.body.id);
    expect(entry).toMatchObject({ name: "ci", prefix: "sk_test_", last4: secret.slice(-4) });
    expect(entry).toHaveProperty("createdAt");
    expect(entry).toHaveProperty("lastUsedAt");
    expect(JSON.stringify(listed.body)).not.toContain(secret.slice(8));
    expect(entry.key).toBeUndefined();

    // The new key works, and its use is recorded.
    const me = await app.call("getAccount", { token: secret });
    expect(me.status).toBe(200);
    const [used] = await app.ctx.db.select().from(apiKeys).where(eq(apiKeys.id, created.body.id));
    expect(used?.lastUsedAt).toBeInstanceOf(Date);
  });

  it("allow at most 3 active per account: exactly 3 of 10 concurrent creates succeed", async () => {
    const account = await findOrCreateWalletAccount(app.ctx, randomWallet());
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) =>
        createApiKey(app.ctx, { accountId: account.id }, { name: `k${i}`, network: "test" }),
      ),
    );
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(3);
    for (const r of results.filter((r) => r.status === "rejected")) {
      expect(r.reason).toMatchObject({ code: "api_key_limit_reached" });
    }
    const active = await app.ctx.db
      .select()
      .from(apiKeys)
      .where(and(eq(apiKeys.accountId, account.id), isNull(apiKeys.revokedAt)));
    expect(active).toHaveLength(3);
  });

  it("refuse a fourth key over HTTP with 409 api_key_limit_reached", async () => {
    const { key } = await createAccountWithKey(app.ctx, "test");
    const responses = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        app.call("createApiKey", { token: key, json: { name: `n${i}` } }),
      ),
    );
    const statuses = responses.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 201)).toHaveLength(2);
    expect(statuses.filter((s) => s === 409)).toHaveLength(8);
    const refused = responses.find((r) => r.status === 409);
    expect(refused?.body.error.code).toBe("api_key_limit_reached");
    const listed = await app.call("listApiKeys", { token: key });
    expect(listed.body.data).toHaveLength(3);
  });

  it("revoked keys fail on the very next request", async () => {
    const { key, apiKey } = await createAccountWithKey(app.ctx, "test");
    const other = await app.call("createApiKey", { token: key, json: { name: "b" } });
    const revoked = await app.call("revokeApiKey", {
      params: { id: apiKey.id },
      token: other.body.key,
    });
    expect(revoked.status).toBe(200);
    expect(revoked.body.revokedAt).toBeTruthy();
    const next = await app.call("getAccount", { token: key });
    expect(next.status).toBe(401);
    expect(next.body.error.code).toBe("invalid_api_key");
    // Revoking again is harmless and reports the same key.
    const again = await app.call("revokeApiKey", {
      params: { id: apiKey.id },
      token: other.body.key,
    });
    expect(again.status).toBe(200);
    expect(again.body.revokedAt).toBe(revoked.body.revokedAt);
    // A key can revoke itself; it is refused from then on.
    const self = await app.call("revokeApiKey", {
      params: { id: other.body.id },
      token: other.body.key,
    });
    expect(self.status).toBe(200);
    expect((await app.call("listApiKeys", { token: other.body.key })).status).toBe(401);
  });

  it("keep live and test apart: a test key cannot list, create or revoke live keys", async () => {
    const { key: testKey, account } = await createAccountWithKey(app.ctx, "test");
    const live = await createApiKey(
      app.ctx,
      { accountId: account.id },
      { name: "prod", network: "live" },
    );

    const listed = await app.call("listApiKeys", { token: testKey });
    expect(listed.body.data.map((k: { network: string }) => k.network)).toEqual(["test"]);
    const filtered = await app.call("listApiKeys", { query: { network: "live" }, token: testKey });
    expect(filtered.body.data).toEqual([]);

    const revoke = await app.call("revokeApiKey", {
      params: { id: live.apiKey.id },
      token: testKey,
    });
    expect(revoke.status).toBe(404);
    expect(revoke.body.error.code).toBe("not_found");

    const create = await app.call("createApiKey", {
      token: testKey,
      json: { name: "x", network: "live" },
    });
    expect(create.status).toBe(403);
    expect(create.body.error.code).toBe("network_mismatch");

    // The live key still works and sees only live.
    const liveList = await app.call("listApiKeys", { token: live.key });
    expect(liveList.body.data.map((k: { network: string }) => k.network)).toEqual(["live"]);
    const account_ = await app.call("getAccount", { token: live.key });
    expect(account_.body.network).toBe("live");
  });

  it("cannot see or revoke another account's keys", async () => {
    const a = await createAccountWithKey(app.ctx, "test");
    const b = await createAccountWithKey(app.ctx, "test");
    const revoke = await app.call("revokeApiKey", { params: { id: b.apiKey.id }, token: a.key });
    expect(revoke.status).toBe(404);
    const listed = await app.call("listApiKeys", { token: a.key });
    expect(listed.body.data.map((k: { id: string }) => k.id)).toEqual([a.apiKey.id]);
    expect((await app.call("getAccount", { token: b.key })).status).toBe(200);
  });

  it("answer ids PostgreSQL cannot read with 404 or 400, never 500", async () => {
    const { key } = await createAccountWithKey(app.ctx, "test");
    const res = await app.call("revokeApiKey", { params: { id: "key_%00" }, token: key });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("invalid_request");
  });

  it("validate their input", async () => {
    const { key } = await createAccountWithKey(app.ctx, "test");
    for (const json of [
      {},
      { name: "" },
      { name: "x", network: "main" },
      { name: "x", extra: 1 },
    ]) {
      const res = await app.request("POST", "/v1/api-keys", { token: key, json });
      expect(res.status, JSON.stringify(json)).toBe(400);
      expect(res.body.error.code).toBe("invalid_request");
      expect(res.body.error.issues.length).toBeGreaterThan(0);
    }
  });
});
