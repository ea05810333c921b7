/**
 * What the API key cache saves on an authenticated request, beside the same request with the
 * cache off, in one run: one fresh embedded PostgreSQL (default durability), two HTTP servers in
 * this process over the same context and key, one with this process's key cache and one with
 * it off (as API_KEY_CACHE_SECONDS=0 builds it), loaded in alternating rounds with GET
 * /v1/account (authentication and one read of the account). Statements per request count every
 * query the pool ran during the run.
 *
 *   npx tsx scripts/bench/auth.ts [--seconds 5] [--rounds 3] [--connections 16] [--smoke] [--pg-port 54387]
 *
 * Exits 1 on any failed request, when the cache served nothing, or when a phase passes its
 * deadline (see harness.ts).
 */
import { cpus } from "node:os";
import { ApiKeyCache } from "../../src/domains/keys/cache.js";
import { startHttpServer } from "../../src/http/server.js";
import { benchOptions, percentile, requestSignal, runBench } from "./harness.js";
import { benchLogger, startBench } from "./setup.js";

const options = benchOptions(
  {
    seconds: { full: 5, smoke: 0.5 },
    rounds: { full: 3, smoke: 1 },
    connections: { full: 16, smoke: 4 },
  },
  54_387,
);
const { seconds: SECONDS, rounds: ROUNDS, connections: CONNECTIONS } = options;

interface Totals {
  requests: number;
  seconds: number;
  statements: number;
  latencies: number[];
  errors: number;
}

await runBench(async (bench) => {
  const { ctx, key } = await startBench(bench, {
    port: options.pgPort,
    rateLimits: "off",
    maxInFlightGenerations: 10,
    poolMax: 10,
    wallet: "0x00000000000000000000000000000000000a07c4",
    credits: 1_000n,
  });
  // Every statement of either server goes through the pool's query (drizzle calls it).
  let statements = 0;
  const query = ctx.pool.query.bind(ctx.pool);
  ctx.pool.query = ((...args: Parameters<typeof query>) => {
    statements++;
    return query(...args);
  }) as typeof ctx.pool.query;

  const uncachedCache = new ApiKeyCache(
    ctx.notifications,
    { ...ctx.config.auth.apiKeyCache, ttlMs: 0 },
    benchLogger,
  );
  const servers = await bench.phase("http", 30_000, async () => {
    const cached = await startHttpServer(ctx);
    bench.defer("close the cached server", () => cached.close());
    const uncached = await startHttpServer({ ...ctx, apiKeyCache: uncachedCache });
    bench.defer("close the uncached server", () => uncached.close());
    return { cached, uncached };
  });
  const headers = { authorization: `Bearer ${key}` };
  const totals: Record<keyof typeof servers, Totals> = {
    cached: { requests: 0, seconds: 0, statements: 0, latencies: [], errors: 0 },
    uncached: { requests: 0, seconds: 0, statements: 0, latencies: [], errors: 0 },
  };
  const load = async (
    which: keyof typeof servers,
    seconds: number,
    record: boolean,
    signal: AbortSignal,
  ) => {
    const url = `${servers[which].url}/v1/account`;
    const before = statements;
    const start = performance.now();
    const end = start + seconds * 1000;
    const latencies: number[] = [];
    let errors = 0;
    await Promise.all(
      Array.from({ length: CONNECTIONS }, async () => {
        while (performance.now() < end && !signal.aborted) {
          const t = performance.now();
          try {
            const res = await fetch(url, { headers, signal: requestSignal(signal) });
            await res.arrayBuffer();
            if (res.status !== 200) errors++;
          } catch {
            errors++;
          }
          latencies.push(performance.now() - t);
        }
      }),
    );
    if (!record) return;
    const t = totals[which];
    t.requests += latencies.length;
    t.seconds += (performance.now() - start) / 1000;
    t.statements += statements - before;
    t.latencies.push(...latencies);
    t.errors += errors;
  };

  await bench.phase("load", 60_000 + 2 * ROUNDS * SECONDS * 1500, async (signal) => {
    // Warm-up: connections, the listener, the cache's entry.
    await load("cached", Math.min(1, SECONDS), false, signal);
    await load("uncached", Math.min(1, SECONDS), false, signal);
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate which goes first, so neither always follows the other.
      const order: Array<keyof typeof servers> =
        round % 2 === 0 ? ["uncached", "cached"] : ["cached", "uncached"];
      for (const which of order) await load(which, SECONDS, true, signal);
    }
  });

  const summary = (t: Totals) => {
    const sorted = [...t.latencies].sort((a, b) => a - b);
    return {
      perSecond: t.requests / t.seconds,
      p50: percentile(sorted, 0.5),
      p99: percentile(sorted, 0.99),
      statements: t.statements / Math.max(1, t.requests),
      errors: t.errors,
    };
  };
  const off = summary(totals.uncached);
  const on = summary(totals.cached);
  console.log(
    `GET /v1/account, ${CONNECTIONS} connections, ${ROUNDS} alternating round(s) of ${SECONDS} s per setting; ${cpus().length} cores; client, API and PostgreSQL on one machine.\n`,
  );
  console.log(
    "| key lookup | req/s | vs uncached | p50 ms | p99 ms | statements/request | errors |",
  );
  console.log("|---|---|---|---|---|---|---|");
  for (const [name, r] of [
    ["read every request (API_KEY_CACHE_SECONDS=0, baseline)", off],
    ["cached in process (default)", on],
  ] as const) {
    console.log(
      `| ${name} | ${r.perSecond.toFixed(0)} | ${(r.perSecond / off.perSecond).toFixed(2)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.statements.toFixed(2)} | ${r.errors} |`,
    );
  }
  console.log(
    `\np50 saved: ${(off.p50 - on.p50).toFixed(2)} ms; cache hits ${ctx.apiKeyCache.hits}, misses ${ctx.apiKeyCache.misses}.`,
  );
  bench.check("cached", { ops: totals.cached.requests, errors: on.errors });
  bench.check("uncached", { ops: totals.uncached.requests, errors: off.errors });
  if (on.errors + off.errors > 0) bench.failures.push(`${on.errors + off.errors} requests failed`);
  if (ctx.apiKeyCache.hits === 0) bench.failures.push("the cache served no request");
  if (uncachedCache.hits > 0) bench.failures.push("the uncached server used a cache");
});
