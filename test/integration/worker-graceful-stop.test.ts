import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createFundedCaller, startTestApp, type TestApp } from "../helpers/app.js";
import { startCli } from "../helpers/cli.js";
import { expectMoneyInvariants } from "../helpers/ledger.js";
import { type Simulator, startSimulator } from "../simulator/upstream.js";

/**
 * SIGTERM on a worker whose jobs are finishing: it waits for them, and writes each one's
 * completion before it closes its database pool. graphile-worker wrote completions without
 * awaiting them, so the pool could close first and leave the finished job locked (to run
 * again hours later).
 */
let sim: Simulator;
let app: TestApp;
let channels: string;

beforeAll(async () => {
  sim = await startSimulator();
  sim.always = "slow";
  sim.latencyMs = 1_500;
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
  app = await startTestApp({ env: { LOG_LEVEL: "error", CHANNELS: channels } });
});
afterAll(async () => {
  await app.close();
  await sim.close();
});

it("records the completion of every job it was finishing before it exits", async () => {
  const caller = await createFundedCaller(app.ctx, 100n, "test");
  const worker = startCli(["worker"], {
    DATABASE_URL: app.database.url,
    CHANNELS: channels,
    LOG_LEVEL: "info",
    STORAGE_DIR: app.ctx.config.storageDir,
    WORKER_CONCURRENCY: "4",
  });
  await worker.waitFor("Worker connected");
  const ids: string[] = [];
  for (let i = 0; i < 4; i++) {
    const res = await app.request("POST", "/v1/generate", {
      token: caller.key,
      json: { prompt: `finishing ${i}`, models: ["gpt-image-2"] },
    });
    expect(res.status).toBe(202);
    ids.push(res.body.generationId);
  }
  const deadline = Date.now() + 30_000;
  while (sim.calls.length < 4) {
    if (Date.now() > deadline) throw new Error(`no upstream calls:\n${worker.output()}`);
    await sleep(20);
  }
  worker.child.kill("SIGTERM");
  expect(await worker.exited, worker.output()).toBe(0);

  const status = await app.request("GET", `/v1/generate/status?ids=${ids.join(",")}`, {
    token: caller.key,
  });
  for (const id of ids) {
    expect(status.body.generations[id]).toMatchObject({
      status: "completed",
      cost: { quoted: 3, charged: 3, refunded: 0 },
    });
  }
  // Every finished job's completion was written: none is left behind, locked or not.
  const { rows } = await app.ctx.pool.query(
    "select id, locked_by from graphile_worker.jobs where task_identifier = 'run_generation'",
  );
  expect(rows).toEqual([]);
  expect((await app.request("GET", "/v1/balance", { token: caller.key })).body).toMatchObject({
    creditBalance: 88,
    heldCredits: 0,
  });
  await expectMoneyInvariants(app.ctx);
});
