import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { generateRequest } from "../../src/domains/generations/request.js";
import { submitGenerationBatch } from "../../src/domains/generations/submit.js";
import { creditsToJson, creditUnits } from "../../src/lib/credits.js";
import { createFundedCaller, startTestApp, type TestApp } from "../helpers/app.js";
import { runCli, startCli } from "../helpers/cli.js";
import { expectMoneyInvariants } from "../helpers/ledger.js";
import { type Simulator, startSimulator } from "../simulator/upstream.js";

/**
 * One real `polyforge worker` process, at its default WORKER_CONCURRENCY, holding hundreds of
 * upstream calls in flight at once (OpenAI-format calls waiting for their answer, fal requests
 * and Replicate predictions being submitted) on a pool of a few connections: the simulator
 * holds every call until all have arrived, so they are all in flight together. 600 keeps a
 * test within half a minute on two cores; scripts/bench/in-flight.ts runs 2,000 at 5 s each.
 */
let sim: Simulator;
let app: TestApp;
let channels: string;
const workers: Array<ReturnType<typeof startCli>> = [];
const samplers: Array<() => Promise<number>> = [];

/** Calls per test: a third per upstream format. */
const COUNT = 600;
const POOL = 6;
const CREDITS = BigInt(COUNT) * 10n;
const MODELS = ["gpt-image-2", "qwen-image-2.0", "wan2.7-image"];

beforeAll(async () => {
  sim = await startSimulator();
  channels = JSON.stringify([
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
  app = await startTestApp({
    env: { LOG_LEVEL: "error", CHANNELS: channels, MAX_IN_FLIGHT_GENERATIONS: "100000" },
  });
});
afterEach(async () => {
  for (const stop of samplers.splice(0)) await stop();
  for (const w of workers.splice(0)) {
    if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill("SIGKILL");
    await w.exited;
  }
  sim.held = undefined;
});
afterAll(async () => {
  await app?.close();
  await sim?.close();
});

/** A worker whose connections pg_stat_activity names `application`, on a pool of POOL. */
async function startWorker(application: string, env: Record<string, string> = {}) {
  const url = new URL(app.database.url);
  url.searchParams.set("application_name", application);
  const worker = startCli(["worker"], {
    DATABASE_URL: url.toString(),
    DATABASE_POOL_MAX: String(POOL),
    CHANNELS: channels,
    LOG_LEVEL: "info",
    STORAGE_DIR: app.ctx.config.storageDir,
    ...env,
  });
  workers.push(worker);
  await worker.waitFor("Worker connected");
  return worker;
}

/** Samples the connections `application` has open every 50 ms; the returned stop gives the peak. */
function sampleConnections(application: string): () => Promise<number> {
  let peak = 0;
  let stopped = false;
  const sampling = (async () => {
    while (!stopped) {
      const { rows } = await app.ctx.pool.query<{ n: number }>(
        "select count(*)::int as n from pg_stat_activity where application_name = $1",
        [application],
      );
      peak = Math.max(peak, rows[0]?.n ?? 0);
      await sleep(50);
    }
  })();
  const stop = async () => {
    stopped = true;
    await sampling;
    return peak;
  };
  samplers.push(stop);
  return stop;
}

/** A /metrics answer's samples, by name and labels as written (`name{label="value"}`). */
async function scrape(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(url)).text();
  const samples = new Map<string, number>();
  for (const line of text.split("\n")) {
    const match = /^(\S+) (\S+)$/.exec(line);
    if (match && !line.startsWith("#")) samples.set(match[1] as string, Number(match[2]));
  }
  return samples;
}

async function until<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Holds every upstream call the simulator gets until the returned function lets them go. */
function holdUpstream(): () => void {
  let release = () => {};
  sim.held = new Promise<void>((resolve) => {
    release = resolve;
  });
  return () => {
    sim.held = undefined;
    release();
  };
}

/** COUNT generations of one model each, a third per format, queued in batches of 20. */
async function submitMany(credits: bigint) {
  const caller = await createFundedCaller(app.ctx, credits, "test");
  const scope = { accountId: caller.account.id, network: "test" as const };
  const requests = Array.from({ length: COUNT }, (_, i) =>
    generateRequest.parse({ prompt: `in flight ${i}`, models: [MODELS[i % MODELS.length]] }),
  );
  let cost = 0n;
  const generationIds: string[] = [];
  for (let i = 0; i < COUNT; i += 20) {
    const batch = await submitGenerationBatch(app.ctx, scope, requests.slice(i, i + 20));
    cost += batch.cost;
    generationIds.push(...batch.generations.map((g) => g.generationId));
  }
  return { caller, cost, generationIds };
}

/** The results of these generations: status, runs, and how often their hold was posted or voided. */
async function resultsOf(generationIds: string[]) {
  const { rows } = await app.ctx.pool.query<{
    status: string;
    runs: number;
    charges: number;
    refunds: number;
  }>(
    `select r.status::text, r.runs,
            (select count(*)::int from ledger_transfers t where t.hold_id = r.hold_id and t.kind = 'hold_post') as charges,
            (select count(*)::int from ledger_transfers t where t.hold_id = r.hold_id and t.kind = 'hold_release') as refunds
     from generation_results r where r.generation_id = any($1::text[])`,
    [generationIds],
  );
  return rows;
}

async function settledCount(generationIds: string[]): Promise<number> {
  const { rows } = await app.ctx.pool.query<{ n: number }>(
    "select count(*)::int as n from generation_results where generation_id = any($1::text[]) and status in ('completed', 'failed')",
    [generationIds],
  );
  return rows[0]?.n ?? 0;
}

const runGenerationJobs = async () =>
  (
    await app.ctx.pool.query<{ locked: boolean }>(
      "select locked_by is not null as locked from graphile_worker.jobs where task_identifier = 'run_generation'",
    )
  ).rows;

it(`holds ${COUNT} upstream calls in flight at once on one worker, within its pool of ${POOL} connections, and charges each result once`, async () => {
  sim.calls.length = 0;
  const worker = await startWorker("in-flight-one", {
    WORKER_HEARTBEAT_SECONDS: "1",
    WORKER_METRICS_PORT: "0",
  });
  const metricsUrl = /"url":"([^"]+\/metrics)"/.exec(
    await worker.waitFor("worker metrics listening"),
  )?.[1] as string;
  const connections = sampleConnections("in-flight-one");
  const release = holdUpstream();
  const { caller, cost, generationIds } = await submitMany(CREDITS);
  // Every call has reached the upstream and none has been answered: all are in flight.
  await until(`${COUNT} upstream calls`, 60_000, async () =>
    sim.calls.length >= COUNT ? true : undefined,
  );
  expect(sim.calls).toHaveLength(COUNT);
  expect(await settledCount(generationIds)).toBe(0);
  // Its heartbeat goes on while they wait, on its own connection.
  const beat = async () =>
    (
      await app.ctx.pool.query<{ at: Date }>(
        "select max(last_seen_at) as at from worker_heartbeats where pid = $1",
        [worker.child.pid],
      )
    ).rows[0]?.at?.getTime();
  const before = await beat();
  await until("a heartbeat while the calls are in flight", 30_000, async () =>
    ((await beat()) ?? 0) > (before ?? 0) ? true : undefined,
  );
  // The worker's own account of it: every job running, the pool within its bound.
  const during = await scrape(metricsUrl);
  expect(during.get('polyforge_worker_jobs_running{task="run_generation"}')).toBe(COUNT);
  const inUse = during.get('polyforge_db_pool_connections{state="in_use"}') ?? Number.NaN;
  const idle = during.get('polyforge_db_pool_connections{state="idle"}') ?? Number.NaN;
  expect(inUse).toBeGreaterThanOrEqual(2); // LISTEN and the heartbeat
  expect(inUse + idle).toBeLessThanOrEqual(POOL);

  release();
  await until("every result to settle", 120_000, async () =>
    (await settledCount(generationIds)) === COUNT ? true : undefined,
  );
  const peakConnections = await connections();
  expect(
    (await scrape(metricsUrl)).get('polyforge_worker_jobs_running{task="run_generation"}'),
  ).toBe(0);

  // At most the pool's connections, LISTEN and heartbeat included, all along.
  expect(peakConnections).toBeGreaterThanOrEqual(3);
  expect(peakConnections).toBeLessThanOrEqual(POOL);
  // Each result ran once (no statement gave up waiting for a connection), charged once.
  const results = await resultsOf(generationIds);
  expect(results).toHaveLength(COUNT);
  expect(results.filter((r) => !(r.status === "completed" && r.runs === 1))).toEqual([]);
  expect(results.filter((r) => r.charges !== 1 || r.refunds !== 0)).toEqual([]);
  expect(sim.calls).toHaveLength(COUNT);
  expect((await app.request("GET", "/v1/balance", { token: caller.key })).body).toMatchObject({
    creditBalance: creditsToJson(creditUnits(CREDITS) - cost),
    heldCredits: 0,
  });
  expect(await runGenerationJobs()).toEqual([]);
  await expectMoneyInvariants(app.ctx);

  worker.child.kill("SIGTERM");
  expect(await worker.exited, worker.output()).toBe(0);
}, 240_000);

it(`stopped with ${COUNT} calls in flight, releases them all at once, and another worker runs them, each charged once`, async () => {
  sim.calls.length = 0;
  // Dead workers are presumed dead only after two minutes: what frees these jobs is the
  // stopping worker's own release, not the others' heartbeat check.
  const env = { SHUTDOWN_TIMEOUT_MS: "1000", WORKER_DEAD_AFTER_SECONDS: "120" };
  const first = await startWorker("in-flight-stopped", env);
  const release = holdUpstream();
  const { caller, cost, generationIds } = await submitMany(CREDITS);
  await until(`${COUNT} upstream calls`, 60_000, async () =>
    sim.calls.length >= COUNT ? true : undefined,
  );

  first.child.kill("SIGTERM");
  expect(await first.exited, first.output()).toBe(0);
  // One release for all of them, as the worker went.
  const released = first
    .output()
    .split("\n")
    .filter((line) => line.includes("jobs outlasted the shutdown"))
    .map((line) => JSON.parse(line).released);
  expect(released).toEqual([COUNT]);
  // Nothing stranded: every job is unlocked and can run again, no result settled or refunded.
  const jobs = await runGenerationJobs();
  expect(jobs).toHaveLength(COUNT);
  expect(jobs.filter((j) => j.locked)).toEqual([]);
  expect(await settledCount(generationIds)).toBe(0);

  // The upstream answers from now on; the calls the stopped worker made are let go too.
  release();
  const second = await startWorker("in-flight-second");
  await until("every result to settle on the other worker", 120_000, async () =>
    (await settledCount(generationIds)) === COUNT ? true : undefined,
  );
  const results = await resultsOf(generationIds);
  expect(results).toHaveLength(COUNT);
  expect(results.filter((r) => !(r.status === "completed" && r.runs === 2))).toEqual([]);
  expect(results.filter((r) => r.charges !== 1 || r.refunds !== 0)).toEqual([]);
  expect((await app.request("GET", "/v1/balance", { token: caller.key })).body).toMatchObject({
    creditBalance: creditsToJson(creditUnits(CREDITS) - cost),
    heldCredits: 0,
  });
  expect(await runGenerationJobs()).toEqual([]);
  await expectMoneyInvariants(app.ctx);

  second.child.kill("SIGTERM");
  expect(await second.exited, second.output()).toBe(0);
}, 240_000);

it("refuses to start a worker on a pool that would leave its jobs no connection", async () => {
  // Two connections are the worker's own (LISTEN for new jobs, the heartbeat).
  const run = await runCli(["worker"], {
    DATABASE_URL: app.database.url,
    DATABASE_POOL_MAX: "2",
    CHANNELS: channels,
  });
  expect(run.code, run.stdout + run.stderr).not.toBe(0);
  expect(run.stdout + run.stderr).toContain("a worker needs a pool of at least 3 connections");
});
