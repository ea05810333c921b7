/**
 * What the per-tier rate limit adds to a request, beside the same route with limits off, in one
 * run: one embedded PostgreSQL, two HTTP servers in this process over the same database and
 * account, one with RATE_LIMITS on and one off, called alternately. Both share a clock that
 * moves a minute ahead before the account's limit is reached, so every limited request takes
 * the path an allowed request takes (tier lookup plus the counter's upsert, one statement).
 *
 *   npx tsx scripts/bench/rate-limits.ts [--calls 1000]
 */
import { requestsPerMinute } from "../../src/domains/ratelimits/limits.js";
import { startHttpServer } from "../../src/http/server.js";
import { startBench } from "./setup.js";

const CALLS = Number(process.argv[process.argv.indexOf("--calls") + 1]) || 1000;
const pct = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;
};

async function main() {
  const bench = await startBench({
    port: 54_398,
    env: { RATE_LIMITS: "on", MAX_IN_FLIGHT_GENERATIONS: "100000" },
    wallet: "0x00000000000000000000000000000000000b3ec4",
    credits: 10n ** 9n,
  });
  let offsetMs = 0;
  const clock = () => new Date(Date.now() + offsetMs);
  const limited = { ...bench.ctx, clock };
  const unlimited = {
    ...limited,
    config: { ...bench.ctx.config, rateLimits: { ...bench.ctx.config.rateLimits, enabled: false } },
  };
  const on = await startHttpServer(limited);
  const off = await startHttpServer(unlimited);
  const routes = [
    {
      name: "GET /v1/history?limit=1 (poll)",
      limit: requestsPerMinute.free.poll,
      call: (base: string) =>
        fetch(`${base}/v1/history?limit=1`, { headers: { authorization: `Bearer ${bench.key}` } }),
    },
    {
      name: "POST /v1/generate, one model (generate)",
      limit: requestsPerMinute.free.generate,
      call: (base: string) =>
        fetch(`${base}/v1/generate`, {
          method: "POST",
          headers: { authorization: `Bearer ${bench.key}`, "content-type": "application/json" },
          body: JSON.stringify({ prompt: "a lighthouse", models: ["z-image-turbo"] }),
        }),
    },
  ];
  try {
    console.log(
      `${CALLS} calls per route and setting, alternating; free tier; PostgreSQL on this machine.\n`,
    );
    console.log(
      "| route | limits off p50 ms | limits on p50 ms | added p50 ms | on/off p50 | off p99 | on p99 |",
    );
    console.log("|---|---|---|---|---|---|---|");
    for (const route of routes) {
      const times = { on: [] as number[], off: [] as number[] };
      const run = async (which: "on" | "off", record: boolean) => {
        const t = performance.now();
        const res = await route.call(which === "on" ? on.url : off.url);
        await res.arrayBuffer();
        if (res.status >= 300) throw new Error(`${route.name} (${which}): ${res.status}`);
        if (record) times[which].push(performance.now() - t);
      };
      let used = 0;
      for (let i = -50; i < CALLS; i++) {
        // A new window before the limit is reached (the warm-up counts too).
        if (used === route.limit) {
          offsetMs += 60_000;
          used = 0;
        }
        used++;
        // Alternate which goes first, so neither always follows the other.
        const order: Array<"on" | "off"> = i % 2 === 0 ? ["on", "off"] : ["off", "on"];
        for (const which of order) await run(which, i >= 0);
      }
      const p = (w: "on" | "off", q: number) => pct(times[w], q);
      console.log(
        `| ${route.name} | ${p("off", 0.5).toFixed(2)} | ${p("on", 0.5).toFixed(2)} | ${(p("on", 0.5) - p("off", 0.5)).toFixed(2)} | ${(p("on", 0.5) / p("off", 0.5)).toFixed(2)} | ${p("off", 0.99).toFixed(2)} | ${p("on", 0.99).toFixed(2)} |`,
      );
    }
  } finally {
    await on.close();
    await off.close();
    await bench.close();
  }
}

await main();
