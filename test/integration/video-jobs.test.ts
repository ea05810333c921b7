import type { Runner } from "graphile-worker";
import sharp from "sharp";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getBalance } from "../../src/domains/ledger/service.js";
import { startWorker } from "../../src/jobs/worker.js";
import { creditUnits } from "../../src/lib/credits.js";
import { createFundedCaller, startTestApp, type TestApp } from "../helpers/app.js";
import { expectMoneyInvariants } from "../helpers/ledger.js";
import { startReceiver, until } from "../helpers/receiver.js";
import { type Simulator, startSimulator } from "../simulator/upstream.js";

/** Video jobs (create, poll, webhook) and the SSE status stream, on the sandbox renderer. */
let app: TestApp;
let worker: Runner;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
let sim: Simulator;

beforeAll(async () => {
  receiver = await startReceiver();
  sim = await startSimulator();
  app = await startTestApp({
    env: {
      SSRF_ALLOW_HOSTS: receiver.hostPort,
      CHANNELS: JSON.stringify([
        {
          id: "sandbox",
          provider: "sandbox",
          networks: ["test"],
          models: { "sora-2-preview": "sora-2-preview", "z-image-turbo": "z-image-turbo" },
        },
        // Nothing listens there: every call to it fails, fast.
        {
          id: "dead",
          provider: "openai",
          baseUrl: "http://127.0.0.1:9/openai",
          apiKey: "sk-none",
          networks: ["test"],
          models: { "gpt-image-2": "gpt-image-1", "veo3.1-lite": "veo-3.1-lite" },
        },
        {
          id: "fal",
          provider: "fal",
          baseUrl: `${sim.url}/fal`,
          apiKey: "fal-key",
          networks: ["test"],
          models: { "kling-v2-6": "fal-ai/kling-video/v2.6/pro/text-to-video" },
        },
        {
          id: "replicate",
          provider: "replicate",
          baseUrl: `${sim.url}/replicate`,
          apiKey: "r8-key",
          networks: ["test"],
          models: { "wan2.7": "wan-video/wan-2.7-t2v" },
        },
      ]),
    },
  });
  worker = await startWorker(app.ctx);
});

afterAll(async () => {
  await worker?.stop();
  await app?.close();
  await receiver?.close();
  await sim?.close();
});

// biome-ignore lint/suspicious/noExplicitAny: tests read event payloads field by field.
type Json = any;

/** Reads a Server-Sent Events stream to its end (or the time limit). */
async function readEvents(
  path: string,
  key: string,
  timeoutMs = 20_000,
): Promise<{ status: number; events: Array<{ event: string; data: Json }>; body: Json }> {
  const res = await fetch(app.url + path, {
    headers: { authorization: `Bearer ${key}`, accept: "text/event-stream" },
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (res.status !== 200) return { status: res.status, events: [], body: await res.json() };
  expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
  const text = await res.text();
  const events = text
    .split("\n\n")
    .map((block) => {
      const fields = Object.fromEntries(
        block
          .split("\n")
          .filter((line) => line && !line.startsWith(":"))
          .map((line) => [line.slice(0, line.indexOf(":")), line.slice(line.indexOf(":") + 2)]),
      );
      return fields.event
        ? { event: String(fields.event), data: JSON.parse(String(fields.data)) as Json }
        : undefined;
    })
    .filter((e): e is { event: string; data: Json } => e !== undefined);
  return { status: 200, events, body: undefined };
}

describe("video jobs", () => {
  it("runs a job to a video with progress, credits, routing and a signed webhook", async () => {
    const { key, account } = await createFundedCaller(app.ctx, 100n);
    const { secret } = (await app.call("getWebhookSecret", { token: key })).body;
    const created = await app.call("createVideoJob", {
      token: key,
      json: {
        model: "sora-2-preview",
        prompt: "a lighthouse at dusk",
        duration: 4,
        aspectRatio: "16:9",
        webhookUrl: `${receiver.url}/hook`,
      },
    });
    expect(created.status).toBe(202);
    expect(created.body).toMatchObject({
      id: expect.stringMatching(/^gen_/),
      object: "video.job",
      status: "queued",
      model: "sora-2-preview",
      credits: 8,
    });
    const id = created.body.id;

    const seen = new Set<string>();
    let job: { status: string; [k: string]: unknown };
    const deadline = Date.now() + 20_000;
    for (;;) {
      job = (await app.request("GET", `/v1/videos/jobs/${id}`, { token: key })).body;
      seen.add(job.status);
      if (job.status === "succeeded" || job.status === "failed" || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(job).toMatchObject({
      id,
      status: "succeeded",
      progress: 100,
      model: "sora-2-preview",
      credits: { quoted: 8, charged: 8, refunded: 0 },
      routing: { upstream: expect.any(String), failover: false },
      error: null,
    });
    for (const status of seen) expect(["queued", "processing", "succeeded"]).toContain(status);

    // The video opens from its URL alone, and lasts the duration asked for.
    const videoUrl = new URL(job.videoUrl as string);
    const video = await fetch(app.url + videoUrl.pathname + videoUrl.search);
    expect(video.status).toBe(200);
    const bytes = Buffer.from(await video.arrayBuffer());
    const meta = await sharp(bytes, { animated: true }).metadata();
    const seconds = (meta.delay ?? []).reduce((sum, d) => sum + d, 0) / 1000;
    expect(seconds).toBe(4);
    expect(meta.width).toBeGreaterThan(meta.pageHeight as number);

    expect((await getBalance(app.ctx, account.id, "test")).creditBalance).toBe(creditUnits(92n));
    const hook = await until("the webhook", () =>
      receiver.received.find((r) => r.body.includes(id)),
    );
    const payload = new Webhook(secret).verify(hook.body, hook.headers) as {
      type: string;
      data: { generationId: string; mediaType: string; status: string };
    };
    expect(payload).toMatchObject({
      type: "generation.completed",
      data: { generationId: id, mediaType: "video", status: "completed" },
    });
    await expectMoneyInvariants(app.ctx);
  });

  it("charges a job once per Idempotency-Key, and refunds a job that fails", async () => {
    const { key, account } = await createFundedCaller(app.ctx, 100n);
    const job = { model: "sora-2-preview", prompt: "once", duration: 4 };
    const headers = { "idempotency-key": "video-once" };
    const [first, second] = await Promise.all([
      app.call("createVideoJob", { token: key, json: job, headers }),
      app.call("createVideoJob", { token: key, json: job, headers }),
    ]);
    const accepted = [first, second].filter((r) => r.status === 202);
    expect(accepted.length).toBeGreaterThanOrEqual(1);
    for (const r of [first, second]) expect([202, 409]).toContain(r.status);
    const again = await app.call("createVideoJob", { token: key, json: job, headers });
    expect(again.status).toBe(202);
    expect(again.body.id).toBe(accepted[0]?.body.id);
    await until("the job to finish", async () => {
      const r = await app.call("getVideoJob", { params: { id: again.body.id }, token: key });
      return r.body.status === "succeeded" ? r.body : undefined;
    });
    expect((await getBalance(app.ctx, account.id, "test")).creditBalance).toBe(creditUnits(92n));

    // Every channel of this model is down: the job fails and its 12 credits come back.
    const doomed = await app.call("createVideoJob", {
      token: key,
      json: { model: "veo3.1-lite", prompt: "no upstream answers", duration: 8 },
    });
    expect(doomed.status).toBe(202);
    expect(doomed.body.credits).toBe(12);
    const failed = await until("the job to fail", async () => {
      const r = await app.call("getVideoJob", { params: { id: doomed.body.id }, token: key });
      return r.body.status === "failed" ? r.body : undefined;
    });
    expect(failed).toMatchObject({
      videoUrl: null,
      credits: { quoted: 12, charged: 0, refunded: 12 },
      routing: { upstream: null },
    });
    expect(failed.error.code).toBeTruthy();
    expect((await getBalance(app.ctx, account.id, "test")).creditBalance).toBe(creditUnits(92n));
    await expectMoneyInvariants(app.ctx);
  });

  it("validates like /v1/generate and shows a job to its owner only", async () => {
    const { key, account } = await createFundedCaller(app.ctx, 100n);
    const cases = [
      [{ model: "z-image-turbo", prompt: "p", duration: 5 }, "model_media_mismatch"],
      [{ model: "sora-2-preview", prompt: "p" }, "duration_required"],
      [{ model: "sora-2-preview", prompt: "p", duration: 5 }, "invalid_duration"],
      [{ model: "nope", prompt: "p", duration: 4 }, "invalid_model"],
      [{ model: "sora-2-preview", prompt: "", duration: 4 }, "invalid_request"],
      [{ model: "sora-2-preview", prompt: "p", duration: 4, fps: 60 }, "invalid_fps"],
      [{ model: "sora-2-preview", prompt: "p", duration: 4, fps: 0 }, "invalid_request"],
      [
        { model: "sora-2-preview", prompt: "p", duration: 4, webhookUrl: "http://10.0.0.1/h" },
        "unsafe_url",
      ],
    ] as const;
    for (const [json, code] of cases) {
      const res = await app.call("createVideoJob", { token: key, json });
      expect(res.status, code).toBe(400);
      expect(res.body.error.code).toBe(code);
    }
    const image = await app.call("generate", {
      token: key,
      json: { prompt: "an image", models: ["z-image-turbo"] },
    });
    const other = await createFundedCaller(app.ctx, 100n);
    const job = await app.call("createVideoJob", {
      token: other.key,
      json: { model: "sora-2-preview", prompt: "theirs", duration: 4 },
    });
    for (const id of [image.body.generationId, job.body.id, "gen_00000000000000000000000000"]) {
      const res = await app.call("getVideoJob", { params: { id }, token: key });
      expect(res.status).toBe(404);
    }
    // An id that cannot be one is not found either, as a client asking for it expects.
    const malformed = await app.call("getVideoJob", { params: { id: "nope" }, token: key });
    expect(malformed.status).toBe(404);
    expect(malformed.body.error).toMatchObject({
      code: "not_found",
      message: "Video job not found.",
    });
    // Nothing was charged for the refused requests.
    expect((await getBalance(app.ctx, account.id, "test")).creditBalance).toBe(
      creditUnits(100n - BigInt(image.body.cost)),
    );
  });
});

describe("frame rates", () => {
  const job = async (key: string, id: string) =>
    until("the job to finish", async () => {
      const r = await app.call("getVideoJob", { params: { id }, token: key });
      return r.body.status === "succeeded" || r.body.status === "failed" ? r.body : undefined;
    });

  it("hands the fps a model offers to fal and Replicate, or the model's default unasked", async () => {
    const { key, account } = await createFundedCaller(app.ctx, 1000n);
    sim.calls.length = 0;
    const created = await app.call("createVideoJob", {
      token: key,
      json: { model: "kling-v2-6", prompt: "a kite", duration: 5, fps: 30 },
    });
    expect(created.status).toBe(202);
    expect(created.body.credits).toBe(56);
    expect(await job(key, created.body.id)).toMatchObject({
      status: "succeeded",
      fps: 30,
      routing: { upstream: "fal" },
      credits: { charged: 56 },
    });
    expect(sim.calls).toMatchObject([
      {
        api: "fal",
        model: "fal-ai/kling-video/v2.6/pro/text-to-video",
        input: { prompt: "a kite", duration: 5, fps: 30 },
      },
    ]);

    // Through /v1/generate, without mediaType: Wan 2.7 offers 16, 24 and 30 fps.
    sim.calls.length = 0;
    const generated = await app.call("generate", {
      token: key,
      json: { prompt: "a heron", models: ["wan2.7"], duration: 5, fps: 16 },
    });
    expect(generated.status).toBe(202);
    expect(await job(key, generated.body.generationId)).toMatchObject({
      status: "succeeded",
      fps: 16,
      routing: { upstream: "replicate" },
    });
    expect(sim.calls).toMatchObject([
      { api: "replicate", model: "wan-video/wan-2.7-t2v", input: { duration: 5, fps: 16 } },
    ]);

    sim.calls.length = 0;
    const unasked = await app.call("createVideoJob", {
      token: key,
      json: { model: "kling-v2-6", prompt: "a kite", duration: 5 },
    });
    expect(await job(key, unasked.body.id)).toMatchObject({ status: "succeeded", fps: 24 });
    expect(sim.calls[0]?.input).toMatchObject({ fps: 24 });
    expect((await getBalance(app.ctx, account.id, "test")).creditBalance).toBe(
      creditUnits(1000n - 56n * 2n - 100n),
    );
  });

  it("refuses an fps the model does not offer before anything is held or sent upstream", async () => {
    const { key, account } = await createFundedCaller(app.ctx, 1000n);
    sim.calls.length = 0;
    const refused = await app.call("createVideoJob", {
      token: key,
      json: { model: "kling-v2-6", prompt: "a kite", duration: 5, fps: 25 },
    });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toMatchObject({
      code: "invalid_fps",
      field: "fps",
      message: "kling-v2-6 renders at 24, 30 fps, not 25.",
    });
    // Two models: the fps must be one each offers (Kling has 30, Wan 2.7 too; Wan 2.5 has not).
    const both = await app.call("quoteGeneration", {
      token: key,
      json: { prompt: "p", models: ["kling-v2-6", "wan2.7"], duration: 5, fps: 30 },
    });
    expect(both.status).toBe(200);
    const notBoth = await app.call("quoteGeneration", {
      token: key,
      json: { prompt: "p", models: ["kling-v2-6", "wan2.5-preview"], duration: 5, fps: 30 },
    });
    expect(notBoth.body.error).toMatchObject({ code: "invalid_fps", field: "fps" });
    expect(notBoth.body.error.message).toContain("wan2.5-preview");
    expect(sim.calls).toEqual([]);
    const balance = await getBalance(app.ctx, account.id, "test");
    expect([balance.creditBalance, balance.heldCredits]).toEqual([creditUnits(1000n), 0n]);
  });
});

describe("GET /v1/generate/:id/events", () => {
  it("streams status changes and ends with the final object", async () => {
    const { key } = await createFundedCaller(app.ctx, 100n);
    const submitted = await app.call("generate", {
      token: key,
      json: { prompt: "streamed", mediaType: "video", models: ["sora-2-preview"], duration: 8 },
    });
    const { events } = await readEvents(`/v1/generate/${submitted.body.generationId}/events`, key);
    const last = events.at(-1);
    expect(last?.event).toBe("done");
    expect(last?.data).toMatchObject({
      generationId: submitted.body.generationId,
      status: "completed",
      cost: { quoted: 8, charged: 8, refunded: 0 },
    });
    expect(last?.data.results[0].videoUrl).toMatch(/signature=/);
    const statuses = events.filter((e) => e.event === "status");
    expect(statuses.length).toBeGreaterThanOrEqual(1);
    expect(statuses.at(-1)?.data).toEqual(last?.data);
    const progress = statuses.map((e) => e.data.results[0].progress ?? 0);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));

    // The same generation's final state is streamed at once once it is over.
    const again = await readEvents(`/v1/generate/${submitted.body.generationId}/events`, key);
    expect(again.events.map((e) => e.event)).toEqual(["status", "done"]);
  });

  it("ends with a failed generation too, and shows nothing to others", async () => {
    const { key } = await createFundedCaller(app.ctx, 100n);
    const submitted = await app.call("generate", {
      token: key,
      json: { prompt: "no upstream answers", models: ["gpt-image-2"] },
    });
    expect(submitted.status).toBe(202);
    const other = await createFundedCaller(app.ctx, 1n);
    const foreign = await readEvents(
      `/v1/generate/${submitted.body.generationId}/events`,
      other.key,
    );
    expect(foreign.status).toBe(404);
    expect(foreign.body.error.code).toBe("not_found");
    const { events } = await readEvents(`/v1/generate/${submitted.body.generationId}/events`, key);
    expect(events.at(-1)?.event).toBe("done");
    expect(events.at(-1)?.data).toMatchObject({
      status: "failed",
      cost: { charged: 0, refunded: submitted.body.cost },
    });
    expect(events.at(-1)?.data.results[0].error.code).toBeTruthy();
  });
});
