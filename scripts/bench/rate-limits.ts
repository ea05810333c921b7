/**
 * What the per-tier rate limit adds to a request, beside the same route with limits off, in one
 * run: one embedded PostgreSQL, two HTTP servers in this process over the same database and
 * account, one with RATE_LIMITS on and one off, called alternately. Both share a clock that
 * moves a minute ahead before the account's limit is reached, so every limited request takes
 * the path an allowed request takes (tier lookup plus the counter's upsert, one statement).
 *
 *   npx tsx scripts/bench/rate-limits.ts [--calls 1000] [--smoke] [--pg-port 54396]
 */
import { requestsPerMinute } from "../../src/domains/ratelimits/limits.js";
import { startHttpServer } from "../../src/http/server.js";
import { benchOptions, percentile, requestSignal, runBench } from "./harness.js";
import { startBench } from "./setup.js";

const options = benchOptions(
  { calls: { full: 1000, smoke: 50 }, warmup: { full: 50, smoke: 10 } },
  54_396,
);
const CALLS = options.calls;
const pct = (values: number[], p: number) =>
  percentile(
    [...values].sort((a, b) => a - b),
    p,
  );

await runBench(async (bench) => {
  const { ctx, key } = await startBench(bench, {
    port: options.pgPort,
    // On: it is what is measured (the "off" server turns it off in its own context). No worker
    // runs, so every submit of both servers stays in flight on the one account.
    rateLimits: "on",
    maxInFlightGenerations: 2 * (options.warmup + CALLS),
    wallet: "0x00000000000000000000000000000000000b3ec4",
    credits: 10n ** 9n,
  });
  let offsetMs = 0;
  const clock = () => new Date(Date.now() + offsetMs);
  const limited = { ...ctx, clock };
  const unlimited = {
    ...limited,
    config: { ...ctx.config, rateLimits: { ...ctx.config.rateLimits, enabled: false } },
  };
  const { on, off } = await bench.phase("http", 30_000, async () => {
    const on = await startHttpServer(limited);
    bench.defer("close the HTTP server with limits on", () => on.close());
    const off = await startHttpServer(unlimited);
    bench.defer("close the HTTP server with limits off", () => off.close());
    return { on, off };
  });
  const routes = [
    {
      name: "GET /v1/history?limit=1 (poll)",
      limit: requestsPerMinute.free.poll,
      call: (base: string, signal: AbortSignal) =>
        fetch(`${base}/v1/history?limit=1`, {
          headers: { authorization: `Bearer ${key}` },
          signal: requestSignal(signal),
        }),
    },
    {
      name: "POST /v1/generate, one model (generate)",
      limit: requestsPerMinute.free.generate,
      call: (base: string, signal: AbortSignal) =>
        fetch(`${base}/v1/generate`, {
          method: "POST",
          headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
          body: JSON.stringify({ prompt: "a lighthouse", models: ["z-image-turbo"] }),
          signal: requestSignal(signal),
        }),
    },
  ];
  const lines: string[] = [];
  for (const route of routes) {
    const times = { on: [] as number[], off: [] as number[] };
    const errors = { on: 0, off: 0 };
    // Each call pair takes a few ms; a second each is far beyond any healthy run.
    await bench.phase(route.name, 30_000 + (options.warmup + CALLS) * 1_000, async (signal) => {
      const run = async (which: "on" | "off", record: boolean) => {
        const t = performance.now();
        let status = 0;
        try {
          const res = await route.call(which === "on" ? on.url : off.url, signal);
          await res.arrayBuffer();
          status = res.status;
        } catch {}
        if (!record) {
          if (status === 0 || status >= 300) throw new Error(`warm-up (${which}): ${status}`);
          return;
        }
        times[which].push(performance.now() - t);
        if (status === 0 || status >= 300) errors[which]++;
      };
      let used = 0;
      for (let i = -options.warmup; i < CALLS && !signal.aborted; i++) {
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
    });
    for (const which of ["off", "on"] as const) {
      bench.check(`${route.name}, limits ${which}`, {
        ops: times[which].length,
        errors: errors[which],
      });
    }
    const p = (w: "on" | "off", q: number) => pct(times[w], q);
    lines.push(
      `| ${route.name} | ${p("off", 0.5).toFixed(2)} | ${p("on", 0.5).toFixed(2)} | ${(p("on", 0.5) - p("off", 0.5)).toFixed(2)} | ${(p("on", 0.5) / p("off", 0.5)).toFixed(2)} | ${p("off", 0.99).toFixed(2)} | ${p("on", 0.99).toFixed(2)} | ${errors.off + errors.on} |`,
    );
  }
  console.log(
    `${CALLS} calls per route and setting, alternating; free tier; PostgreSQL on this machine.\n`,
  );
  console.log(
    "| route | limits off p50 ms | limits on p50 ms | added p50 ms | on/off p50 | off p99 | on p99 | errors |",
  );
  console.log("|---|---|---|---|---|---|---|---|");
  console.log(lines.join("\n"));
});
