/**
 * How long a result takes to complete on another worker after the worker running it is killed
 * with SIGKILL, beside the same job uninterrupted (the baseline), in one run: one embedded
 * PostgreSQL, the API in this process, two real `polyforge worker` processes with the default
 * heartbeat settings, and the upstream simulator's fal API, whose jobs take UPSTREAM_MS. Each
 * killed round waits until the worker has submitted the upstream job, kills it, starts a
 * replacement, and lets the replacement run for a whole dead-after period before the next round
 * (so the surviving worker is the steady-state one that releases the dead worker's jobs).
 *
 *   npx tsx scripts/bench/recovery.ts [--rounds 3] [--smoke] [--pg-port 54395]
 *
 * --smoke runs one round with a 1 s heartbeat, dead after 2 s, and 0.5 s upstream jobs.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { checkGenerationInvariants } from "../../src/domains/generations/invariants.js";
import { checkLedgerInvariants } from "../../src/domains/ledger/invariants.js";
import { startHttpServer } from "../../src/http/server.js";
import { startCli } from "../../test/helpers/cli.js";
import { startSimulator } from "../../test/simulator/upstream.js";
import { benchOptions, requestSignal, runBench } from "./harness.js";
import { startBench } from "./setup.js";

const options = benchOptions(
  {
    rounds: { full: 3, smoke: 1 },
    "heartbeat-seconds": { full: 5, smoke: 1 },
    "dead-after-seconds": { full: 20, smoke: 2 },
    "upstream-ms": { full: 3_000, smoke: 500 },
  },
  54_395,
);
const ROUNDS = options.rounds;
const UPSTREAM_MS = options["upstream-ms"];

await runBench(async (bench) => {
  const sim = await bench.phase("simulator", 30_000, () => startSimulator());
  bench.defer("close the simulator", () => sim.close());
  sim.jobMs = UPSTREAM_MS;
  const channels = JSON.stringify([
    {
      id: "fal",
      provider: "fal",
      baseUrl: `${sim.url}/fal`,
      apiKey: "fal-key",
      networks: ["test"],
      models: { "qwen-image-2.0": "fal-ai/qwen-image" },
    },
  ]);
  // The same on the API (this process) and every worker.
  const workerEnv = {
    CHANNELS: channels,
    WORKER_HEARTBEAT_SECONDS: String(options["heartbeat-seconds"]),
    WORKER_DEAD_AFTER_SECONDS: String(options["dead-after-seconds"]),
  };
  const { ctx, key } = await startBench(bench, {
    port: options.pgPort,
    // Few submits, one at a time, but more than the free tier's 5 a minute with more rounds.
    rateLimits: "off",
    maxInFlightGenerations: 10,
    env: workerEnv,
    wallet: "0x00000000000000000000000000000000000b3ec5",
    credits: 10n ** 6n,
  });
  const { deadAfterMs, heartbeatMs } = ctx.config.worker;
  const http = await bench.phase("http", 30_000, () => startHttpServer(ctx));
  bench.defer("close the HTTP server", () => http.close());
  const workers: Array<ReturnType<typeof startCli>> = [];
  bench.defer("stop the workers", async () => {
    for (const w of workers.splice(0)) {
      w.child.kill("SIGKILL");
      await w.exited;
    }
  });
  const startWorker = async () => {
    const worker = startCli(["worker"], {
      ...workerEnv,
      DATABASE_URL: ctx.config.database.url ?? "",
      LOG_LEVEL: "info",
      STORAGE_DIR: ctx.config.storageDir,
    });
    workers.push(worker);
    await worker.waitFor("Worker connected", 60_000);
    return worker;
  };
  await bench.phase("start two workers", 130_000, async () => {
    await startWorker();
    await startWorker();
  });
  await bench.phase("steady state", deadAfterMs + 30_000, () => sleep(deadAfterMs));

  const submit = async (signal: AbortSignal) => {
    const res = await fetch(`${http.url}/v1/generate`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ prompt: `bench ${Math.random()}`, models: ["qwen-image-2.0"] }),
      signal: requestSignal(signal),
    });
    if (res.status !== 202) throw new Error(`submit answered ${res.status}`);
    return `${((await res.json()) as { generationId: string }).generationId}.0`;
  };
  const row = async (resultId: string) =>
    (
      await ctx.pool.query<{ status: string; locked_by: string | null; pid: number | null }>(
        `select r.status::text, j.locked_by, w.pid from generation_results r
         left join graphile_worker.jobs j on j.key = r.id
         left join worker_heartbeats w on w.pool_id = j.locked_by
         where r.id = $1 and (r.upstream_job is not null or r.status <> 'processing')`,
        [resultId],
      )
    ).rows[0];
  const until = async <T>(signal: AbortSignal, check: () => Promise<T | undefined>) => {
    for (;;) {
      const value = await check();
      if (value !== undefined) return value;
      signal.throwIfAborted();
      await sleep(20);
    }
  };
  const completed = async (resultId: string) => {
    const r = await row(resultId);
    if (r?.status === "failed") throw new Error(`${resultId} failed`);
    return r?.status === "completed" ? Date.now() : undefined;
  };

  const baseline: number[] = [];
  const killed: Array<{ total: number; afterKill: number }> = [];
  for (let round = 0; round < ROUNDS; round++) {
    await bench.phase(`uninterrupted round ${round + 1}`, UPSTREAM_MS + 60_000, async (signal) => {
      const started = Date.now();
      const id = await submit(signal);
      baseline.push((await until(signal, () => completed(id))) - started);
    });
  }
  for (let round = 0; round < ROUNDS; round++) {
    // The kill is noticed within dead-after plus one heartbeat; then the job runs again.
    const ms = UPSTREAM_MS * 2 + deadAfterMs + heartbeatMs + 60_000;
    await bench.phase(`killed round ${round + 1}`, ms, async (signal) => {
      const started = Date.now();
      const id = await submit(signal);
      const held = await until(signal, async () => {
        const r = await row(id);
        return r?.pid ? r : undefined;
      });
      const victim = workers.find((w) => w.child.pid === held.pid);
      if (!victim) throw new Error("no worker process holds the job");
      victim.child.kill("SIGKILL");
      await victim.exited;
      workers.splice(workers.indexOf(victim), 1);
      const killedAt = Date.now();
      const done = await until(signal, () => completed(id));
      killed.push({ total: done - started, afterKill: done - killedAt });
    });
    await bench.phase(`replacement worker ${round + 1}`, deadAfterMs + 90_000, async () => {
      await startWorker();
      await sleep(deadAfterMs);
    });
  }

  const submissions = sim.calls.length;
  const { ledger, generations } = await bench.phase("invariants", 60_000, async () => ({
    ledger: await checkLedgerInvariants(ctx),
    generations: await checkGenerationInvariants(ctx),
  }));
  const violations = ledger.length + generations.length;
  if (violations) bench.failures.push(`${violations} ledger or generation invariant violations`);
  const s = (ms: number) => (ms / 1000).toFixed(1);
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1] ?? 0;
  console.log(
    `workers: 2, WORKER_HEARTBEAT_SECONDS ${heartbeatMs / 1000}, WORKER_DEAD_AFTER_SECONDS ${deadAfterMs / 1000}; upstream job ${UPSTREAM_MS / 1000} s; ${ROUNDS} rounds each\n`,
  );
  console.log(
    "| run | submit → completed, s (median; each) | kill → completed on another worker, s (median; max; each) |",
  );
  console.log("|---|---|---|");
  console.log(
    `| uninterrupted (baseline) | ${s(median(baseline))}; ${baseline.map(s).join(", ")} | — |`,
  );
  const after = killed.map((k) => k.afterKill);
  console.log(
    `| worker killed after submitting upstream | ${s(median(killed.map((k) => k.total)))}; ${killed.map((k) => s(k.total)).join(", ")} | ${s(median(after))}; ${s(Math.max(...after))}; ${after.map(s).join(", ")} |`,
  );
  console.log(
    `\nupstream submissions: ${submissions} for ${2 * ROUNDS} results; ledger invariant violations: ${violations}`,
  );
});
