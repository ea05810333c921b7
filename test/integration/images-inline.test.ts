import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { runOnce } from "graphile-worker";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { graphileLogger } from "../../src/jobs/logger.js";
import { taskList } from "../../src/jobs/tasks.js";
import { createFundedCaller, startTestApp, type TestApp } from "../helpers/app.js";
import { startCli } from "../helpers/cli.js";
import { expectMoneyInvariants } from "../helpers/ledger.js";
import { freePort } from "../helpers/ports.js";
import { until } from "../helpers/receiver.js";
import { type Simulator, startSimulator } from "../simulator/upstream.js";

/**
 * The synchronous images door runs its generation in the API process (no queue pickup, no
 * worker): charged once on success, refunded on failure, and, when that process dies mid-call,
 * resumed by a worker once its lease lapses, still charged once.
 */
let sim: Simulator;
let app: TestApp;

const channelsAt = (url: string) =>
  JSON.stringify([
    {
      id: "sim",
      provider: "openai",
      baseUrl: `${url}/openai`,
      apiKey: "k",
      networks: ["test"],
      models: { "gpt-image-2": "gpt-image-1" },
    },
  ]);

beforeAll(async () => {
  sim = await startSimulator();
  app = await startTestApp({
    env: {
      LOG_LEVEL: "error",
      IMAGES_WAIT_MS: "15000",
      ROUTING_MAX_RETRIES: "0",
      CHANNELS: channelsAt(sim.url),
    },
  });
});
afterAll(async () => {
  await app?.close();
  await sim?.close();
});

const jobsOf = async (generationId: string) =>
  (
    await app.ctx.pool.query<{ key: string; run_at: Date }>(
      "select key, run_at from graphile_worker._private_jobs where key like $1",
      [`${generationId}.%`],
    )
  ).rows;

const drainQueue = () =>
  runOnce({
    pgPool: app.ctx.pool,
    taskList: taskList(app.ctx),
    logger: graphileLogger(app.ctx.logger),
  });

describe("the synchronous images door, with no worker running", () => {
  it("answers 200 with the image, charged once; its queued job is kept from the workers, then removed, and a late run charges nothing", async () => {
    sim.always = "ok";
    const caller = await createFundedCaller(app.ctx, 10n);
    const res = await app.call("createImage", {
      token: caller.key,
      json: { model: "gpt-image-2", prompt: "in process", response_format: "b64_json" },
    });
    expect(res.status).toBe(200);
    if (!("data" in res.body)) throw new Error("no images");
    const image = res.body.data[0];
    expect(image && "b64_json" in image && image.b64_json.length).toBeGreaterThan(100);
    expect(res.body.routing).toMatchObject({ upstream: "sim" });
    const id = res.body.generationIds[0] as string;
    expect((await app.call("getBalance", { token: caller.key })).body).toMatchObject({
      creditBalance: 7,
      heldCredits: 0,
    });

    // Its job is the crash backstop: queued, not runnable until the lease ends.
    const jobs = await jobsOf(id);
    expect(jobs).toHaveLength(1);
    expect(jobs[0]?.run_at.getTime()).toBeGreaterThan(Date.now() + 5_000);

    // Had a worker run it anyway (a lapsed lease), nothing is charged again.
    await app.ctx.pool.query(
      "update graphile_worker._private_jobs set run_at = now() where key like $1",
      [`${id}.%`],
    );
    await drainQueue();
    expect(sim.calls.filter((c) => c.prompt === "in process")).toHaveLength(1);
    expect((await app.call("getBalance", { token: caller.key })).body).toMatchObject({
      creditBalance: 7,
      heldCredits: 0,
    });

    // A finished run's job goes at the next renewal.
    const second = await app.call("createImage", {
      token: caller.key,
      json: { model: "gpt-image-2", prompt: "in process, again" },
    });
    expect(second.status).toBe(200);
    const secondId = ("generationIds" in second.body && second.body.generationIds[0]) as string;
    expect(await jobsOf(secondId)).toHaveLength(1);
    await app.ctx.inlineRuns.renew();
    expect(await jobsOf(secondId)).toHaveLength(0);
    await expectMoneyInvariants(app.ctx);
  });

  it("answers 502 and refunds in full when the upstream fails", async () => {
    sim.always = "error500";
    try {
      const caller = await createFundedCaller(app.ctx, 10n);
      const res = await app.call("createImage", {
        token: caller.key,
        json: { model: "gpt-image-2", prompt: "fails in process" },
      });
      expect(res.status).toBe(502);
      expect(res.body).toMatchObject({ error: { code: "generation_failed" } });
      expect((await app.call("getBalance", { token: caller.key })).body).toMatchObject({
        creditBalance: 10,
        heldCredits: 0,
      });
      await app.ctx.inlineRuns.renew();
      await drainQueue();
      expect((await app.call("getBalance", { token: caller.key })).body).toMatchObject({
        creditBalance: 10,
        heldCredits: 0,
      });
      await expectMoneyInvariants(app.ctx);
    } finally {
      sim.always = "ok";
    }
  });
});

describe("the MCP generate tools over /mcp, with no worker running", () => {
  const connect = async (key: string, on: TestApp = app) => {
    const client = new Client({ name: "polyforge-test", version: "1.0.0" });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${on.url}/mcp`), {
        requestInit: { headers: { authorization: `Bearer ${key}` } },
      }),
    );
    return client;
  };

  it("run a waiting call in the API process: completed, charged once, its job removed", async () => {
    sim.always = "ok";
    const caller = await createFundedCaller(app.ctx, 10n);
    const client = await connect(caller.key);
    try {
      const result = await client.callTool({
        name: "generate_image",
        arguments: { prompt: "mcp in process", models: ["gpt-image-2"], waitSeconds: 30 },
      });
      expect(result.isError).toBeFalsy();
      // biome-ignore lint/suspicious/noExplicitAny: the tool's structured content, read field by field.
      const out = result.structuredContent as any;
      expect(out).toMatchObject({ status: "completed", done: true, cost: { charged: 3 } });
      expect(out.results[0]).toMatchObject({ status: "completed", routing: { upstream: "sim" } });
      expect(sim.calls.filter((c) => c.prompt === "mcp in process")).toHaveLength(1);
      expect((await app.call("getBalance", { token: caller.key })).body).toMatchObject({
        creditBalance: 7,
        heldCredits: 0,
      });
      await app.ctx.inlineRuns.renew();
      expect(await jobsOf(out.generationId)).toHaveLength(0);
    } finally {
      await client.close();
    }
  });

  it("stop waiting when the process begins to shut down (a deploy): the answer names the generation, which finishes and is charged once", async () => {
    const stopping = await startTestApp({
      env: { LOG_LEVEL: "error", ROUTING_MAX_RETRIES: "0", CHANNELS: channelsAt(sim.url) },
    });
    sim.always = "slow";
    sim.latencyMs = 1_500;
    try {
      const caller = await createFundedCaller(stopping.ctx, 10n);
      const client = await connect(caller.key, stopping);
      const call = client.callTool({
        name: "generate_image",
        arguments: { prompt: "mcp during a deploy", models: ["gpt-image-2"], waitSeconds: 60 },
      });
      await until("the upstream call to start", async () =>
        sim.calls.some((c) => c.prompt === "mcp during a deploy") ? true : undefined,
      );
      stopping.ctx.shutdown.abort();
      const result = await call;
      // biome-ignore lint/suspicious/noExplicitAny: the tool's structured content, read field by field.
      const out = result.structuredContent as any;
      expect(result.isError).toBeFalsy();
      expect(out).toMatchObject({ done: false, generationId: expect.stringMatching(/^gen_/) });
      expect(out.status).not.toBe("completed");
      await client.close();
      // The run goes on in the process and settles: charged once.
      const balance = await until("the generation to be charged", async () => {
        const b = (await stopping.call("getBalance", { token: caller.key })).body;
        return b.heldCredits === 0 ? b : undefined;
      });
      expect(balance.creditBalance).toBe(7);
      expect(sim.calls.filter((c) => c.prompt === "mcp during a deploy")).toHaveLength(1);
      await expectMoneyInvariants(stopping.ctx);
    } finally {
      sim.always = "ok";
      sim.latencyMs = 0;
      await stopping.close();
    }
  });

  it("leave a call that does not wait to the queue", async () => {
    sim.always = "ok";
    const caller = await createFundedCaller(app.ctx, 10n);
    const client = await connect(caller.key);
    try {
      const result = await client.callTool({
        name: "generate_image",
        arguments: { prompt: "mcp queued", models: ["gpt-image-2"], waitSeconds: 0 },
      });
      // biome-ignore lint/suspicious/noExplicitAny: the tool's structured content, read field by field.
      const out = result.structuredContent as any;
      expect(out).toMatchObject({ done: false, status: "pending" });
      // Runnable by a worker now, not leased to this process.
      const jobs = await jobsOf(out.generationId);
      expect(jobs).toHaveLength(1);
      expect(jobs[0]?.run_at.getTime()).toBeLessThanOrEqual(Date.now() + 1_000);
      await drainQueue();
      expect(sim.calls.filter((c) => c.prompt === "mcp queued")).toHaveLength(1);
      expect((await app.call("getBalance", { token: caller.key })).body).toMatchObject({
        creditBalance: 7,
        heldCredits: 0,
      });
      await expectMoneyInvariants(app.ctx);
    } finally {
      await client.close();
    }
  });
});

describe("an API process killed in the middle of a synchronous call", () => {
  it("leaves the generation to a worker once its lease lapses, and it is charged once", async () => {
    sim.always = "ok";
    let letGo = () => {};
    sim.held = new Promise<void>((resolve) => {
      letGo = resolve;
    });
    const caller = await createFundedCaller(app.ctx, 10n);
    const port = await freePort();
    const serve = startCli(["serve"], {
      DATABASE_URL: app.database.url,
      PORT: String(port),
      HOST: "127.0.0.1",
      PUBLIC_URL: `http://127.0.0.1:${port}`,
      STORAGE_DIR: app.ctx.config.storageDir,
      RATE_LIMITS: "off",
      LOG_LEVEL: "info",
      IMAGES_WAIT_MS: "300000",
      INLINE_LEASE_SECONDS: "1",
      CHANNELS: channelsAt(sim.url),
    });
    try {
      await serve.waitFor("API listening");
      const answer = fetch(`http://127.0.0.1:${port}/v1/images/generations`, {
        method: "POST",
        headers: { authorization: `Bearer ${caller.key}`, "content-type": "application/json" },
        body: JSON.stringify({ model: "gpt-image-2", prompt: "killed mid-call" }),
      }).catch((err: unknown) => err);
      // The upstream has the call: the process is in the middle of it.
      const deadline = Date.now() + 20_000;
      while (!sim.calls.some((c) => c.prompt === "killed mid-call")) {
        if (Date.now() > deadline) throw new Error(`the call never reached the upstream`);
        await new Promise((r) => setTimeout(r, 20));
      }
      serve.child.kill("SIGKILL");
      await serve.exited;
      expect(await answer).toBeInstanceOf(Error);
      letGo();

      const { rows } = await app.ctx.pool.query<{ id: string; status: string }>(
        `select r.id, r.status::text from generation_results r join generations g on g.id = r.generation_id
          where g.account_id = $1`,
        [caller.account.id],
      );
      expect(rows).toEqual([{ id: expect.any(String), status: "processing" }]);
      // Once the lease lapses, a worker takes the job and resumes the generation.
      await new Promise((r) => setTimeout(r, 1_200));
      await drainQueue();
      const after = await app.ctx.pool.query<{ status: string; charged: number }>(
        "select status::text, charged::int from generation_results where id = $1",
        [rows[0]?.id],
      );
      expect(after.rows).toEqual([{ status: "completed", charged: 30_000 }]); // ledger units
      expect((await app.call("getBalance", { token: caller.key })).body).toMatchObject({
        creditBalance: 7,
        heldCredits: 0,
      });
      await expectMoneyInvariants(app.ctx);
    } finally {
      letGo();
      sim.held = undefined;
      if (serve.child.exitCode === null) serve.child.kill("SIGKILL");
      await serve.exited;
    }
  }, 60_000);
});
