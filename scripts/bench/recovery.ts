/**
 * How long a result takes to complete on another worker after the worker running it is killed
 * with SIGKILL, beside the same job uninterrupted (the baseline), in one run: one embedded
 * PostgreSQL, the API in this process, two real `polyforge worker` processes with the default
 * heartbeat settings, and the upstream simulator's fal API, whose jobs take UPSTREAM_MS. Each
 * killed round waits until the worker has submitted the upstream job, kills it, starts a
 * replacement, and lets the replacement run for a whole dead-after period before the next round
 * (so the surviving worker is the steady-state one that releases the dead worker's jobs).
 *
 *   npx tsx scripts/bench/recovery.ts [--rounds 3]
 */
import { setTimeout as sleep } from "node:timers/promises";
import { checkGenerationInvariants } from "../../src/domains/generations/invariants.js";
import { checkLedgerInvariants } from "../../src/domains/ledger/invariants.js";
import { startHttpServer } from "../../src/http/server.js";
import { startCli } from "../../test/helpers/cli.js";
import { startSimulator } from "../../test/simulator/upstream.js";
import { startBench } from "./setup.js";

const ROUNDS = Number(process.argv[process.argv.indexOf("--rounds") + 1]) || 3;
const UPSTREAM_MS = 3_000;

async function main() {
  const sim = await startSimulator();
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
  const bench = await startBench({
    port: 54_395,
    env: { CHANNELS: channels, MAX_IN_FLIGHT_GENERATIONS: "100000" },
    wallet: "0x00000000000000000000000000000000000b3ec5",
    credits: 10n ** 6n,
  });
  const { ctx } = bench;
  const { deadAfterMs, heartbeatMs } = ctx.config.worker;
  const http = await startHttpServer(ctx);
  const startWorker = async () => {
    const worker = startCli(["worker"], {
      DATABASE_URL: ctx.config.database.url ?? "",
      CHANNELS: channels,
      LOG_LEVEL: "info",
      STORAGE_DIR: ctx.config.storageDir,
    });
    await worker.waitFor("Worker connected");
    return worker;
  };
  const workers = [await startWorker(), await startWorker()];
  await sleep(deadAfterMs); // both in the steady state

  const submit = async () => {
    const res = await fetch(`${http.url}/v1/generate`, {
      method: "POST",
      headers: { authorization: `Bearer ${bench.key}`, "content-type": "application/json" },
      body: JSON.stringify({ prompt: `bench ${Math.random()}`, models: ["qwen-image-2.0"] }),
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
  const until = async <T>(check: () => Promise<T | undefined>, ms: number): Promise<T> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const value = await check();
      if (value !== undefined) return value;
      if (Date.now() > deadline) throw new Error("timed out");
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
    const started = Date.now();
    const id = await submit();
    baseline.push((await until(() => completed(id), 120_000)) - started);
  }
  for (let round = 0; round < ROUNDS; round++) {
    const started = Date.now();
    const id = await submit();
    const held = await until(async () => {
      const r = await row(id);
      return r?.pid ? r : undefined;
    }, 60_000);
    const victim = workers.find((w) => w.child.pid === held.pid);
    if (!victim) throw new Error("no worker process holds the job");
    victim.child.kill("SIGKILL");
    await victim.exited;
    const killedAt = Date.now();
    const done = await until(() => completed(id), 120_000);
    killed.push({ total: done - started, afterKill: done - killedAt });
    workers.splice(workers.indexOf(victim), 1, await startWorker());
    await sleep(deadAfterMs);
  }

  const submissions = sim.calls.length;
  const ledger = await checkLedgerInvariants(ctx);
  const generations = await checkGenerationInvariants(ctx);
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
    `\nupstream submissions: ${submissions} for ${2 * ROUNDS} results; ledger invariant violations: ${ledger.length + generations.length}`,
  );

  for (const w of workers) {
    w.child.kill("SIGKILL");
    await w.exited;
  }
  await http.close();
  await bench.close();
  await sim.close();
}

await main();
