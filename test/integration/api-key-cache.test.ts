import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiKeys } from "../../src/db/schema.js";
import { API_KEY_REVOCATIONS_CHANNEL, ApiKeyCache } from "../../src/domains/keys/cache.js";
import { sha256Hex } from "../../src/lib/secrets.js";
import { createAccountWithKey, startTestApp, type TestApp } from "../helpers/app.js";
import { until } from "../helpers/receiver.js";

/**
 * Two API processes of one deployment (each its own pool, listener and key cache) over one
 * database. Entries live 5 minutes here, so a key refused within the second after its
 * revocation was refused because of the revocation's notice, not because its entry expired.
 */
const env = { API_KEY_CACHE_SECONDS: "300" };
let a: TestApp;
let b: TestApp;
beforeAll(async () => {
  a = await startTestApp({ env });
  b = await startTestApp({ env, database: a.database });
});
afterAll(async () => {
  await b?.close();
  await a?.close();
});

const account = (app: TestApp, key: string) => app.call("getAccount", { token: key });

/** Uses the key on `app` until the app's cache holds it (the first use may come before it listens). */
async function cacheOn(app: TestApp, key: string) {
  await until(`${app.url} to cache the key`, async () => {
    expect((await account(app, key)).status).toBe(200);
    return app.ctx.apiKeyCache.holds(sha256Hex(key)) || undefined;
  });
  // Served from the cache now: no read of the key.
  const hits = app.ctx.apiKeyCache.hits;
  expect((await account(app, key)).status).toBe(200);
  expect(app.ctx.apiKeyCache.hits).toBe(hits + 1);
}

async function revokeOn(app: TestApp, key: string, apiKeyId: string) {
  const res = await app.call("revokeApiKey", { params: { id: apiKeyId }, token: key });
  expect(res.status).toBe(200);
  expect(res.body.revokedAt).not.toBeNull();
}

/** How long after `since` the key was first refused on `app`, polling until `limitMs` passed. */
async function refusedAfter(app: TestApp, key: string, since: number, limitMs: number) {
  for (;;) {
    const res = await account(app, key);
    if (res.status === 401) {
      expect(res.body.error.code).toBe("invalid_api_key");
      return performance.now() - since;
    }
    expect(res.status).toBe(200);
    if (performance.now() - since > limitMs) return Number.POSITIVE_INFINITY;
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("the API key cache", () => {
  it("refuses a key revoked on process A at once on A, and within a second on process B", async () => {
    const { key, apiKey } = await createAccountWithKey(a.ctx, "test");
    await cacheOn(a, key);
    await cacheOn(b, key);

    await revokeOn(a, key, apiKey.id);
    const revokedAt = performance.now();
    expect(a.ctx.apiKeyCache.holds(sha256Hex(key))).toBe(false);
    const onA = await account(a, key);
    expect(onA.status).toBe(401);
    expect(onA.body.error.code).toBe("invalid_api_key");

    // The bound is the rule for a revocation (a correctness limit, not a speed one).
    expect(await refusedAfter(b, key, revokedAt, 1_000)).toBeLessThanOrEqual(1_000);
    expect(b.ctx.apiKeyCache.holds(sha256Hex(key))).toBe(false);
  });

  it("empties and bypasses B's cache while B's listener is cut off, so a revocation made meanwhile is honoured", async () => {
    const { key, apiKey } = await createAccountWithKey(a.ctx, "test");
    const other = await createAccountWithKey(a.ctx, "test");
    await cacheOn(b, key);
    await cacheOn(b, other.key);

    const pid = b.ctx.notifications.backendPid;
    expect(pid).toBeTypeOf("number");
    const { rows } = await a.ctx.pool.query<{ killed: boolean }>(
      "select pg_terminate_backend($1) as killed",
      [pid],
    );
    expect(rows[0]?.killed).toBe(true);
    await until("B to notice it lost its listener", () =>
      b.ctx.notifications.isListening(API_KEY_REVOCATIONS_CHANNEL) ? undefined : true,
    );
    expect(b.ctx.apiKeyCache.size).toBe(0);

    // B gets no request meanwhile, so it does not listen again before the revocation: its
    // notice goes to nobody on B.
    await revokeOn(a, key, apiKey.id);
    expect(b.ctx.notifications.isListening(API_KEY_REVOCATIONS_CHANNEL)).toBe(false);
    const onB = await account(b, key);
    expect(onB.status).toBe(401);
    expect(onB.body.error.code).toBe("invalid_api_key");

    // B listens again on its next uses, on a new connection, and caches keys again.
    await cacheOn(b, other.key);
    expect(b.ctx.notifications.backendPid).not.toBe(pid);
    expect((await account(b, key)).status).toBe(401);
    // And the revocations it hears from then on evict as before.
    await revokeOn(a, other.key, other.apiKey.id);
    const revokedAt = performance.now();
    expect(await refusedAfter(b, other.key, revokedAt, 1_000)).toBeLessThanOrEqual(1_000);
  });

  it("never stores a read that started before a revocation's notice", async () => {
    const cache = new ApiKeyCache(
      a.ctx.notifications,
      { ttlMs: 60_000, maxEntries: 10 },
      a.ctx.logger,
    );
    const { key, apiKey, account: owner } = await createAccountWithKey(a.ctx, "test");
    const caller = {
      kind: "api_key" as const,
      accountId: owner.id,
      network: "test" as const,
      apiKeyId: apiKey.id,
    };
    cache.get(sha256Hex(key));
    await until("the cache to listen", () => cache.ticket());
    const before = cache.ticket();
    // The key is revoked (and announced) while the read is under way.
    await revokeOn(a, key, apiKey.id);
    await until("the notice", () => (cache.ticket() !== before ? true : undefined));
    cache.put(before, sha256Hex(key), caller, null);
    expect(cache.holds(sha256Hex(key))).toBe(false);
    // A read that started after it is stored.
    cache.put(cache.ticket(), sha256Hex(key), caller, null);
    expect(cache.holds(sha256Hex(key))).toBe(true);
  });

  it("keeps at most its size, the least recently used going first", async () => {
    const cache = new ApiKeyCache(
      a.ctx.notifications,
      { ttlMs: 60_000, maxEntries: 2 },
      a.ctx.logger,
    );
    cache.get("0");
    await until("the cache to listen", () => cache.ticket());
    const entry = (n: string) =>
      [
        cache.ticket(),
        n.repeat(64),
        { kind: "api_key", accountId: `acct_${n}`, network: "test", apiKeyId: `key_${n}` },
        null,
      ] as const;
    cache.put(...entry("1"));
    cache.put(...entry("2"));
    expect(cache.get("1".repeat(64))).toBeDefined();
    cache.put(...entry("3"));
    expect(cache.size).toBe(2);
    expect(cache.holds("2".repeat(64))).toBe(false);
    expect(cache.holds("1".repeat(64))).toBe(true);
    expect(cache.holds("3".repeat(64))).toBe(true);
  });

  it("records a cached key's use, at most once a minute, without a read of the key", async () => {
    const { key, apiKey } = await createAccountWithKey(a.ctx, "test");
    await cacheOn(a, key);
    const lastUsed = async () => {
      const [row] = await a.ctx.db
        .select({ at: apiKeys.lastUsedAt })
        .from(apiKeys)
        .where(eq(apiKeys.id, apiKey.id));
      return row?.at?.getTime();
    };
    const first = await lastUsed();
    expect(first).toBeTypeOf("number");
    a.clock.advance(2 * 60_000);
    const hits = a.ctx.apiKeyCache.hits;
    expect((await account(a, key)).status).toBe(200);
    expect(a.ctx.apiKeyCache.hits).toBe(hits + 1);
    const second = await until("the use to be recorded", async () => {
      const at = await lastUsed();
      return at !== undefined && first !== undefined && at > first ? at : undefined;
    });
    expect(second - (first ?? 0)).toBeGreaterThanOrEqual(2 * 60_000 - 1_000);
  });
});
