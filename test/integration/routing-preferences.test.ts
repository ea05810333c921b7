import type { Runner } from "graphile-worker";
import OpenAI, { toFile } from "openai";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { makeWav } from "../../src/domains/providers/wav.js";
import { measuredLatencies } from "../../src/domains/routing/latency.js";
import type { RoutingPreferences } from "../../src/domains/routing/preferences.js";
import { route } from "../../src/domains/routing/router.js";
import { startWorker } from "../../src/jobs/worker.js";
import {
  createFundedCaller,
  startTestApp,
  type TestApp,
  waitForGeneration,
} from "../helpers/app.js";
import { expectMoneyInvariants } from "../helpers/ledger.js";
import { until } from "../helpers/receiver.js";
import {
  clearFaults,
  type Simulator,
  simulatedChannel,
  startSimulator,
} from "../simulator/upstream.js";

/**
 * A caller's `routing` preferences over real doors: gpt-image-2 has three channels, in the
 * configured order openai-main (cost 4), fal-cheap (cost 1), replicate-far (no cost); the chat
 * model two; speech and transcription two sandbox channels each. The preferences reorder and
 * narrow them, `sort` orders by cost or by the latency measured on earlier calls, and what
 * cannot be honoured is refused before anything is held.
 */
const IMAGE = "gpt-image-2";
const CHAT = "gpt-5.4-mini";

let sim: Simulator;
let app: TestApp;
let worker: Runner;
beforeAll(async () => {
  sim = await startSimulator();
  const sandbox = (id: string, priority: number) => ({
    id,
    provider: "sandbox",
    networks: ["test"],
    models: { "tts-1": "tts-1", "whisper-1": "whisper-1" },
    priority,
  });
  app = await startTestApp({
    env: {
      LOG_LEVEL: "error",
      ROUTING_BACKOFF_MS: "1",
      ROUTING_MAX_RETRIES: "1",
      CHANNELS: JSON.stringify([
        {
          ...simulatedChannel(
            sim,
            "openai",
            { [IMAGE]: "gpt-image-1", [CHAT]: CHAT },
            { id: "openai-main" },
          ),
          cost: 4,
        },
        {
          ...simulatedChannel(
            sim,
            "fal",
            { [IMAGE]: "fal-ai/gpt-image" },
            { id: "fal-cheap", priority: 1 },
          ),
          cost: 1,
        },
        simulatedChannel(
          sim,
          "replicate",
          { [IMAGE]: "openai/gpt-image" },
          { id: "replicate-far", priority: 2 },
        ),
        simulatedChannel(
          sim,
          "anthropic",
          { [CHAT]: "claude-haiku-4-5" },
          { id: "anthropic-backup", priority: 1 },
        ),
        {
          ...simulatedChannel(sim, "anthropic", {}, { id: "anthropic-any", priority: 3 }),
          models: "*",
        },
        sandbox("sandbox-a", 0),
        sandbox("sandbox-b", 1),
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
beforeEach(() => {
  clearFaults(sim);
  sim.calls.length = 0;
});
afterEach(() => expectMoneyInvariants(app.ctx));

async function caller(credits = 100n) {
  const funded = await createFundedCaller(app.ctx, credits, "test");
  const balance = async () =>
    (await app.call("getBalance", { token: funded.key })).body.creditBalance as number;
  return { ...funded, balance };
}

/** One image through the OpenAI images door (answered when done), with these preferences. */
async function image(key: string, routing: unknown) {
  return app.request("POST", "/v1/images/generations", {
    token: key,
    json: { model: IMAGE, prompt: "a lighthouse", size: "1024x1024", routing },
  });
}

const tried = (routing: { attempts: Array<{ channel: string; outcome: string }> }) =>
  routing.attempts.map((a) => [a.channel, a.outcome]);

describe("routing preferences", () => {
  // First in the file: each channel's first success is written at once (later ones are folded
  // into a second's mean), so these calls are what the latency sort reads.
  it("sort: latency follows the latency measured on earlier calls", async () => {
    const { key } = await caller();
    sim.latencyMs = 700;
    sim.byApi.openai = { script: ["slow"] };
    expect((await image(key, { only: ["openai-main"] })).status).toBe(200);
    expect((await image(key, { only: ["fal-cheap"] })).status).toBe(200);
    // Written after the answer, not waited for by it.
    const channels = ["openai-main", "fal-cheap", "replicate-far"];
    await until("both latencies written", async () => {
      return (await measuredLatencies(app.ctx, IMAGE, channels)).size === 2;
    });
    const measured = await measuredLatencies(app.ctx, IMAGE, channels);
    // Per model: the chat model has no measure on these channels yet.
    expect((await measuredLatencies(app.ctx, CHAT, channels)).size).toBe(0);
    expect(measured.get("openai-main")).toBeGreaterThanOrEqual(700);
    expect(measured.get("fal-cheap")).toBeLessThan(measured.get("openai-main") as number);
    expect(measured.has("replicate-far")).toBe(false);

    const sorted = await image(key, { sort: "latency" });
    expect(sorted.status).toBe(200);
    expect(sorted.body.routing).toMatchObject({
      upstream: "fal-cheap",
      failover: false,
      preferences: { sort: "latency" },
    });
  });

  it("order, only and ignore choose the channel on /v1/generate, and the result repeats them", async () => {
    const { key } = await caller();
    const generate = async (routing: unknown) => {
      const res = await app.call("generate", {
        token: key,
        json: { prompt: "a lighthouse", models: [IMAGE], routing },
      });
      expect(res.status).toBe(202);
      const done = await waitForGeneration(app, key, res.body.generationId);
      expect(done.status).toBe("completed");
      return done.results[0].routing;
    };
    expect(await generate({ order: ["replicate-far", "fal-cheap"] })).toMatchObject({
      upstream: "replicate-far",
      failover: false,
      preferences: { order: ["replicate-far", "fal-cheap"] },
    });
    expect((await generate({ ignore: ["openai-main"] })).upstream).toBe("fal-cheap");
    expect((await generate({ only: ["replicate-far"] })).upstream).toBe("replicate-far");
    expect(sim.calls.map((c) => c.api)).toEqual(["replicate", "fal", "replicate"]);
  });

  it("a batch routes each of its requests by that request's own preferences", async () => {
    const { key } = await caller();
    const res = await app.call("generateBatch", {
      token: key,
      json: {
        requests: [
          { prompt: "one", models: [IMAGE], routing: { only: ["replicate-far"] } },
          { prompt: "two", models: [IMAGE], routing: { order: ["fal-cheap"] } },
        ],
      },
    });
    expect(res.status).toBe(202);
    const upstreams = [];
    for (const g of res.body.generations) {
      const done = await waitForGeneration(app, key, g.generationId);
      upstreams.push(done.results[0].routing.upstream);
    }
    expect(upstreams).toEqual(["replicate-far", "fal-cheap"]);
  });

  it("sort: price puts the cheapest channel first and fails over in price order", async () => {
    const { key, balance } = await caller();
    sim.byApi.fal = { script: [], always: "error500" };
    const res = await image(key, { sort: "price" });
    expect(res.status).toBe(200);
    // fal-cheap (1) failed twice (one retry), then openai-main (4); replicate-far has no cost.
    expect(tried(res.body.routing)).toEqual([
      ["fal-cheap", "upstream_500"],
      ["fal-cheap", "upstream_500"],
      ["openai-main", "ok"],
    ]);
    expect(res.body.routing).toMatchObject({ upstream: "openai-main", failover: true });
    expect(await balance()).toBe(97);
  });

  it("without failover, a rerun after a crash still polls the upstream job it recorded, paying no second one", async () => {
    const recorded: Array<{ channel: string; job: Record<string, unknown> }> = [];
    const run = (job: Record<string, unknown> | undefined, routing: RoutingPreferences) =>
      route(app.ctx, app.ctx.generations.routing, {
        model: IMAGE,
        network: "test",
        preferences: routing,
        task: {
          mediaType: "image",
          prompt: "resume me",
          aspectRatio: "1:1",
          resolution: "1K",
          seed: 7,
          referenceImageUrls: [],
        },
        upstreamJob: {
          recorded: job ? { channel: "fal-cheap", job } : null,
          record: async (channel, submitted) => void recorded.push({ channel, job: submitted }),
        },
      });
    // The first run submitted its job on fal-cheap, then its worker died.
    expect((await run(undefined, { order: ["fal-cheap"] })).ok).toBe(true);
    expect(recorded.map((r) => r.channel)).toEqual(["fal-cheap"]);
    // The rerun, without failover: openai-main comes first by default, but the job is on fal.
    const again = await run(recorded[0]?.job, { allowFailover: false });
    expect(again).toMatchObject({ ok: true, routing: { upstream: "fal-cheap" } });
    expect(sim.calls.map((c) => c.api)).toEqual(["fal"]);
    expect(recorded).toHaveLength(1);
  });

  it("allowFailover: false tries one channel only, and refunds when it fails", async () => {
    const { key, balance } = await caller();
    sim.byApi.openai = { script: [], always: "error500" };
    const res = await image(key, { allowFailover: false });
    expect(res.status).toBe(502);
    expect(res.body.error.code).toBe("generation_failed");
    expect(sim.calls.map((c) => c.api)).toEqual(["openai", "openai"]);
    expect(await balance()).toBe(100);
  });

  it("refuses a channel the models do not have, and preferences that leave none, holding nothing", async () => {
    const { key, balance } = await caller();
    const unknown = await app.call("generate", {
      token: key,
      json: { prompt: "a lighthouse", models: [IMAGE], routing: { order: ["anthropic-backup"] } },
    });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error).toMatchObject({
      code: "unknown_channel",
      field: "routing",
      channels: ["anthropic-backup"],
    });
    expect(unknown.body.error.served).toEqual(
      expect.arrayContaining(["openai-main", "fal-cheap", "replicate-far"]),
    );
    const none = await app.call("quoteGeneration", {
      token: key,
      json: {
        prompt: "a lighthouse",
        models: [IMAGE],
        routing: { only: ["fal-cheap"], ignore: ["fal-cheap"] },
      },
    });
    expect(none.status).toBe(400);
    expect(none.body.error).toMatchObject({ code: "no_channel_left", model: IMAGE });
    // The chat channel serves every model on its adapter's terms: an image cannot run on it.
    const noImages = await image(key, { only: ["anthropic-any"] });
    expect(noImages.status).toBe(400);
    expect(noImages.body.error).toMatchObject({
      code: "unknown_channel",
      channels: ["anthropic-any"],
    });
    // Ignoring a channel that exists but does not serve the model is harmless; a typo is not.
    expect((await image(key, { ignore: ["sandbox-a", "openai-main"] })).body.routing.upstream).toBe(
      "fal-cheap",
    );
    const typo = await image(key, { ignore: ["openai-mian"] });
    expect(typo.body.error).toMatchObject({ code: "unknown_channel", channels: ["openai-mian"] });
    const shape = await image(key, { sort: "fastest" });
    expect(shape.status).toBe(400);
    expect(shape.body.error.code).toBe("invalid_request");
    expect(await balance()).toBe(97); // the one image served
    expect(sim.calls.map((c) => c.api)).toEqual(["fal"]);
  });

  it("chat takes routing through the openai SDK, and refuses an unknown channel", async () => {
    const { key, balance } = await caller();
    const openai = new OpenAI({ apiKey: key, baseURL: `${app.url}/v1`, maxRetries: 0 });
    const body = {
      model: CHAT,
      messages: [{ role: "user" as const, content: "hello" }],
      max_tokens: 20,
      routing: { order: ["anthropic-backup"] },
    };
    const reply = await openai.chat.completions.create(body);
    expect((reply as unknown as { routing: unknown }).routing).toMatchObject({
      upstream: "anthropic-backup",
      failover: false,
      preferences: { order: ["anthropic-backup"] },
    });
    expect(sim.calls.map((c) => c.api)).toEqual(["anthropic"]);

    const before = await balance();
    const unknown = { ...body, routing: { only: ["fal-cheap"] } };
    const refused = await openai.chat.completions.create(unknown).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(OpenAI.BadRequestError);
    expect((refused as InstanceType<typeof OpenAI.BadRequestError>).code).toBe("unknown_channel");
    expect(await balance()).toBe(before);
  });

  it("speech and transcription honour routing (a form field carries it as JSON)", async () => {
    const { key } = await caller();
    const speech = await app.request("POST", "/v1/audio/speech", {
      token: key,
      json: { model: "tts-1", input: "hello", voice: "alloy", routing: { order: ["sandbox-b"] } },
    });
    expect(speech.status).toBe(200);
    expect(speech.headers.get("x-upstream")).toBe("sandbox-b");

    const openai = new OpenAI({ apiKey: key, baseURL: `${app.url}/v1`, maxRetries: 0 });
    const transcribed = await openai.audio.transcriptions.create({
      file: await toFile(makeWav({ seconds: 2, seed: "r", comment: "routed words" }), "a.wav"),
      model: "whisper-1",
      // @ts-expect-error: routing is Polyforge's own field beside OpenAI's
      routing: JSON.stringify({ only: ["sandbox-b"] }),
    });
    expect(transcribed.text).toBe("routed words");
    expect((transcribed as unknown as { routing: unknown }).routing).toEqual({
      upstream: "sandbox-b",
      failover: false,
      preferences: { only: ["sandbox-b"] },
    });
  });
});
