import { runOnce } from "graphile-worker";
import { afterAll, beforeAll, expect, it } from "vitest";
import { sweepStrandedResults } from "../../src/domains/generations/run.js";
import { graphileLogger } from "../../src/jobs/logger.js";
import { taskList } from "../../src/jobs/tasks.js";
import { createFundedCaller, startTestApp, type TestApp } from "../helpers/app.js";
import { startCli } from "../helpers/cli.js";
import { expectMoneyInvariants } from "../helpers/ledger.js";
import { type Simulator, startSimulator } from "../simulator/upstream.js";

/**
 * A worker process killed with SIGKILL in the middle of a job: the result still ends exactly
 * once — refunded by the stranded-result sweeper, or completed by the job's next run — and the
 * ledger stays consistent either way.
 */
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
    env: { LOG_LEVEL: "error", CHANNELS: channels, GENERATION_TIMEOUT_SECONDS: "60" },
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
  worker.child.kill("SIGKILL");
  await worker.exited;
  const status = async () =>
    (
      await app.request("GET", `/v1/generate/status?ids=${submitted.body.generationId}`, {
        token: caller.key,
      })
    ).body.generations[submitted.body.generationId];
  expect((await status()).results[0].status).toBe("processing");
  const { rows } = await app.ctx.pool.query(
    "select locked_by from graphile_worker._private_jobs where locked_by is not null",
  );
  expect(rows).toHaveLength(1); // the dead worker's lock stays (graphile-worker frees it after ~4 hours)
  return { caller, status, deadWorker: rows[0].locked_by as string };
}

const runJobsOnce = () =>
  runOnce({
    pgPool: app.ctx.pool,
    taskList: taskList(app.ctx),
    logger: graphileLogger(app.ctx.logger),
  });

it("refunds exactly once when the dead worker's result outlives its timeout, even if the job runs again", async () => {
  const { caller, status, deadWorker } = await submitAndKillWorker();
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
  await app.ctx.pool.query("select graphile_worker.force_unlock_workers(array[$1::text])", [
    deadWorker,
  ]);
  await runJobsOnce();
  expect(await status()).toMatchObject({ status: "failed", cost: { charged: 0, refunded: 3 } });
  expect((await app.request("GET", "/v1/balance", { token: caller.key })).body).toMatchObject({
    creditBalance: 100,
    heldCredits: 0,
  });
  await expectMoneyInvariants(app.ctx);
});

it("charges exactly once when the job's next run completes the result", async () => {
  const { caller, status, deadWorker } = await submitAndKillWorker();
  sim.always = "ok";
  await app.ctx.pool.query("select graphile_worker.force_unlock_workers(array[$1::text])", [
    deadWorker,
  ]);
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
