import type { Runner } from "graphile-worker";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { circuitStates } from "../../src/domains/routing/breaker.js";
import { startWorker } from "../../src/jobs/worker.js";
import {
  createFundedCaller,
  startTestApp,
  type TestApp,
  waitForGeneration,
} from "../helpers/app.js";
import { expectMoneyInvariants } from "../helpers/ledger.js";
import { type Simulator, startSimulator } from "../simulator/upstream.js";

/**
 * Routing against local servers that speak the real upstream formats, with injected faults.
 * Channels: for gpt-image-2, OpenAI-format primary and backup simulators; fal and Replicate
 * channels serve two other models; z-image-turbo has only the primary.
 */
let primary: Simulator;
let backup: Simulator;
let app: TestApp;
let worker: Runner;

beforeAll(async () => {
  primary = await startSimulator();
  backup = await startSimulator();
  const channels = [
    {
      id: "openai-primary",
      provider: "openai",
      baseUrl: `${primary.url}/openai`,
      apiKey: "sk-sim",
      networks: ["test"],
      models: { "gpt-image-2": "gpt-image-1", "z-image-turbo": "gpt-image-1" },
      priority: 0,
    },
    {
      id: "openai-backup",
      provider: "openai",
      baseUrl: `${backup.url}/openai`,
      apiKey: "sk-sim",
      networks: ["test"],
      models: { "gpt-image-2": "gpt-image-1" },
      priority: 1,
    },
    {
      id: "fal",
      provider: "fal",
      baseUrl: `${backup.url}/fal`,
      apiKey: "fal-key",
      networks: ["test"],
      models: { "qwen-image-2.0": "fal-ai/qwen-image" },
    },
    {
      id: "replicate",
      provider: "replicate",
      baseUrl: `${backup.url}/replicate`,
      apiKey: "r8-key",
      networks: ["test"],
      models: { "wan2.7-image": "wan-video/wan-2.7-image" },
    },
  ];
  app = await startTestApp({
    env: {
      LOG_LEVEL: "error",
      CHANNELS: JSON.stringify(channels),
      ROUTING_MAX_RETRIES: "1",
      UPSTREAM_TIMEOUT_MS: "400",
      CIRCUIT_FAILURE_THRESHOLD: "3",
      CIRCUIT_COOLDOWN_SECONDS: "1",
    },
  });
  worker = await startWorker(app.ctx);
});
afterAll(async () => {
  await worker.stop();
  await app.close();
  await primary.close();
  await backup.close();
});
beforeEach(async () => {
  for (const sim of [primary, backup]) {
    sim.script = [];
    sim.always = "ok";
    sim.calls.length = 0;
  }
  await app.ctx.pool.query("delete from channel_health");
});
afterEach(() => expectMoneyInvariants(app.ctx));

async function generate(models: string[], credits = 100n) {
  const caller = await createFundedCaller(app.ctx, credits, "test");
  const res = await app.request("POST", "/v1/generate", {
    token: caller.key,
    json: { prompt: "a cat", models, resolution: "1K" },
  });
  expect(res.status).toBe(202);
  const done = await waitForGeneration(app, caller.key, res.body.generationId);
  const balance = (await app.request("GET", "/v1/balance", { token: caller.key })).body;
  return { done, balance, key: caller.key };
}

describe("failover", () => {
  it("serves from the backup when the primary answers 500, charging once", async () => {
    primary.always = "error500";
    const { done, balance } = await generate(["gpt-image-2"]);
    expect(done.status).toBe("completed");
    const routing = done.results[0].routing;
    expect(routing).toMatchObject({ upstream: "openai-backup", failover: true });
    expect(
      routing.attempts.map((a: { channel: string; outcome: string }) => [a.channel, a.outcome]),
    ).toEqual([
      ["openai-primary", "upstream_500"],
      ["openai-primary", "upstream_500"],
      ["openai-backup", "ok"],
    ]);
    expect(backup.calls[0]).toMatchObject({ api: "openai", model: "gpt-image-1", prompt: "a cat" });
    expect(balance).toMatchObject({ creditBalance: 97, heldCredits: 0 });
  });

  it("fails over on a hang (timeout), a 429 and a malformed answer", async () => {
    primary.script = ["hang", "rateLimit"];
    const hung = await generate(["gpt-image-2"]);
    expect(
      hung.done.results[0].routing.attempts.map((a: { outcome: string }) => a.outcome),
    ).toEqual(["timeout", "rate_limited", "ok"]);
    expect(hung.done.results[0].routing.attempts[2].channel).toBe("openai-backup");

    await app.ctx.pool.query("delete from channel_health"); // two failures above: start afresh
    primary.script = ["malformed", "ok"];
    const retried = await generate(["gpt-image-2"]);
    expect(retried.done.results[0].routing).toMatchObject({
      upstream: "openai-primary",
      failover: false,
    });
    expect(
      retried.done.results[0].routing.attempts.map((a: { outcome: string }) => a.outcome),
    ).toEqual(["malformed_response", "ok"]);
    expect(retried.balance.creditBalance).toBe(97);
  });

  it("fails over at once from a misconfigured channel, and refuses an answer that is not an image", async () => {
    primary.script = ["unknownModel"];
    const misconfigured = await generate(["gpt-image-2"]);
    expect(
      misconfigured.done.results[0].routing.attempts.map(
        (a: { channel: string; outcome: string }) => [a.channel, a.outcome],
      ),
    ).toEqual([
      ["openai-primary", "upstream_404"],
      ["openai-backup", "ok"],
    ]);
    expect((await circuitStates(app.ctx))[0]).toMatchObject({
      channel_id: "openai-primary",
      consecutive_failures: 1,
    });

    primary.script = ["garbage", "garbage"];
    const garbage = await generate(["gpt-image-2"]);
    expect(
      garbage.done.results[0].routing.attempts.map((a: { outcome: string }) => a.outcome),
    ).toEqual(["malformed_response", "malformed_response", "ok"]);
    expect(garbage.done.results[0].routing.upstream).toBe("openai-backup");
    expect(garbage.balance.creditBalance).toBe(97);
  });

  it("does not echo the upstream's words to the caller", async () => {
    primary.always = "error500";
    backup.always = "error500";
    const { done } = await generate(["gpt-image-2"]);
    expect(done.results[0].error).toEqual({
      code: "upstream_500",
      message: "Every upstream channel for this model failed; the credits were refunded.",
    });
  });

  it("honours Retry-After before retrying the same channel", async () => {
    primary.script = ["rateLimit", "ok"];
    const started = Date.now();
    const { done } = await generate(["z-image-turbo"]);
    expect(done.status).toBe("completed");
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(done.results[0].routing.attempts.map((a: { outcome: string }) => a.outcome)).toEqual([
      "rate_limited",
      "ok",
    ]);
  });

  it("fails and refunds a result whose channels are all down; a mixed generation charges only what succeeded", async () => {
    primary.always = "error500";
    backup.always = "error500";
    const { done, balance } = await generate(["gpt-image-2", "qwen-image-2.0"]);
    // gpt-image-2's channels are down; qwen's fal channel lives on the backup simulator too.
    expect(done.status).toBe("failed");
    expect(balance).toMatchObject({ creditBalance: 100, heldCredits: 0 });

    backup.always = "ok";
    const mixed = await generate(["z-image-turbo", "qwen-image-2.0"]);
    expect(mixed.done.status).toBe("completed");
    expect(
      mixed.done.results.map((r: { model: string; status: string }) => [r.model, r.status]),
    ).toEqual([
      ["z-image-turbo", "failed"],
      ["qwen-image-2.0", "completed"],
    ]);
    expect(mixed.done.cost).toEqual({ quoted: 9, charged: 6, refunded: 3 });
    expect(mixed.done.results[0].error.code).toBe("upstream_500");
    expect(mixed.balance).toMatchObject({ creditBalance: 94, heldCredits: 0 });
  });

  it("ends at once on the caller's own error: no failover, no count against the channel, refund", async () => {
    primary.always = "contentPolicy";
    const { done, balance } = await generate(["gpt-image-2"]);
    expect(done.status).toBe("failed");
    expect(done.results[0].error.code).toBe("content_policy");
    expect(done.results[0].routing.attempts).toHaveLength(1);
    expect(backup.calls).toHaveLength(0);
    expect(await circuitStates(app.ctx)).toEqual([]);
    expect(balance.creditBalance).toBe(100);
  });
});

describe("circuit breaker", () => {
  it("opens after the threshold, skips the channel for everyone, and closes after a good probe", async () => {
    primary.always = "error500";
    await generate(["gpt-image-2"]); // 2 failures
    await generate(["gpt-image-2"]); // 3rd failure opens the circuit
    expect(await circuitStates(app.ctx)).toEqual([
      { channel_id: "openai-primary", state: "open", consecutive_failures: 3 },
    ]);

    const callsBefore = primary.calls.length;
    const skipped = await generate(["gpt-image-2"]);
    expect(primary.calls.length).toBe(callsBefore); // nobody calls an open channel
    expect(skipped.done.results[0].routing.attempts[0]).toEqual({
      channel: "openai-primary",
      outcome: "circuit_open",
      ms: 0,
    });
    expect(skipped.done.results[0].routing.upstream).toBe("openai-backup");

    primary.always = "ok";
    await new Promise((r) => setTimeout(r, 1100)); // the cooldown
    const probed = await generate(["gpt-image-2"]);
    expect(probed.done.results[0].routing).toMatchObject({
      upstream: "openai-primary",
      failover: false,
    });
    expect(await circuitStates(app.ctx)).toEqual([
      { channel_id: "openai-primary", state: "closed", consecutive_failures: 0 },
    ]);
  });

  it("reopens when the probe fails", async () => {
    primary.always = "error500";
    await generate(["gpt-image-2"]);
    await generate(["gpt-image-2"]);
    await new Promise((r) => setTimeout(r, 1100));
    const callsBefore = primary.calls.length;
    const probe = await generate(["gpt-image-2"]);
    expect(primary.calls.length).toBe(callsBefore + 1); // one probe, no retries
    expect(probe.done.results[0].routing.upstream).toBe("openai-backup");
    expect((await circuitStates(app.ctx))[0]).toMatchObject({ state: "open" });
  });
});

describe("adapters", () => {
  it("speak fal's queue API and Replicate's predictions API", async () => {
    const { done } = await generate(["qwen-image-2.0", "wan2.7-image"]);
    expect(done.status).toBe("completed");
    expect(done.results.map((r: { routing: { upstream: string } }) => r.routing.upstream)).toEqual([
      "fal",
      "replicate",
    ]);
    expect(backup.calls.map((c) => [c.api, c.model])).toEqual(
      expect.arrayContaining([
        ["fal", "fal-ai/qwen-image"],
        ["replicate", "wan-video/wan-2.7-image"],
      ]),
    );
  });
});
