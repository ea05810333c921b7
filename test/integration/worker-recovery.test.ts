import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { route } from "../../src/domains/routing/router.js";
import { createFundedCaller, startTestApp, type TestApp } from "../helpers/app.js";
import { startCli } from "../helpers/cli.js";
import { expectMoneyInvariants } from "../helpers/ledger.js";
import { type Simulator, startSimulator } from "../simulator/upstream.js";

/**
 * Real `polyforge worker` processes cut off in the middle of jobs whose upstream work takes a
 * while (a fal request and a Replicate prediction): killed with SIGKILL, or stopped with
 * SIGTERM past their shutdown timeout. Another worker finishes each result, polling the upstream
 * job the first one submitted (one submission, one payment upstream), and charges it once.
 */
let sim: Simulator;
let app: TestApp;
let channels: string;
const workers: Array<ReturnType<typeof startCli>> = [];

beforeAll(async () => {
  sim = await startSimulator();
  channels = JSON.stringify([
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
  app = await startTestApp({ env: { LOG_LEVEL: "error", CHANNELS: channels } });
});
afterEach(async () => {
  for (const w of workers.splice(0)) {
    if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill("SIGKILL");
    await w.exited;
  }
});
afterAll(async () => {
  await app.close();
  await sim.close();
});

async function startWorker(env: Record<string, string>) {
  const worker = startCli(["worker"], {
    DATABASE_URL: app.database.url,
    CHANNELS: channels,
    LOG_LEVEL: "info",
    STORAGE_DIR: app.ctx.config.storageDir,
    WORKER_HEARTBEAT_SECONDS: "1",
    ...env,
  });
  workers.push(worker);
  await worker.waitFor("Worker connected");
  return worker;
}

async function until<T>(what: string, deadline: number, check: () => Promise<T | undefined>) {
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A generation on both upstreams, once the first worker has submitted both upstream jobs. */
async function submitLongJobs() {
  const caller = await createFundedCaller(app.ctx, 100n, "test");
  sim.calls.length = 0;
  sim.jobMs = 600_000; // the upstream jobs run until the test lets them finish
  const submitted = await app.request("POST", "/v1/generate", {
    token: caller.key,
    json: { prompt: "cut me off", models: ["qwen-image-2.0", "wan2.7-image"] },
  });
  expect(submitted.status).toBe(202);
  const generationId: string = submitted.body.generationId;
  await until("both upstream jobs to be recorded", Date.now() + 30_000, async () => {
    const { rows } = await app.ctx.pool.query(
      "select count(*)::int as n from generation_results where generation_id = $1 and upstream_job is not null",
      [generationId],
    );
    return rows[0].n === 2 ? true : undefined;
  });
  return { caller, generationId, quoted: submitted.body.cost as number };
}

async function expectCompletedOnce(
  caller: { key: string },
  generationId: string,
  quoted: number,
  deadline: number,
) {
  const status = await until("the results to complete on the other worker", deadline, async () => {
    const res = await app.request("GET", `/v1/generate/status?ids=${generationId}`, {
      token: caller.key,
    });
    const g = res.body.generations[generationId];
    return g.status === "completed" || g.status === "failed" ? g : undefined;
  });
  expect(status).toMatchObject({
    status: "completed",
    cost: { quoted, charged: quoted, refunded: 0 },
  });
  // Each upstream saw one submission: the second run polled the job the first one submitted.
  expect(sim.calls.map((c) => c.api).sort()).toEqual(["fal", "replicate"]);
  const { rows } = await app.ctx.pool.query(
    `select r.runs, (select count(*)::int from ledger_transfers t where t.hold_id = r.hold_id and t.kind = 'hold_post') as charges,
            (select count(*)::int from ledger_transfers t where t.hold_id = r.hold_id and t.kind = 'hold_release') as refunds
     from generation_results r where r.generation_id = $1`,
    [generationId],
  );
  // Run twice (cut off, then finished elsewhere); charged once, never refunded.
  expect(rows).toEqual([
    { runs: 2, charges: 1, refunds: 0 },
    { runs: 2, charges: 1, refunds: 0 },
  ]);
  expect((await app.request("GET", "/v1/balance", { token: caller.key })).body).toMatchObject({
    creditBalance: 100 - quoted,
    heldCredits: 0,
  });
  const locked = await app.ctx.pool.query(
    "select count(*)::int as n from graphile_worker.jobs where locked_by is not null and task_identifier = 'run_generation'",
  );
  expect(locked.rows[0].n).toBe(0);
  await expectMoneyInvariants(app.ctx);
}

it("finishes a killed worker's results on another worker within 60 s, resuming their upstream jobs and charging once", async () => {
  const first = await startWorker({ WORKER_DEAD_AFTER_SECONDS: "3" });
  const { caller, generationId, quoted } = await submitLongJobs();
  await startWorker({ WORKER_DEAD_AFTER_SECONDS: "3" });
  first.child.kill("SIGKILL");
  await first.exited;
  const killedAt = Date.now();
  sim.jobMs = 0; // the upstream has done the work meanwhile
  await expectCompletedOnce(caller, generationId, quoted, killedAt + 60_000);
}, 90_000);

it("releases a stopped worker's long jobs on its way out, so another worker finishes them", async () => {
  // Dead workers are only presumed dead after two minutes here: what rescues these jobs within
  // the minute is the stopping worker's own release, not the others' heartbeat check.
  const env = { WORKER_DEAD_AFTER_SECONDS: "120", SHUTDOWN_TIMEOUT_MS: "1000" };
  const first = await startWorker(env);
  const { caller, generationId, quoted } = await submitLongJobs();
  await startWorker(env);
  first.child.kill("SIGTERM");
  expect(await first.exited).toBe(0);
  expect(first.output()).toContain("released to the other workers");
  sim.jobMs = 0;
  await expectCompletedOnce(caller, generationId, quoted, Date.now() + 60_000);
}, 90_000);

it("resumes a recorded upstream job without submitting, and submits again only when the upstream no longer knows it", async () => {
  sim.calls.length = 0;
  sim.jobMs = 0;
  const recorded: Array<{ channel: string; job: Record<string, unknown> }> = [];
  const run = (job: Record<string, unknown>) =>
    route(app.ctx, app.ctx.generations.routing, {
      model: "qwen-image-2.0",
      network: "test",
      task: {
        mediaType: "image",
        prompt: "resume me",
        aspectRatio: "1:1",
        resolution: "1K",
        seed: 7,
        referenceImageUrls: [],
      },
      upstreamJob: {
        recorded: { channel: "fal", job },
        record: async (channel, submitted) => void recorded.push({ channel, job: submitted }),
      },
    });

  // A first run submits (and records) a fal request; a second run given it only polls it.
  const first = await run({});
  expect(first.ok).toBe(true);
  expect(sim.calls).toHaveLength(1);
  expect(recorded).toHaveLength(1);
  const again = await run(recorded[0]?.job ?? {});
  expect(again).toMatchObject({ ok: true, routing: { upstream: "fal", failover: false } });
  expect(sim.calls).toHaveLength(1);
  expect(recorded).toHaveLength(1);

  // fal has forgotten the request (404): a new one is submitted, and the channel is not blamed.
  const gone = await run({
    request_id: "gone",
    status_url: `${sim.url}/fal/requests/gone/status`,
    response_url: `${sim.url}/fal/requests/gone`,
  });
  expect(gone).toMatchObject({
    ok: true,
    routing: { attempts: [{ channel: "fal", outcome: "ok" }] },
  });
  expect(sim.calls).toHaveLength(2);
  expect(recorded).toHaveLength(2);
});
