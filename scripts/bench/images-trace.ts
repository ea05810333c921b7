/**
 * Where one synchronous image call's time goes, statement by statement: `POST
 * /v1/images/generations` (in process, no worker), one call at a time against a simulated
 * upstream, every SQL statement the API sends timed from the client's side (the round trip)
 * and placed on the call's timeline. Prints, for the median call, each statement's start and
 * duration, and the time spent between statements (this process's own CPU and I/O).
 *
 *   npx tsx scripts/bench/images-trace.ts [--calls 200] [--smoke] [--pg-port 54399]
 */
import pg from "pg";
import { startHttpServer } from "../../src/http/server.js";
import { startSimulator } from "../../test/simulator/upstream.js";
import { benchOptions, percentile, requestSignal, runBench } from "./harness.js";
import { startBench, withSimulatedOpenAi } from "./setup.js";

const options = benchOptions({ calls: { full: 200, smoke: 10 } }, 54_399);

interface Statement {
  sql: string;
  start: number;
  ms: number;
}
let trace: Statement[] | undefined;

// Every statement goes through Client.prototype.query (the pool's and drizzle's included).
const query = pg.Client.prototype.query as (...args: unknown[]) => unknown;
pg.Client.prototype.query = function traced(this: pg.Client, ...args: unknown[]) {
  const recording = trace;
  if (!recording) return query.apply(this, args);
  const first = args[0];
  const text = typeof first === "string" ? first : ((first as { text?: string })?.text ?? "?");
  const start = performance.now();
  const done = () =>
    recording.push({ sql: text.replace(/\s+/g, " ").trim(), start, ms: performance.now() - start });
  // The pool's own query passes a callback; drizzle takes the promise.
  const last = args.length - 1;
  const callback = args[last];
  if (typeof callback === "function") {
    args[last] = (...results: unknown[]) => {
      done();
      return (callback as (...r: unknown[]) => unknown)(...results);
    };
    return query.apply(this, args);
  }
  const result = query.apply(this, args);
  return result instanceof Promise ? result.finally(done) : result;
} as typeof pg.Client.prototype.query;

const median = (values: number[]) =>
  percentile(
    [...values].sort((a, b) => a - b),
    0.5,
  );

await runBench(async (bench) => {
  const sim = await bench.phase("simulator", 30_000, () => startSimulator());
  bench.defer("close the simulator", () => sim.close());
  const channels = withSimulatedOpenAi(sim.url);
  const { ctx, key } = await startBench(bench, {
    port: options.pgPort,
    rateLimits: "off",
    maxInFlightGenerations: 1000,
    env: { CHANNELS: JSON.stringify(channels) },
    wallet: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    credits: 10n ** 9n,
  });
  const http = await bench.phase("http", 30_000, () => startHttpServer(ctx));
  bench.defer("close the HTTP server", () => http.close());
  bench.defer("release inline runs", () => ctx.inlineRuns.release());

  const call = async (signal: AbortSignal) => {
    const res = await fetch(`${http.url}/v1/images/generations`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-image-2", prompt: "trace" }),
      signal: requestSignal(signal),
    });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`images answered ${res.status}`);
  };

  // The baseline: the same upstream called directly from this process, as the API calls it.
  const direct = await bench.phase("upstream directly", 60_000, async (signal) => {
    const latencies: number[] = [];
    for (let i = 0; i < 20 + options.calls && !signal.aborted; i++) {
      const t0 = performance.now();
      const res = await fetch(`${sim.url}/openai/v1/images/generations`, {
        method: "POST",
        headers: { authorization: "Bearer k", "content-type": "application/json" },
        body: JSON.stringify({ model: "gpt-image-1", prompt: "trace", n: 1, size: "1024x1024" }),
        signal: requestSignal(signal),
      });
      const body = (await res.json()) as { data: Array<{ b64_json: string }> };
      Buffer.from(body.data[0]?.b64_json ?? "", "base64");
      if (i >= 20) latencies.push(performance.now() - t0);
    }
    return median(latencies);
  });

  const calls = await bench.phase("trace", 60_000 + options.calls * 1_000, async (signal) => {
    for (let i = 0; i < 20; i++) await call(signal); // warm-up: JIT, pool, caches
    const calls: Array<{ total: number; statements: Statement[] }> = [];
    for (let i = 0; i < options.calls && !signal.aborted; i++) {
      trace = [];
      const t0 = performance.now();
      await call(signal);
      const total = performance.now() - t0;
      const statements = trace
        .map((s) => ({ ...s, start: s.start - t0 }))
        .sort((a, b) => a.start - b.start);
      trace = undefined;
      calls.push({ total, statements });
      // Lets the lease renewal's removal of the finished job happen outside the next call.
      await new Promise((r) => setTimeout(r, 5));
    }
    return calls;
  });

  const totals = calls.map((c) => c.total);
  const mid = median(totals);
  const typical = calls.reduce((best, c) =>
    Math.abs(c.total - mid) < Math.abs(best.total - mid) ? c : best,
  );
  const counts = calls.map((c) => c.statements.length);
  const inStatements = calls.map((c) => c.statements.reduce((sum, s) => sum + s.ms, 0));
  console.log(
    `Upstream called directly (baseline): p50 ${direct.toFixed(2)} ms. ${calls.length} calls through the API: p50 ${mid.toFixed(2)} ms (added ${(mid - direct).toFixed(2)} ms); statements per call p50 ${median(counts)}; time inside statements p50 ${median(inStatements).toFixed(2)} ms\n`,
  );
  console.log(`The call nearest the median (${typical.total.toFixed(2)} ms):\n`);
  console.log("| starts at ms | round trip ms | gap before ms | statement |\n|---|---|---|---|");
  let previousEnd = 0;
  for (const s of typical.statements) {
    const gap = Math.max(0, s.start - previousEnd);
    console.log(
      `| ${s.start.toFixed(2)} | ${s.ms.toFixed(2)} | ${gap.toFixed(2)} | \`${s.sql.slice(0, 90).replaceAll("|", "¦")}\` |`,
    );
    previousEnd = Math.max(previousEnd, s.start + s.ms);
  }
  console.log(
    `| ${typical.total.toFixed(2)} | – | ${Math.max(0, typical.total - previousEnd).toFixed(2)} | (the answer reaches the client) |`,
  );
});
