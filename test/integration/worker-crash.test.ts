import { runOnce } from "graphile-worker";
import { afterAll, beforeAll, expect, it } from "vitest";
import { sweepStrandedResults } from "../../src/domains/generations/run.js";
import { recordHeartbeat, releaseDeadWorkers } from "../../src/domains/workers/service.js";
import { graphileLogger } from "../../src/jobs/logger.js";
import { jobCounts } from "../../src/jobs/queue.js";
import { taskList } from "../../src/jobs/tasks.js";
import { createFundedCaller, startTestApp, type TestApp } from "../helpers/app.js";
import { startCli } from "../helpers/cli.js";
import { expectMoneyInvariants } from "../helpers/ledger.js";
import { type Simulator, startSimulator } from "../simulator/upstream.js";

/**
 * A worker process killed with SIGKILL in the middle of a job: its job shows as stalled, not
 * running, once its heartbeat is old, and is released for another run; the result still ends
 * exactly once — refunded by the stranded-result sweeper at the hard stop, or completed by the
 * job's next run — and the ledger stays consistent either way. (worker-recovery.test.ts has
 * live workers take such jobs over by themselves.)
 */
const workerEnv = { WORKER_HEARTBEAT_SECONDS: "1", WORKER_DEAD_AFTER_SECONDS: "3" };
let sim: Simulator;
let app: TestApp;
let channels: string;

beforeAll(async () => {
  sim = await startSimulator();
  sim.latencyMs = 60_000;
  channels = JSON.stringify([
    {
      id: "sim",
      provider: "openai",
      baseUrl: `${sim.url}/openai`,
      apiKey: "k",
      networks: ["test"],
      models: { "gpt-image-2": "gpt-image-1" },
    },
  ]);
  app = await startTestApp({
    env: {
      LOG_LEVEL: "error",
      CHANNELS: channels,
      GENERATION_TIMEOUT_SECONDS: "60",
      ...workerEnv,
    },
  });
});
afterAll(async () => {
  await app.close();
  await sim.close();
});

async function submitAndKillWorker() {
  const caller = await createFundedCaller(app.ctx, 100n, "test");
  sim.always = "slow"; // the upstream takes a minute: the job is mid-way when the worker dies
  sim.calls.length = 0;
  const worker = startCli(["worker"], {
    DATABASE_URL: app.database.url,
    CHANNELS: channels,
    LOG_LEVEL: "info",
    STORAGE_DIR: app.ctx.config.storageDir,
    ...workerEnv,
  });
  await worker.waitFor("Worker connected");
  const submitted = await app.request("POST", "/v1/generate", {
    token: caller.key,
    json: { prompt: "kill me", models: ["gpt-image-2"] },
  });
  expect(submitted.status).toBe(202);
  for (let i = 0; sim.calls.length === 0; i++) {
    if (i > 200) throw new Error(`the worker never called the upstream:\n${worker.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  expect(await runGenerationJobs()).toEqual({ running: 1 }); // held by a live worker
  worker.child.kill("SIGKILL");
  await worker.exited;
  const status = async () =>
    (
      await app.request("GET", `/v1/generate/status?ids=${submitted.body.generationId}`, {
        token: caller.key,
      })
    ).body.generations[submitted.body.generationId];
  expect((await status()).results[0].status).toBe("processing");
  // Once its heartbeat is older than WORKER_DEAD_AFTER_SECONDS, the dead worker's job no
  // longer counts as running.
  for (const deadline = Date.now() + 30_000; ; ) {
    const jobs = await runGenerationJobs();
    if (jobs.stalled === 1) break;
    expect(jobs).toEqual({ running: 1 });
    if (Date.now() > deadline) throw new Error("the dead worker's job never showed as stalled");
    await new Promise((r) => setTimeout(r, 100));
  }
  return { caller, status };
}

async function runGenerationJobs() {
  const counts = await jobCounts(app.ctx);
  return Object.fromEntries(
    counts.filter((c) => c.task === "run_generation").map((c) => [c.state, c.jobs]),
  );
}

/** What a live worker's heartbeat check does: the dead worker's one job is released. */
async function releaseDeadWorker() {
  const released = await releaseDeadWorkers(app.ctx, app.ctx.config.worker.deadAfterMs);
  expect(released).toMatchObject({ pools: [expect.stringMatching(/^pool-/)], jobs: 1 });
  expect(await runGenerationJobs()).toEqual({ runnable: 1 });
}

const runJobsOnce = () =>
  runOnce({
    pgPool: app.ctx.pool,
    taskList: taskList(app.ctx),
    logger: graphileLogger(app.ctx.logger),
  });

it("refunds exactly once when the dead worker's result outlives its timeout, even if the job runs again", async () => {
  const { caller, status } = await submitAndKillWorker();
  app.clock.advance(61_000);
  try {
    expect(await sweepStrandedResults(app.ctx)).toBe(1);
    expect(await sweepStrandedResults(app.ctx)).toBe(0);
  } finally {
    app.clock.advance(-61_000);
  }
  const failed = await status();
  expect(failed).toMatchObject({ status: "failed", cost: { quoted: 3, charged: 0, refunded: 3 } });
  expect(failed.results[0].error.code).toBe("timed_out");

  // The job comes back (its lock freed) and runs to the end against a healthy upstream.
  sim.always = "ok";
  await releaseDeadWorker();
  await runJobsOnce();
  expect(await status()).toMatchObject({ status: "failed", cost: { charged: 0, refunded: 3 } });
  expect((await app.request("GET", "/v1/balance", { token: caller.key })).body).toMatchObject({
    creditBalance: 100,
    heldCredits: 0,
  });
  await expectMoneyInvariants(app.ctx);
});

it("charges exactly once when the job's next run completes the result", async () => {
  const { caller, status } = await submitAndKillWorker();
  sim.always = "ok";
  await releaseDeadWorker();
  await runJobsOnce();
  expect(await status()).toMatchObject({
    status: "completed",
    cost: { quoted: 3, charged: 3, refunded: 0 },
  });
  await runJobsOnce(); // nothing left to do, nothing charged again
  expect(await sweepStrandedResults(app.ctx)).toBe(0);
  expect((await app.request("GET", "/v1/balance", { token: caller.key })).body).toMatchObject({
    creditBalance: 97,
    heldCredits: 0,
  });
  await expectMoneyInvariants(app.ctx);
});

it("refunds a result once its job's attempts are spent, not while a live worker still runs its last one", async () => {
  const caller = await createFundedCaller(app.ctx, 100n, "test");
  const submitted = await app.request("POST", "/v1/generate", {
    token: caller.key,
    json: { prompt: "last try", models: ["gpt-image-2"] },
  });
  expect(submitted.status).toBe(202);
  const resultId = `${submitted.body.generationId}.0`;
  expect(await sweepStrandedResults(app.ctx)).toBe(0); // queued: its job will run it

  // Its last attempt is running on a live worker: still nothing to refund.
  await recordHeartbeat(app.ctx, ["pool-last-try"]);
  await app.ctx.pool.query(
    `update graphile_worker._private_jobs set attempts = max_attempts, locked_at = now(), locked_by = 'pool-last-try'
     where key = $1`,
    [resultId],
  );
  expect(await runGenerationJobs()).toEqual({ running: 1 });
  expect(await sweepStrandedResults(app.ctx)).toBe(0);

  // That worker dies: its job is released with no attempt left, and the result is refunded
  // long before its hold would expire.
  await app.ctx.pool.query(
    "update worker_heartbeats set last_seen_at = now() - interval '1 hour' where pool_id = 'pool-last-try'",
  );
  expect(await runGenerationJobs()).toEqual({ stalled: 1 });
  expect(await releaseDeadWorkers(app.ctx, app.ctx.config.worker.deadAfterMs)).toEqual({
    pools: ["pool-last-try"],
    jobs: 1,
  });
  expect(await runGenerationJobs()).toEqual({ failed: 1 });
  expect(await sweepStrandedResults(app.ctx)).toBe(1);
  expect(await sweepStrandedResults(app.ctx)).toBe(0);
  const { body } = await app.request(
    "GET",
    `/v1/generate/status?ids=${submitted.body.generationId}`,
    {
      token: caller.key,
    },
  );
  const generation = body.generations[submitted.body.generationId];
  expect(generation).toMatchObject({ status: "failed", cost: { charged: 0, refunded: 3 } });
  expect(generation.results[0].error.code).toBe("retries_exhausted");
  expect((await app.request("GET", "/v1/balance", { token: caller.key })).body).toMatchObject({
    creditBalance: 100,
    heldCredits: 0,
  });
  await expectMoneyInvariants(app.ctx);
});
