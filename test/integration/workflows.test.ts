import { sql } from "drizzle-orm";
import type { Runner } from "graphile-worker";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { runResult } from "../../src/domains/generations/run.js";
import { userLedgerAccount } from "../../src/domains/ledger/accounts.js";
import { advanceWorkflowRun } from "../../src/domains/workflows/service.js";
import { startWorker } from "../../src/jobs/worker.js";
import {
  createAccountWithKey,
  createFundedCaller,
  startTestApp,
  type TestApp,
} from "../helpers/app.js";
import { solidPng } from "../helpers/images.js";
import { expectMoneyInvariants } from "../helpers/ledger.js";
import { type Simulator, startSimulator } from "../simulator/upstream.js";

/**
 * Studio workflows: a saved graph of generation requests run against a studio reservation.
 * Steps run on the sandbox, except qwen-image-2.0 (fal's wire format) and gpt-image-2 (OpenAI's)
 * on the local upstream simulator, which records what it is sent and can refuse on demand.
 */

let app: TestApp;
let worker: Runner;
let sim: Simulator;

beforeAll(async () => {
  sim = await startSimulator();
  app = await startTestApp({
    env: {
      LOG_LEVEL: "error",
      CHANNELS: JSON.stringify([
        {
          id: "sandbox",
          provider: "sandbox",
          networks: ["test"],
          models: {
            "z-image-turbo": "z-image-turbo",
            "wan2.7-image": "wan2.7-image",
            "sora-2-preview": "sora-2-preview",
          },
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
          id: "openai",
          provider: "openai",
          baseUrl: `${sim.url}/openai`,
          apiKey: "sk-sim",
          networks: ["test"],
          models: { "gpt-image-2": "gpt-image-1" },
        },
      ]),
    },
  });
  worker = await startWorker(app.ctx);
});

afterAll(async () => {
  await worker?.stop();
  await app?.close();
  await sim?.close();
});

afterEach(async () => {
  sim.always = "ok";
  sim.script.length = 0;
  await expectMoneyInvariants(app.ctx);
});

// Catalog prices (credits): z-image-turbo 3, qwen-image-2.0 6, wan2.7-image 7, gpt-image-2 at 2K 4.
const Z = 3;
const QWEN = 6;
const WAN = 7;
const GPT_2K = 4;

const balanceOf = async (key: string) => (await app.call("getBalance", { token: key })).body;

async function save(key: string, body: unknown) {
  return app.request("POST", "/v1/workflows", { token: key, json: body });
}

async function saved(key: string, body: unknown): Promise<string> {
  const res = await save(key, body);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id;
}

async function waitForRun(key: string, workflowId: string, runId: string, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await app.request("GET", `/v1/workflows/${workflowId}/runs/${runId}`, {
      token: key,
    });
    expect(res.status).toBe(200);
    if (res.body.status !== "running") return res.body;
    if (Date.now() > deadline)
      throw new Error(`run ${runId} did not end: ${JSON.stringify(res.body)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Bytes at one of our URLs, fetched from the test app (PUBLIC_URL names another host). */
async function bytesAt(url: string): Promise<Buffer> {
  const { pathname, search } = new URL(url);
  const res = await fetch(app.url + pathname + search);
  expect(res.status, url).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

async function upload(key: string, bytes: Buffer): Promise<{ id: string; url: string }> {
  const form = new FormData();
  form.append("file", new Blob([new Uint8Array(bytes)]), "ref.png");
  const res = await fetch(`${app.url}/v1/upload-image`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}` },
    body: form,
  });
  expect(res.status).toBe(201);
  return (await res.json()) as { id: string; url: string };
}

const sketchThenPaint = (extra: Record<string, unknown> = {}) => ({
  name: "sketch, then paint it",
  steps: [
    {
      id: "sketch",
      request: { prompt: "a lighthouse at dusk, pencil", models: ["z-image-turbo"] },
    },
    {
      id: "paint",
      request: {
        prompt: "the same lighthouse, as a watercolour",
        models: ["qwen-image-2.0"],
        ...extra,
      },
      referenceSteps: [{ step: "sketch" }],
    },
  ],
});

describe("running a workflow", () => {
  it("hands the first step's output to the second step's upstream and reports each step's result", async () => {
    const { key } = await createFundedCaller(app.ctx, 100n);
    const ownRef = await solidPng(24, 24, "#36c");
    const uploaded = await upload(key, ownRef);
    const workflowId = await saved(key, sketchThenPaint({ referenceImageUrls: [uploaded.url] }));
    const workflow = (await app.request("GET", `/v1/workflows/${workflowId}`, { token: key })).body;
    expect(workflow).toMatchObject({ id: workflowId, cost: Z + QWEN, network: "test" });
    expect(workflow.steps[1].referenceSteps).toEqual([{ step: "sketch" }]);

    sim.calls.length = 0;
    const started = await app.request("POST", `/v1/workflows/${workflowId}/run`, { token: key });
    expect(started.status).toBe(202);
    expect(started.body).toMatchObject({
      runId: expect.stringMatching(/^wfr_[0-9a-z]{26}$/),
      workflowId,
      status: "running",
      cost: { quoted: Z + QWEN },
      reservation: { status: "active", reservedCredits: Z + QWEN },
    });
    // The first step is submitted before the answer; the second waits for it (the first may
    // just have finished on a fast machine, so its state is not pinned down here).
    const [sketch, paint] = started.body.steps;
    expect(sketch).toMatchObject({ id: "sketch", cost: Z });
    expect(sketch.generationId).toMatch(/^gen_/);
    expect(sketch.generation.reservationId).toBe(started.body.reservation.reservationId);
    expect(paint).toMatchObject({ id: "paint", cost: QWEN });
    if (sketch.status === "running") {
      expect(paint).toMatchObject({ status: "waiting", generationId: null });
    }
    // The whole quote left the balance for the reservation, and nothing more ever does.
    expect((await balanceOf(key)).creditBalance).toBe(100 - Z - QWEN);

    const run = await waitForRun(key, workflowId, started.body.runId);
    expect(run.status).toBe("completed");
    const [first, second] = run.steps;
    for (const step of run.steps) {
      expect(step.status).toBe("completed");
      expect(step.error).toBeNull();
      expect(step.generation).toMatchObject({
        generationId: step.generationId,
        status: "completed",
        reservationId: run.reservation.reservationId,
        cost: { quoted: step.cost, charged: step.cost, refunded: 0 },
      });
      expect(step.generation.results[0].imageUrl).toMatch(/^http:\/\/localhost:3000\/v1\/download/);
    }

    // The second step's upstream was handed signed URLs of our copies: the step's own reference
    // first, then the first step's output, byte for byte.
    const falCalls = sim.calls.filter((c) => c.api === "fal");
    expect(falCalls).toHaveLength(1);
    expect(falCalls[0]?.prompt).toBe("the same lighthouse, as a watercolour");
    const given = falCalls[0]?.input?.image_urls as string[];
    expect(given).toHaveLength(2);
    for (const url of given) {
      expect(new URL(url).pathname).toMatch(/^\/v1\/uploads\/img_[0-9a-z]{26}$/);
      expect(url).toMatch(/[?&]signature=/);
    }
    const firstOutput = await bytesAt(first.generation.results[0].imageUrl);
    expect(firstOutput.subarray(0, 8)).toEqual(Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]));
    expect(await bytesAt(given[0] as string)).toEqual(ownRef);
    expect(await bytesAt(given[1] as string)).toEqual(firstOutput);
    expect(second.generation.results[0].model).toBe("qwen-image-2.0");

    // Everything was spent: the reservation settled with nothing left to return.
    expect(run.cost).toEqual({ quoted: Z + QWEN, charged: Z + QWEN, refunded: 0 });
    expect(run.reservation).toMatchObject({
      status: "settled",
      reservedCredits: Z + QWEN,
      usedCredits: Z + QWEN,
      returnedCredits: 0,
      availableCredits: 0,
    });
    expect(run.finishedAt).not.toBeNull();
    expect(await balanceOf(key)).toMatchObject({
      creditBalance: 100 - Z - QWEN,
      heldCredits: 0,
    });
  });

  it("skips the steps that need a failed step, and returns their share when it settles", async () => {
    const { key } = await createFundedCaller(app.ctx, 100n);
    const workflowId = await saved(key, {
      name: "one fails",
      steps: [
        { id: "a", request: { prompt: "refused", models: ["gpt-image-2"], resolution: "2K" } },
        {
          id: "b",
          request: { prompt: "needs a", models: ["z-image-turbo"] },
          referenceSteps: [{ step: "a" }],
        },
        { id: "c", request: { prompt: "on its own", models: ["wan2.7-image"] } },
      ],
    });
    const total = GPT_2K + Z + WAN;
    // The upstream refuses the prompt: a caller error, failed at once and refunded.
    sim.always = "contentPolicy";
    const started = await app.call("runWorkflow", { params: { id: workflowId }, token: key });
    expect(started.status).toBe(202);
    expect(started.body.cost.quoted).toBe(total);

    const run = await waitForRun(key, workflowId, started.body.runId);
    expect(run.status).toBe("failed");
    const [a, b, c] = run.steps;
    expect(a).toMatchObject({ id: "a", status: "failed", error: { code: "content_policy" } });
    expect(a.generation.cost).toEqual({ quoted: GPT_2K, charged: 0, refunded: GPT_2K });
    expect(b).toMatchObject({
      id: "b",
      status: "skipped",
      generationId: null,
      generation: null,
      error: { code: "dependency_failed" },
    });
    expect(c).toMatchObject({ id: "c", status: "completed" });
    expect(c.generation.cost).toEqual({ quoted: WAN, charged: WAN, refunded: 0 });
    // Only one step was ever sent upstream from the simulator's side: b was never submitted.
    expect(sim.calls.filter((call) => call.prompt === "needs a")).toEqual([]);

    // a's share came back when it failed, b's (never drawn) when the reservation settled.
    expect(run.reservation).toMatchObject({
      status: "settled",
      reservedCredits: total,
      usedCredits: GPT_2K + WAN,
      returnedCredits: Z,
      availableCredits: 0,
    });
    expect(run.cost).toEqual({ quoted: total, charged: WAN, refunded: GPT_2K + Z });
    expect(await balanceOf(key)).toMatchObject({ creditBalance: 100 - WAN, heldCredits: 0 });
  });

  it("refuses a step whose pass fee rose after the run was quoted, not the share of another step", async () => {
    const creator = await createFundedCaller(app.ctx, 1n);
    const pass = await app.call("createPass", {
      token: creator.key,
      json: { name: "Ink", stylePrompt: "ink wash", fee: 2 },
    });
    const { key } = await createFundedCaller(app.ctx, 100n);
    const workflowId = await saved(key, {
      name: "fee rises",
      steps: [
        { id: "a", request: { prompt: "slow", models: ["gpt-image-2"], resolution: "2K" } },
        {
          id: "b",
          request: { prompt: "styled", models: ["z-image-turbo"], stylePassIds: [pass.body.id] },
          referenceSteps: [{ step: "a" }],
        },
        {
          id: "c",
          request: { prompt: "plain", models: ["z-image-turbo"] },
          referenceSteps: [{ step: "a" }],
        },
      ],
    });
    const total = GPT_2K + Z + 2 + Z;
    sim.latencyMs = 300;
    sim.always = "slow";
    const started = await app.call("runWorkflow", { params: { id: workflowId }, token: key });
    expect(started.body.cost.quoted).toBe(total);
    // While a runs, the creator raises the fee b was quoted at.
    await app.call("updatePass", {
      params: { id: pass.body.id },
      token: creator.key,
      json: { fee: 4 },
    });
    const run = await waitForRun(key, workflowId, started.body.runId);
    sim.latencyMs = 0;
    expect(run.status).toBe("failed");
    expect(run.steps[0]).toMatchObject({ id: "a", status: "completed" });
    expect(run.steps[1]).toMatchObject({
      id: "b",
      status: "failed",
      generationId: null,
      error: { code: "insufficient_credits" },
    });
    // b could not take c's share: c ran as quoted.
    expect(run.steps[2]).toMatchObject({ id: "c", status: "completed" });
    expect(run.reservation).toMatchObject({
      status: "settled",
      usedCredits: GPT_2K + Z,
      returnedCredits: Z + 2,
    });
    expect(await balanceOf(key)).toMatchObject({
      creditBalance: 100 - GPT_2K - Z,
      heldCredits: 0,
    });
  });

  it("skips a step whose referenced model failed even though its step completed", async () => {
    const { key } = await createFundedCaller(app.ctx, 100n);
    const workflowId = await saved(key, {
      name: "model reference",
      steps: [
        {
          id: "pair",
          request: { prompt: "two takes", models: ["z-image-turbo", "gpt-image-2"] },
        },
        {
          id: "from-gpt",
          request: { prompt: "needs the gpt take", models: ["wan2.7-image"] },
          referenceSteps: [{ step: "pair", model: "gpt-image-2" }],
        },
      ],
    });
    sim.always = "contentPolicy";
    const started = await app.call("runWorkflow", { params: { id: workflowId }, token: key });
    const run = await waitForRun(key, workflowId, started.body.runId);
    expect(run.steps.map((s: { status: string }) => s.status)).toEqual(["completed", "skipped"]);
    expect(run.reservation).toMatchObject({ usedCredits: Z + 3, returnedCredits: WAN });
    // gpt-image-2 at 1K costs 3 and failed: only z-image-turbo was charged.
    expect(await balanceOf(key)).toMatchObject({ creditBalance: 100 - Z, heldCredits: 0 });
  });

  it("queues the advance with the step's settlement, and advances each step once however often and concurrently it runs", async () => {
    const { key, account } = await createFundedCaller(app.ctx, 100n);
    const workflowId = await saved(key, sketchThenPaint());
    const queuedAdvances = async () => {
      const { rows } = await app.ctx.db.execute<{ n: number }>(sql`
        select count(*)::int as n from graphile_worker.jobs where task_identifier = 'advance_workflow_run'`);
      return rows[0]?.n ?? 0;
    };
    // No worker for a while: this test plays the jobs itself.
    await worker.stop();
    let runId: string;
    try {
      const started = await app.request("POST", `/v1/workflows/${workflowId}/run`, { token: key });
      runId = started.body.runId;
      const sketchGeneration = started.body.steps[0].generationId as string;
      // Settling the first step's result queues the run's advance, in the same transaction.
      const before = await queuedAdvances();
      await runResult(app.ctx, app.ctx.generations, `${sketchGeneration}.0`);
      expect(await queuedAdvances()).toBe(before + 1);

      // Five advances at once: the second step is submitted once.
      const advance = () => advanceWorkflowRun(app.ctx, runId);
      await Promise.all([advance(), advance(), advance(), advance(), advance()]);
      const mid = (
        await app.call("getWorkflowRun", { params: { id: workflowId, runId }, token: key })
      ).body;
      expect(mid.steps.map((s: { status: string }) => s.status)).toEqual(["completed", "running"]);
      expect(mid.reservation).toMatchObject({ usedCredits: Z + QWEN, availableCredits: 0 });
    } finally {
      worker = await startWorker(app.ctx);
    }
    const run = await waitForRun(key, workflowId, runId);
    expect(run.status).toBe("completed");
    await Promise.all([advanceWorkflowRun(app.ctx, runId), advanceWorkflowRun(app.ctx, runId)]);

    // One generation per step, and one upload: the first step's output, for the second.
    const { rows } = await app.ctx.db.execute<{ generations: number; uploads: number }>(sql`
      select (select count(*)::int from generations where account_id = ${account.id}) as generations,
             (select count(*)::int from uploads where account_id = ${account.id}) as uploads`);
    expect(rows[0]).toEqual({ generations: 2, uploads: 1 });
    const again = (
      await app.call("getWorkflowRun", { params: { id: workflowId, runId }, token: key })
    ).body;
    expect(again).toEqual(run);
    expect(again.reservation).toMatchObject({ usedCredits: Z + QWEN, returnedCredits: 0 });
    expect(await balanceOf(key)).toMatchObject({
      creditBalance: 100 - Z - QWEN,
      heldCredits: 0,
    });
  });

  it("refuses a run the balance cannot fund with 402, holding and recording nothing", async () => {
    const { key, account } = await createFundedCaller(app.ctx, 5n);
    const workflowId = await saved(key, sketchThenPaint());
    const res = await app.call("runWorkflow", { params: { id: workflowId }, token: key });
    expect(res.status).toBe(402);
    expect(res.body.error).toMatchObject({
      code: "insufficient_credits",
      need: Z + QWEN,
      have: 5,
    });
    expect(await balanceOf(key)).toMatchObject({ creditBalance: 5, heldCredits: 0 });
    const { rows } = await app.ctx.db.execute<{ runs: number; holds: number }>(sql`
      select (select count(*)::int from workflow_runs where workflow_id = ${workflowId}) as runs,
             (select count(*)::int from ledger_holds
              where account_id = ${userLedgerAccount(account.id, "test")}) as holds`);
    expect(rows[0]).toEqual({ runs: 0, holds: 0 });
  });
});

describe("validating a workflow", () => {
  const step = (id: string, extra: Record<string, unknown> = {}) => ({
    id,
    request: { prompt: `step ${id}`, models: ["z-image-turbo"] },
    ...extra,
  });

  async function refused(key: string, body: unknown) {
    const res = await save(key, body);
    expect(res.status, JSON.stringify(res.body)).toBe(400);
    return res.body.error;
  }

  it("names the field of each problem of the graph with its own code", async () => {
    const { key } = await createFundedCaller(app.ctx, 100n);
    expect(await refused(key, { name: "dup", steps: [step("a"), step("a")] })).toMatchObject({
      code: "duplicate_step_id",
      field: "steps.1.id",
    });
    expect(
      await refused(key, {
        name: "unknown",
        steps: [step("a"), step("b", { referenceSteps: [{ step: "nope" }] })],
      }),
    ).toMatchObject({ code: "unknown_step_reference", field: "steps.1.referenceSteps.0.step" });
    const cycle = await refused(key, {
      name: "cycle",
      steps: [
        step("a", { referenceSteps: [{ step: "b" }] }),
        step("b", { referenceSteps: [{ step: "a" }] }),
      ],
    });
    expect(cycle).toMatchObject({ code: "workflow_cycle", field: "steps.1.referenceSteps.0.step" });
    expect(cycle.message).toContain("a → b → a");
    expect(
      await refused(key, {
        name: "self",
        steps: [step("a", { referenceSteps: [{ step: "a" }] })],
      }),
    ).toMatchObject({ code: "workflow_cycle", field: "steps.0.referenceSteps.0.step" });
    expect(
      await refused(key, {
        name: "video",
        steps: [
          {
            id: "clip",
            request: {
              prompt: "waves",
              mediaType: "video",
              models: ["sora-2-preview"],
              duration: 4,
            },
          },
          step("still", { referenceSteps: [{ step: "clip" }] }),
        ],
      }),
    ).toMatchObject({ code: "step_reference_not_image", field: "steps.1.referenceSteps.0.step" });
    // Without mediaType, a step of video models is a video step all the same.
    const unnamed = await refused(key, {
      name: "video, unnamed",
      steps: [
        { id: "clip", request: { prompt: "waves", models: ["sora-2-preview"], duration: 4 } },
        step("still", { referenceSteps: [{ step: "clip" }] }),
      ],
    });
    expect(unnamed).toMatchObject({
      code: "step_reference_not_image",
      field: "steps.1.referenceSteps.0.step",
    });
    expect(unnamed.message).toContain("makes videos");
    expect(
      await refused(key, {
        name: "model",
        steps: [step("a"), step("b", { referenceSteps: [{ step: "a", model: "qwen-image-2.0" }] })],
      }),
    ).toMatchObject({ code: "unknown_step_reference", field: "steps.1.referenceSteps.0.model" });
    // 7 URLs of its own and one image per model of a two-model step: 9 > 8.
    expect(
      await refused(key, {
        name: "too many",
        steps: [
          { id: "a", request: { prompt: "two", models: ["z-image-turbo", "wan2.7-image"] } },
          {
            id: "b",
            request: {
              prompt: "b",
              models: ["z-image-turbo"],
              referenceImageUrls: Array.from(
                { length: 7 },
                (_, i) => `https://example.com/${i}.png`,
              ),
            },
            referenceSteps: [{ step: "a" }],
          },
        ],
      }),
    ).toMatchObject({ code: "too_many_reference_images", field: "steps.1.referenceSteps" });
    const tooLong = await refused(key, {
      name: "eleven",
      steps: Array.from({ length: 11 }, (_, i) => step(`s${i}`)),
    });
    expect(tooLong.code).toBe("invalid_request");
    expect(tooLong.issues[0].path).toBe("steps");

    // Nothing was saved.
    const list = await app.call("listWorkflows", { token: key });
    expect(list.body).toEqual({ data: [], nextCursor: null });
  });

  it("refuses a step's request as POST /v1/generate would, naming the step", async () => {
    const { key } = await createFundedCaller(app.ctx, 100n);
    const badModel = await refused(key, {
      name: "bad model",
      steps: [step("a"), { id: "b", request: { prompt: "b", models: ["no-such-model"] } }],
    });
    expect(badModel).toMatchObject({ code: "invalid_model", field: "steps.1.request.models" });
    expect(badModel.message).toMatch(/^steps\[1\] \(b\): Unknown model no-such-model/);
    expect(
      await refused(key, {
        name: "no duration",
        steps: [
          { id: "v", request: { prompt: "v", mediaType: "video", models: ["sora-2-preview"] } },
        ],
      }),
    ).toMatchObject({ code: "duration_required", field: "steps.0.request.duration" });
    // A run funds its steps itself: a reservation or webhook of a step's own is refused.
    const reservation = await refused(key, {
      name: "reservation",
      steps: [
        { id: "a", request: { prompt: "a", models: ["z-image-turbo"], reservationId: "res_x" } },
      ],
    });
    expect(reservation.code).toBe("invalid_request");
    expect(reservation.issues[0]).toMatchObject({ path: "steps.0.request" });
    expect(reservation.message).toContain("reservationId");
    const noPrompt = await refused(key, {
      name: "no prompt",
      steps: [{ id: "a", request: { models: ["z-image-turbo"] } }],
    });
    expect(noPrompt.issues[0].path).toBe("steps.0.request.prompt");
  });

  it("refuses another account's upload and an unsafe URL as references when saving, and saves nothing", async () => {
    const { key } = await createFundedCaller(app.ctx, 100n);
    const other = await createFundedCaller(app.ctx, 100n);
    const png = await solidPng(24, 24, "#36c");
    const theirs = await upload(other.key, png);
    const foreign = await refused(key, {
      name: "their upload",
      steps: [
        step("a"),
        step("b", {
          request: { prompt: "b", models: ["z-image-turbo"], referenceImageUrls: [theirs.url] },
        }),
      ],
    });
    expect(foreign).toMatchObject({
      code: "invalid_reference_image",
      field: "steps.1.request.referenceImageUrls",
    });
    expect(foreign.message).toContain(theirs.id);
    const unsafe = await refused(key, {
      name: "metadata",
      steps: [
        step("a", {
          request: {
            prompt: "a",
            models: ["z-image-turbo"],
            referenceImageUrls: ["http://169.254.169.254/latest/meta-data"],
          },
        }),
      ],
    });
    expect(unsafe).toMatchObject({
      code: "unsafe_url",
      field: "steps.0.request.referenceImageUrls",
    });
    // The owner's own upload is fine.
    const mine = await upload(key, png);
    const saved = await save(key, {
      name: "my upload",
      steps: [
        step("a", {
          request: { prompt: "a", models: ["z-image-turbo"], referenceImageUrls: [mine.url] },
        }),
      ],
    });
    expect(saved.status).toBe(201);
    const listed = await app.call("listWorkflows", { token: key });
    expect(listed.body.data.map((w: { name: string }) => w.name)).toEqual(["my upload"]);
  });
});

describe("reading and deleting workflows", () => {
  it("lists the caller's workflows, newest first, a page at a time", async () => {
    const { key } = await createFundedCaller(app.ctx, 100n);
    const first = await saved(key, sketchThenPaint());
    const second = await saved(key, { ...sketchThenPaint(), name: "second" });
    const page = await app.call("listWorkflows", { token: key, query: { limit: 1 } });
    expect(page.body.data.map((w: { id: string }) => w.id)).toEqual([second]);
    expect(page.body.nextCursor).toBe(second);
    const next = await app.call("listWorkflows", {
      token: key,
      query: { limit: 1, cursor: second },
    });
    expect(next.body).toMatchObject({ data: [{ id: first }], nextCursor: null });
  });

  it("is 404 for an unknown workflow, another account's, and a deleted one", async () => {
    const { key } = await createFundedCaller(app.ctx, 100n);
    const stranger = await createFundedCaller(app.ctx, 100n);
    const live = await createAccountWithKey(app.ctx, "live");
    const workflowId = await saved(key, sketchThenPaint());
    const started = await app.call("runWorkflow", { params: { id: workflowId }, token: key });
    const runPath = `/v1/workflows/${workflowId}/runs/${started.body.runId}`;

    for (const token of [stranger.key, live.key]) {
      expect((await app.call("getWorkflow", { params: { id: workflowId }, token })).status).toBe(
        404,
      );
      expect((await app.request("GET", runPath, { token })).status).toBe(404);
      expect((await app.call("runWorkflow", { params: { id: workflowId }, token })).status).toBe(
        404,
      );
      expect((await app.call("deleteWorkflow", { params: { id: workflowId }, token })).status).toBe(
        404,
      );
    }
    expect((await app.call("listWorkflows", { token: stranger.key })).body.data).toEqual([]);
    const unknown = "wf_01arz3ndektsv4rrffq69g5fav";
    const missing = await app.call("getWorkflow", { params: { id: unknown }, token: key });
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe("not_found");
    // A run is read under its own workflow only.
    const other = await saved(key, sketchThenPaint());
    expect(
      (
        await app.call("getWorkflowRun", {
          params: { id: other, runId: started.body.runId },
          token: key,
        })
      ).status,
    ).toBe(404);

    const deleted = await app.call("deleteWorkflow", { params: { id: workflowId }, token: key });
    expect(deleted.status).toBe(204);
    expect((await app.call("getWorkflow", { params: { id: workflowId }, token: key })).status).toBe(
      404,
    );
    expect((await app.call("runWorkflow", { params: { id: workflowId }, token: key })).status).toBe(
      404,
    );
    expect(
      (await app.call("deleteWorkflow", { params: { id: workflowId }, token: key })).status,
    ).toBe(404);
    const list = await app.call("listWorkflows", { token: key });
    expect(list.body.data.map((w: { id: string }) => w.id)).toEqual([other]);
    // The run started before the delete goes on to the end, and stays readable.
    const run = await waitForRun(key, workflowId, started.body.runId);
    expect(run.status).toBe("completed");
    expect(await balanceOf(key)).toMatchObject({ creditBalance: 100 - Z - QWEN, heldCredits: 0 });
  });
});
