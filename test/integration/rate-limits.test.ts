import type { Runner } from "graphile-worker";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LocalChain } from "../../src/chain/local-chain.js";
import type { AppContext } from "../../src/context.js";
import { systemLedgerAccount, userLedgerAccount } from "../../src/domains/ledger/accounts.js";
import type { MembershipTier } from "../../src/domains/ledger/packs.js";
import { transfer } from "../../src/domains/ledger/service.js";
import { type RateLimitBucket, requestsPerMinute } from "../../src/domains/ratelimits/limits.js";
import { purgeRateLimitCounters } from "../../src/domains/ratelimits/service.js";
import { startWorker } from "../../src/jobs/worker.js";
import { newId } from "../../src/lib/ids.js";
import {
  type ApiResponse,
  createFundedCaller,
  startTestApp,
  type TestApp,
  waitForGeneration,
} from "../helpers/app.js";
import {
  fundedPayer,
  payingFetch,
  paymentEnv,
  startTestChain,
  treasury,
  usdcBalance,
} from "../helpers/chain.js";
import { startCli } from "../helpers/cli.js";
import { groupsOfMany } from "../helpers/metrics.js";
import { freePort } from "../helpers/ports.js";
import { until } from "../helpers/receiver.js";

const image = { prompt: "a lighthouse at dusk", models: ["z-image-turbo"] };

/** A caller on the tier: the pack that grants it, bought (as its ledger entry) on the test network. */
async function callerOnTier(ctx: AppContext, tier: MembershipTier) {
  const caller = await createFundedCaller(ctx, 1_000n);
  const pack = { free: "starter", creator: "creator", pro: "pro" }[tier];
  await transfer(ctx, {
    id: newId("grant"),
    network: "test",
    debit: systemLedgerAccount("test", "issuance"),
    credit: userLedgerAccount(caller.account.id, "test"),
    amount: 1n,
    kind: "pack_purchase",
    metadata: { pack },
  });
  return caller;
}

/**
 * One request in the bucket that counts: a read, or a generation that starts (a refused one
 * is given back, see "counts only requests that start work").
 */
const requestIn = (app: TestApp, bucket: RateLimitBucket, token: string) =>
  bucket === "poll"
    ? app.call("listGenerations", { query: { limit: 1 }, token })
    : app.request("POST", bucket === "batch" ? "/v1/generate/batch" : "/v1/generate", {
        token,
        json: bucket === "batch" ? { requests: [image] } : image,
      });

/** What the account's counter in the bucket holds now. */
async function counted(ctx: AppContext, accountId: string, bucket: RateLimitBucket) {
  const { rows } = await ctx.pool.query(
    "select count from rate_limit_counters where subject = $1 and bucket = $2",
    [`account:test:${accountId}`, bucket],
  );
  return (rows[0]?.count as number | undefined) ?? 0;
}

const header = (res: ApiResponse, name: string) => res.headers.get(name);

// biome-ignore lint/suspicious/noExplicitAny: tests read response bodies field by field.
const errorOf = async (res: Response): Promise<any> => ((await res.json()) as any).error;

describe("tier limits per bucket", () => {
  let app: TestApp;
  beforeAll(async () => {
    // The generations these tests start wait for no worker: the in-flight cap must not refuse them.
    app = await startTestApp({ env: { RATE_LIMITS: "on", MAX_IN_FLIGHT_GENERATIONS: "1000" } });
  });
  afterAll(async () => {
    await app?.close();
  });

  // Each case in its own future minute, with the clock stopped 17.25 s into it.
  let minute = Math.ceil(Date.now() / 60_000) + 1;
  const cases = (["free", "creator", "pro"] as const).flatMap((tier) =>
    (["generate", "batch", "poll"] as const).map((bucket) => [tier, bucket] as const),
  );

  it.each(cases)(
    "%s tier, %s bucket: the published limit, then 429 with Retry-After to the second",
    async (tier, bucket) => {
      const limit = requestsPerMinute[tier][bucket];
      const windowStart = minute++ * 60_000;
      app.clock.freeze(new Date(windowStart + 17_250));
      const { key } = await callerOnTier(app.ctx, tier);

      const remaining: number[] = [];
      for (let sent = 0; sent < limit; sent += 10) {
        const batch = await Promise.all(
          Array.from({ length: Math.min(10, limit - sent) }, () => requestIn(app, bucket, key)),
        );
        for (const res of batch) {
          expect(res.status).not.toBe(429);
          expect(header(res, "ratelimit-limit")).toBe(String(limit));
          expect(header(res, "ratelimit-reset")).toBe("43");
          expect(header(res, "retry-after")).toBeNull();
          remaining.push(Number(header(res, "ratelimit-remaining")));
        }
      }
      expect(remaining.sort((a, b) => b - a)).toEqual(
        Array.from({ length: limit }, (_, i) => limit - 1 - i),
      );

      const refused = await requestIn(app, bucket, key);
      expect(refused.status).toBe(429);
      expect(refused.body.error).toMatchObject({
        code: "rate_limited",
        bucket,
        tier,
        limit,
        retryAfterSeconds: 43,
      });
      expect(header(refused, "retry-after")).toBe("43");
      expect(header(refused, "ratelimit-remaining")).toBe("0");
      expect(header(refused, "ratelimit-policy")).toBe(`${limit};w=60`);

      // 0.75 s before the window ends, still refused and told to wait 1 s; at its end, allowed.
      app.clock.advance(42_000);
      const almost = await requestIn(app, bucket, key);
      expect(almost.status).toBe(429);
      expect(header(almost, "retry-after")).toBe("1");
      app.clock.advance(750);
      const next = await requestIn(app, bucket, key);
      expect(next.status).not.toBe(429);
      expect(header(next, "ratelimit-remaining")).toBe(String(limit - 1));
      expect(header(next, "ratelimit-reset")).toBe("60");
    },
  );

  it("counts concurrent requests as if one by one: two accounts, 70 polls each at once, 50 each allowed", async () => {
    const windowStart = minute++ * 60_000;
    app.clock.freeze(new Date(windowStart + 1_000));
    const limit = requestsPerMinute.free.poll;
    const callers = [await callerOnTier(app.ctx, "free"), await callerOnTier(app.ctx, "free")];
    const before = await groupsOfMany(app.ctx, "rate_limit_consume");
    const answers = await Promise.all(
      Array.from({ length: 140 }, (_, i) =>
        requestIn(app, "poll", (callers[i % 2] as { key: string }).key).then((res) => ({
          caller: i % 2,
          res,
        })),
      ),
    );
    for (const caller of [0, 1]) {
      const mine = answers.filter((a) => a.caller === caller).map((a) => a.res);
      const allowed = mine.filter((r) => r.status === 200);
      expect(allowed).toHaveLength(limit);
      expect(mine.filter((r) => r.status === 429)).toHaveLength(70 - limit);
      // Each allowed request had its own place in the count.
      expect(
        allowed.map((r) => Number(header(r, "ratelimit-remaining"))).sort((a, b) => b - a),
      ).toEqual(Array.from({ length: limit }, (_, i) => limit - 1 - i));
    }
    // The burst shared statements (the group commit), and still no request passed the limit.
    expect(await groupsOfMany(app.ctx, "rate_limit_consume")).toBeGreaterThan(before);
  });

  it("limits each account on its own: one caller's refusals leave another's limit whole", async () => {
    const windowStart = minute++ * 60_000;
    app.clock.freeze(new Date(windowStart + 1_000));
    const first = await callerOnTier(app.ctx, "free");
    const second = await callerOnTier(app.ctx, "free");
    for (let i = 0; i < 6; i++) await requestIn(app, "generate", first.key);
    expect((await requestIn(app, "generate", first.key)).status).toBe(429);
    const other = await requestIn(app, "generate", second.key);
    expect(other.status).toBe(202);
    expect(header(other, "ratelimit-remaining")).toBe("4");
  });

  it("counts only requests that start work: refused bodies, short balances and replays are given back", async () => {
    const windowStart = minute++ * 60_000;
    app.clock.freeze(new Date(windowStart + 5_000));
    const { key, account } = await callerOnTier(app.ctx, "free");
    const post = (json: unknown, headers: Record<string, string> = {}) =>
      app.call("generate", { token: key, json, headers });
    // More refusals than the limit: a validation 400 and a 402 each.
    for (let i = 0; i < 4; i++) expect((await post({})).status).toBe(400);
    for (let i = 0; i < 3; i++) {
      const tooDear = await post({
        prompt: "waves",
        mediaType: "video",
        duration: 10,
        models: [
          "kling-v3",
          "kling-video-o1",
          "doubao-seedance-2.0",
          "wan2.7",
          "wan2.5-preview",
          "skyreels-v4-fast",
        ],
      });
      expect(tooDear.body.error?.code).toBe("insufficient_credits");
    }
    const first = await post(image, { "Idempotency-Key": "try-once" });
    expect(first.status).toBe(202);
    for (let i = 0; i < 3; i++) {
      const replay = await post(image, { "Idempotency-Key": "try-once" });
      expect(replay.status).toBe(202);
      expect(replay.headers.get("idempotent-replayed")).toBe("true");
    }
    // Given back once each answer is sent: only the one generation that started counts.
    await until("the refusals to be given back", async () =>
      (await counted(app.ctx, account.id, "generate")) === 1 ? true : undefined,
    );
    for (let i = 0; i < 4; i++) expect((await requestIn(app, "generate", key)).status).toBe(202);
    expect((await requestIn(app, "generate", key)).status).toBe(429);
  });

  it("limits signed downloads, which name nobody, per client address", async () => {
    const windowStart = minute++ * 60_000;
    app.clock.freeze(new Date(windowStart + 30_000));
    const { key } = await callerOnTier(app.ctx, "free");
    const url =
      "/v1/download?id=gen_00000000000000000000000000&model=z-image-turbo&expires=1&signature=x";
    const statuses: number[] = [];
    for (let i = 0; i < 51; i++) statuses.push((await app.request("GET", url)).status);
    expect(statuses.slice(0, 50).every((s) => s === 404)).toBe(true);
    expect(statuses[50]).toBe(429);
    // The key's own poll limit is another subject, untouched.
    expect((await requestIn(app, "poll", key)).status).toBe(200);
  });

  it("forgets windows that have ended (the purge cron)", async () => {
    app.clock.freeze(new Date(minute++ * 60_000 + 61_000));
    const purged = await purgeRateLimitCounters(app.ctx);
    expect(purged).toBeGreaterThan(0);
    const { rows } = await app.ctx.pool.query("select count(*)::int as n from rate_limit_counters");
    expect(rows[0].n).toBe(0);
  });
});

describe("limits shared by several API processes", () => {
  let app: TestApp;
  let second: ReturnType<typeof startCli>;
  let secondUrl: string;
  beforeAll(async () => {
    app = await startTestApp({ env: { RATE_LIMITS: "on" } });
    const port = await freePort();
    secondUrl = `http://127.0.0.1:${port}`;
    second = startCli(["serve"], {
      DATABASE_URL: app.database.url,
      PORT: String(port),
      HOST: "127.0.0.1",
      PUBLIC_URL: secondUrl,
      RATE_LIMITS: "on",
      LOG_LEVEL: "info",
    });
    await second.waitFor("API listening");
  });
  afterAll(async () => {
    second?.child.kill("SIGTERM");
    await second?.exited;
    await app?.close();
  });

  it("counts one account's requests in one window, whichever process serves them", async () => {
    // Stay clear of a minute boundary: the two processes' clocks are the machine's.
    while (Date.now() % 60_000 > 50_000) await new Promise((r) => setTimeout(r, 250));
    const { key } = await callerOnTier(app.ctx, "free");
    const limit = requestsPerMinute.free.poll;
    const remaining: string[] = [];
    for (let i = 0; i < limit; i++) {
      const res =
        i % 2 === 0
          ? await app.call("listGenerations", { query: { limit: 1 }, token: key })
          : await fetch(`${secondUrl}/v1/history?limit=1`, {
              headers: { authorization: `Bearer ${key}` },
            }).then((r) => ({ status: r.status, headers: r.headers, body: null }));
      expect(res.status).toBe(200);
      remaining.push(res.headers.get("ratelimit-remaining") as string);
    }
    expect(remaining).toEqual(Array.from({ length: limit }, (_, i) => String(limit - 1 - i)));
    const fromSecond = await fetch(`${secondUrl}/v1/history?limit=1`, {
      headers: { authorization: `Bearer ${key}` },
    });
    expect(fromSecond.status).toBe(429);
    expect(Number(fromSecond.headers.get("retry-after"))).toBeGreaterThan(0);
    const fromFirst = await app.call("listGenerations", { query: { limit: 1 }, token: key });
    expect(fromFirst.status).toBe(429);
  });
});

describe("wallets paying with x402", () => {
  let chain: LocalChain;
  let app: TestApp;
  beforeAll(async () => {
    chain = await startTestChain("test");
    app = await startTestApp({
      env: { ...paymentEnv([chain]), RATE_LIMITS: "on", MAX_IN_FLIGHT_GENERATIONS: "6" },
    });
  });
  afterAll(async () => {
    await app?.close();
    await chain?.stop();
  });

  const post = (pay: typeof fetch, path: string, body: unknown) =>
    pay(`${app.url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });

  /** What a refusal must leave: no USDC moved, no payment recorded. */
  async function nothingPaid(work: () => Promise<void>) {
    const usdc = await usdcBalance(chain, treasury);
    const count = async () =>
      (await app.ctx.pool.query("select count(*)::int as n from payments")).rows[0].n;
    const payments = await count();
    await work();
    expect(await usdcBalance(chain, treasury)).toBe(usdc);
    expect(await count()).toBe(payments);
  }

  it("limits each paying wallet on its own, and refuses before its payment settles", async () => {
    // One fixed window for the whole test, at the real time (payments check it).
    app.clock.freeze(new Date());
    const first = payingFetch(await fundedPayer(chain, 20n * 10n ** 6n), "test");
    for (let i = 0; i < 5; i++) {
      const res = await post(first, "/v1/generate", image);
      // The 402s that asked for payment did not count: every paid call gets through.
      expect(res.status).toBe(202);
      expect(res.headers.get("ratelimit-remaining")).toBe(String(4 - i));
    }
    await nothingPaid(async () => {
      const refused = await post(first, "/v1/generate", image);
      expect(refused.status).toBe(429);
      expect(await errorOf(refused)).toMatchObject({ code: "rate_limited", tier: "free" });
      expect(refused.headers.get("retry-after")).toMatch(/^\d+$/);
    });

    // Another wallet has its own limit, and its own in-flight cap (6 here).
    const second = payingFetch(await fundedPayer(chain, 20n * 10n ** 6n), "test");
    expect((await post(second, "/v1/generate", image)).status).toBe(202);
    await nothingPaid(async () => {
      const batch = await post(second, "/v1/generate/batch", {
        requests: Array.from({ length: 6 }, () => image),
      });
      expect(batch.status).toBe(429);
      expect(await errorOf(batch)).toMatchObject({ code: "too_many_in_flight", max: 6 });
      expect(batch.headers.get("retry-after")).toBe("5");
    });
  });
});

describe("the in-flight cap", () => {
  let app: TestApp;
  let worker: Runner | undefined;
  beforeAll(async () => {
    app = await startTestApp({ env: { MAX_IN_FLIGHT_GENERATIONS: "3" } });
  });
  afterAll(async () => {
    await worker?.stop();
    await app?.close();
  });

  it("refuses a fourth generation while three wait, holding nothing for it, and takes more once they finish", async () => {
    const { key } = await createFundedCaller(app.ctx, 1_000n);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await app.call("generate", { token: key, json: image });
      expect(res.status).toBe(202);
      ids.push(res.body.generationId);
    }
    const balance = (await app.call("getBalance", { token: key })).body;
    const refused = await app.call("generate", { token: key, json: image });
    expect(refused.status).toBe(429);
    expect(refused.body.error).toMatchObject({ code: "too_many_in_flight", max: 3, inFlight: 4 });
    expect(refused.headers.get("retry-after")).toBe("5");
    const batch = await app.call("generateBatch", {
      token: key,
      json: { requests: [image, image] },
    });
    expect(batch.status).toBe(429);
    expect(batch.body.error.code).toBe("too_many_in_flight");
    // Nothing was held or charged for the refused work.
    expect((await app.call("getBalance", { token: key })).body).toEqual(balance);

    worker = await startWorker(app.ctx);
    for (const id of ids) expect((await waitForGeneration(app, key, id)).status).toBe("completed");
    const after = await app.call("generate", { token: key, json: image });
    expect(after.status).toBe(202);
  });
});
