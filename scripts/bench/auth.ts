/**
 * What the API key cache saves on an authenticated request, beside the same request with the
 * cache off, in one run: one fresh embedded PostgreSQL (default durability), two HTTP servers in
 * this process over the same context and key, one with this process's key cache and one with
 * it off (as API_KEY_CACHE_SECONDS=0 builds it), loaded in alternating rounds with GET
 * /v1/account (authentication and one read of the account). Statements per request count every
 * query the pool ran during the run.
 *
 *   npx tsx scripts/bench/auth.ts [--seconds 5] [--rounds 3] [--connections 16] [--smoke]
 *
 * --smoke: a short run that only checks the bench works. Exits 1 on any failed request, when
 * the cache served nothing, or when the whole run takes longer than its time limit.
 */
import { cpus } from "node:os";
import { ApiKeyCache } from "../../src/domains/keys/cache.js";
import { startHttpServer } from "../../src/http/server.js";
import { benchLogger, startBench } from "./setup.js";

const arg = (name: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : undefined;
};
const SMOKE = process.argv.includes("--smoke");
const SECONDS = arg("seconds") ?? (SMOKE ? 0.5 : 5);
const ROUNDS = arg("rounds") ?? (SMOKE ? 1 : 3);
const CONNECTIONS = arg("connections") ?? (SMOKE ? 4 : 16);
const PORT = arg("port") ?? 54_387;
// Set-up (PostgreSQL start, migrations) plus the load itself, with room to spare.
const TIME_LIMIT_MS = 120_000 + 2 * ROUNDS * SECONDS * 1000 * 1.5;

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;

interface Totals {
  requests: number;
  seconds: number;
  statements: number;
  latencies: number[];
  errors: number;
}

async function main() {
  const bench = await startBench({
    port: PORT,
    env: { RATE_LIMITS: "off" },
    poolMax: 10,
    wallet: "0x00000000000000000000000000000000000a07c4",
    credits: 1_000n,
  });
  const { ctx, key } = bench;
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
  const servers = {
    cached: await startHttpServer(ctx),
    uncached: await startHttpServer({ ...ctx, apiKeyCache: uncachedCache }),
  };
  const headers = { authorization: `Bearer ${key}` };
  const totals: Record<keyof typeof servers, Totals> = {
    cached: { requests: 0, seconds: 0, statements: 0, latencies: [], errors: 0 },
    uncached: { requests: 0, seconds: 0, statements: 0, latencies: [], errors: 0 },
  };
  const load = async (which: keyof typeof servers, seconds: number, record: boolean) => {
    const url = `${servers[which].url}/v1/account`;
    const before = statements;
    const start = performance.now();
    const end = start + seconds * 1000;
    const latencies: number[] = [];
    let errors = 0;
    await Promise.all(
      Array.from({ length: CONNECTIONS }, async () => {
        while (performance.now() < end) {
          const t = performance.now();
          try {
            const res = await fetch(url, { headers });
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

  try {
    // Warm-up: connections, the listener, the cache's entry.
    await load("cached", Math.min(1, SECONDS), false);
    await load("uncached", Math.min(1, SECONDS), false);
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate which goes first, so neither always follows the other.
      const order: Array<keyof typeof servers> =
        round % 2 === 0 ? ["uncached", "cached"] : ["cached", "uncached"];
      for (const which of order) await load(which, SECONDS, true);
    }
  } finally {
    await servers.cached.close();
    await servers.uncached.close();
    await bench.close();
  }

  const summary = (t: Totals) => {
    const sorted = [...t.latencies].sort((a, b) => a - b);
    return {
      perSecond: t.requests / t.seconds,
      p50: pct(sorted, 0.5),
      p99: pct(sorted, 0.99),
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
  const failures = [
    ...(off.errors + on.errors > 0 ? [`${off.errors + on.errors} requests failed`] : []),
    ...(ctx.apiKeyCache.hits === 0 ? ["the cache served no request"] : []),
    ...(uncachedCache.hits > 0 ? ["the uncached server used a cache"] : []),
  ];
  if (failures.length > 0) throw new Error(failures.join("; "));
}

const limit = setTimeout(() => {
  console.error(`auth bench: still running after ${TIME_LIMIT_MS / 1000} s, giving up`);
  process.exit(1);
}, TIME_LIMIT_MS);
try {
  await main();
  clearTimeout(limit);
} catch (err) {
  console.error("auth bench failed:", err);
  process.exit(1);
}
