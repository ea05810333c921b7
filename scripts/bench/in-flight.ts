/**
 * How many upstream calls one worker process holds in flight, and what that costs it, on one
 * fresh embedded PostgreSQL. COUNT generations of one model each, spread over the simulator's
 * three upstream formats (OpenAI's, which answers after DELAY; fal's queue and Replicate's
 * predictions, whose jobs take DELAY and are polled), are queued while no worker runs; then one
 * real `polyforge worker` starts, with WORKER_CONCURRENCY = COUNT and a pool of POOL
 * connections, and finds them all runnable at once. Set side by side with what bounds them:
 *   - each result's time from the worker's first job start to its settlement, beside DELAY (the
 *     floor: a worker holding only N calls at once would need COUNT / N rounds of it);
 *   - the results running at once (peak, sampled), beside COUNT;
 *   - the worker's database connections (peak, pg_stat_activity), beside DATABASE_POOL_MAX,
 *     and the statements waiting for one (peak of its polyforge_db_pool_waiting);
 *   - the worker's peak RSS, beside the same worker idle (started once before the load).
 * Exits non-zero when a result does not complete within DELAY + 2 minutes, is charged other
 * than once, the invariants fail, or the connections exceed the pool.
 *
 *   npx tsx scripts/bench/in-flight.ts [--count 2000] [--delay-ms 5000] [--pool 10] [--smoke]
 *
 * --smoke: 60 generations of 1 s, to check the script itself in half a minute.
 */
import { readFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { generateRequest } from "../../src/domains/generations/request.js";
import { submitGenerationBatch } from "../../src/domains/generations/submit.js";
import { checkAllInvariants } from "../../src/domains/invariants.js";
import { startCli } from "../../test/helpers/cli.js";
import { startSimulator } from "../../test/simulator/upstream.js";
import { type Bench, runBench } from "./harness.js";
import { startBench } from "./setup.js";

const { values: args } = parseArgs({
  options: {
    count: { type: "string" },
    "delay-ms": { type: "string" },
    pool: { type: "string" },
    smoke: { type: "boolean", default: false },
  },
});
const COUNT = Number(args.count ?? (args.smoke ? 60 : 2000));
const DELAY_MS = Number(args["delay-ms"] ?? (args.smoke ? 1000 : 5000));
const POOL = Number(args.pool ?? 10);
for (const [name, value] of [
  ["--count", COUNT],
  ["--delay-ms", DELAY_MS],
  ["--pool", POOL],
] as const) {
  if (!(Number.isInteger(value) && value > 0)) {
    console.error(`${name}: expected a positive integer`);
    process.exit(2);
  }
}
/** How long the results may take once the worker starts, before the run fails. */
const DEADLINE_MS = DELAY_MS + 120_000;
/** How the worker's connections are told apart from this process's in pg_stat_activity. */
const APPLICATION = "polyforge-bench-in-flight";
const BATCH = 20; // POST /v1/generate/batch's limit
const MODELS = [
  { model: "gpt-image-2", format: "openai" },
  { model: "qwen-image-2.0", format: "fal" },
  { model: "wan2.7-image", format: "replicate" },
] as const;

/** A process's resident set now (VmRSS) or at its peak so far (VmHWM), in MiB. */
async function rssMiB(pid: number, field: "VmRSS" | "VmHWM"): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  return Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1]) / 1024;
}

/** CPU seconds a process has used (user + system). */
async function cpuSeconds(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, "utf8")).split(") ")[1]?.split(" ") ?? [];
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? Number.NaN;
const s = (ms: number) => (ms / 1000).toFixed(2);

async function main(harness: Bench): Promise<boolean> {
  const sim = await startSimulator();
  sim.byApi.openai = { script: [], always: "slow" };
  sim.latencyMs = DELAY_MS;
  sim.jobMs = DELAY_MS;
  const channels = JSON.stringify([
    {
      id: "openai",
      provider: "openai",
      baseUrl: `${sim.url}/openai`,
      apiKey: "sk-sim",
      networks: ["test"],
      models: { "gpt-image-2": "gpt-image-1" },
    },
    {
      id: "fal",
      provider: "fal",
      baseUrl: `${sim.url}/fal`,
      apiKey: "fal-key",
      networks: ["test"],
      models: { "qwen-image-2.0": "fal-ai/qwen-image" },
    },
    {
      id: "replicate",
      provider: "replicate",
      baseUrl: `${sim.url}/replicate`,
      apiKey: "r8-key",
      networks: ["test"],
      models: { "wan2.7-image": "wan-video/wan-2.7-image" },
    },
  ]);
  const bench = await startBench(harness, {
    port: 54_394,
    rateLimits: "off",
    maxInFlightGenerations: 100_000,
    env: { CHANNELS: channels },
    wallet: "0x00000000000000000000000000000000001f1177",
    credits: 10n ** 9n,
  });
  const { ctx } = bench;
  const url = new URL(ctx.config.database.url ?? "");
  url.searchParams.set("application_name", APPLICATION);
  const startWorker = async () => {
    const worker = startCli(["worker"], {
      DATABASE_URL: url.toString(),
      DATABASE_POOL_MAX: String(POOL),
      WORKER_CONCURRENCY: String(COUNT),
      CHANNELS: channels,
      STORAGE_DIR: ctx.config.storageDir,
      LOG_LEVEL: "info",
      UPSTREAM_TIMEOUT_MS: String(DELAY_MS + 60_000),
      WORKER_METRICS_PORT: "0",
    });
    const output = await worker.waitFor("worker metrics listening");
    await worker.waitFor("Worker connected");
    const metricsUrl = /"url":"([^"]+\/metrics)"/.exec(output)?.[1] as string;
    return Object.assign(worker, { metricsUrl });
  };
  const stop = async (worker: Awaited<ReturnType<typeof startWorker>>) => {
    if (worker.child.exitCode !== null || worker.child.signalCode !== null) return worker.exited;
    worker.child.kill("SIGTERM");
    return worker.exited;
  };

  let worker: Awaited<ReturnType<typeof startWorker>> | undefined;
  try {
    // The baseline: the same worker with nothing to do.
    worker = await startWorker();
    await sleep(1_000);
    const idleRss = await rssMiB(worker.child.pid as number, "VmRSS");
    await stop(worker);

    const scope = { accountId: bench.account.id, network: "test" as const };
    const requests = Array.from({ length: COUNT }, (_, i) =>
      generateRequest.parse({
        prompt: `in flight ${i}`,
        models: [(MODELS[i % MODELS.length] as (typeof MODELS)[number]).model],
      }),
    );
    const queueStarted = performance.now();
    for (let i = 0; i < COUNT; i += BATCH) {
      await submitGenerationBatch(ctx, scope, requests.slice(i, i + BATCH));
    }
    const queueMs = performance.now() - queueStarted;

    worker = await startWorker();
    const pid = worker.child.pid as number;
    // The worker's own gauge of the statements waiting for a connection, every 250 ms.
    let peakWaiting = 0;
    let sampling = true;
    const { metricsUrl } = worker;
    const waiting = (async () => {
      while (sampling) {
        const text = await (await fetch(metricsUrl)).text().catch(() => "");
        const value = Number(/^polyforge_db_pool_waiting (\d+)$/m.exec(text)?.[1] ?? 0);
        peakWaiting = Math.max(peakWaiting, value);
        await sleep(250);
      }
    })();
    // Every 50 ms: the worker's connections, and the results it is running.
    let peakConnections = 0;
    let peakRunning = 0;
    let open = COUNT;
    const deadline = Date.now() + DEADLINE_MS;
    while (open > 0 && Date.now() < deadline) {
      const { rows } = await ctx.pool.query<{ connections: number; running: number; open: number }>(
        `select (select count(*)::int from pg_stat_activity where application_name = $1) as connections,
                count(*) filter (where status = 'processing')::int as running,
                count(*) filter (where status in ('pending', 'processing'))::int as open
         from generation_results`,
        [APPLICATION],
      );
      peakConnections = Math.max(peakConnections, rows[0]?.connections ?? 0);
      peakRunning = Math.max(peakRunning, rows[0]?.running ?? 0);
      open = rows[0]?.open ?? open;
      await sleep(50);
    }
    sampling = false;
    await waiting;
    const peakRss = await rssMiB(pid, "VmHWM");
    const cpu = await cpuSeconds(pid);
    const exitCode = await stop(worker);

    const { rows: results } = await ctx.pool.query<{
      status: string;
      upstream: string | null;
      ms: number | null;
      charges: number;
    }>(
      `select r.status::text, r.routing->>'upstream' as upstream,
              extract(epoch from r.finished_at - min(r.started_at) over ())::float8 * 1000 as ms,
              (select count(*)::int from ledger_transfers t
               where t.hold_id = r.hold_id and t.kind = 'hold_post') as charges
       from generation_results r`,
    );
    const completed = results.filter((r) => r.status === "completed");
    const chargedOnce = results.filter((r) => r.charges === 1).length;
    const violations = await checkAllInvariants(ctx);

    const timeRow = (what: string, ms: number[]) => {
      const sorted = ms.filter((m) => Number.isFinite(m)).sort((a, b) => a - b);
      const p50 = pct(sorted, 0.5);
      const p99 = pct(sorted, 0.99);
      return `| ${what} | ${sorted.length} | ${s(p50)} | ${(p50 / DELAY_MS).toFixed(2)} | ${s(p99)} | ${(p99 / DELAY_MS).toFixed(2)} | ${s(sorted.at(-1) ?? Number.NaN)} |`;
    };
    console.log(
      `${COUNT} generations queued (in ${(queueMs / 1000).toFixed(1)} s) before one worker starts with WORKER_CONCURRENCY ${COUNT} and DATABASE_POOL_MAX ${POOL}; each upstream call takes ${s(DELAY_MS)} s\n`,
    );
    console.log(
      "| results | completed | worker start → settled, p50 s | p50 vs floor | p99 s | p99 vs floor | max s |",
    );
    console.log("|---|---|---|---|---|---|---|");
    console.log(
      `| floor (the upstream's own time) | — | ${s(DELAY_MS)} | 1.00 | ${s(DELAY_MS)} | 1.00 | — |`,
    );
    const ms = (r: (typeof results)[number]) => r.ms ?? Number.NaN;
    console.log(timeRow("all", completed.map(ms)));
    for (const { format } of MODELS) {
      console.log(
        timeRow(`${format} format`, completed.filter((r) => r.upstream === format).map(ms)),
      );
    }
    console.log("\n| measure | worker | bound or baseline | ratio |");
    console.log("|---|---|---|---|");
    console.log(
      `| results running at once (peak) | ${peakRunning} | ${COUNT} queued | ${(peakRunning / COUNT).toFixed(2)} |`,
    );
    console.log(
      `| database connections (peak) | ${peakConnections} | ${POOL} (DATABASE_POOL_MAX) | ${(peakConnections / POOL).toFixed(2)} |`,
    );
    console.log(
      `| statements waiting for a connection (peak) | ${peakWaiting} | ${COUNT} jobs | ${(peakWaiting / COUNT).toFixed(2)} |`,
    );
    console.log(
      `| RSS, MiB (peak) | ${peakRss.toFixed(0)} | ${idleRss.toFixed(0)} (the same worker, idle) | ${(peakRss / idleRss).toFixed(2)} |`,
    );
    console.log(
      `| worker CPU, s (start-up included) | ${cpu.toFixed(1)} | — | ${((cpu * 1000) / COUNT).toFixed(1)} ms per result |`,
    );
    console.log(
      `\nupstream calls: ${sim.calls.length} for ${COUNT} results; charged once: ${chargedOnce}; invariant violations: ${violations.length}; worker exit code: ${exitCode}`,
    );

    const problems = [
      completed.length !== COUNT && `${COUNT - completed.length} results did not complete`,
      chargedOnce !== COUNT && `${COUNT - chargedOnce} results not charged exactly once`,
      violations.length > 0 && `invariant violations: ${JSON.stringify(violations)}`,
      peakConnections > POOL && `${peakConnections} connections, above the pool's ${POOL}`,
      exitCode !== 0 && `the worker exited with ${exitCode}`,
    ].filter(Boolean);
    if (problems.length === 0) return true;
    console.error(`\nFAILED: ${problems.join("; ")}`);
    const warnings = worker
      .output()
      .split("\n")
      .filter((line) => /"level":(40|50|60)/.test(line));
    console.error(warnings.slice(0, 20).join("\n"));
    return false;
  } finally {
    if (worker && worker.child.exitCode === null && worker.child.signalCode === null) {
      worker.child.kill("SIGKILL");
      await worker.exited;
    }
    await sim.close();
  }
}

// Bounded whatever happens: the deadline above, plus the set-up and the queueing.
setTimeout(
  () => {
    console.error("in-flight bench: out of time");
    process.exit(1);
  },
  DEADLINE_MS + COUNT * 100 + 120_000,
).unref();
await runBench(async (harness) => {
  if (!(await main(harness))) throw new Error("the in-flight run failed");
});
