import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import type { Runner } from "graphile-worker";
import sharp from "sharp";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getBalance } from "../../src/domains/ledger/service.js";
import { startWorker } from "../../src/jobs/worker.js";
import { createFundedCaller, startTestApp, type TestApp } from "../helpers/app.js";
import { expectMoneyInvariants } from "../helpers/ledger.js";

/** Video jobs (create, poll, webhook) and the SSE status stream, on the sandbox renderer. */
let app: TestApp;
let worker: Runner;
let receiver: Server;
let receiverUrl: string;
const received: Array<{ headers: Record<string, string>; body: string }> = [];

beforeAll(async () => {
  const site = express();
  site.post("/hook", express.text({ type: "*/*" }), (req, res) => {
    received.push({ headers: req.headers as Record<string, string>, body: req.body as string });
    res.status(204).end();
  });
  receiver = site.listen(0, "127.0.0.1");
  await new Promise((r) => receiver.once("listening", r));
  const port = (receiver.address() as AddressInfo).port;
  receiverUrl = `http://127.0.0.1:${port}/hook`;
  app = await startTestApp({
    env: {
      SSRF_ALLOW_HOSTS: `127.0.0.1:${port}`,
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
  receiver?.close();
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
    const { secret } = (await app.request("GET", "/v1/webhooks/secret", { token: key })).body;
    const created = await app.request("POST", "/v1/videos/jobs", {
      token: key,
      json: {
        model: "sora-2-preview",
        prompt: "a lighthouse at dusk",
        duration: 4,
        aspectRatio: "16:9",
        webhookUrl: receiverUrl,
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

    expect((await getBalance(app.ctx, account.id, "test")).creditBalance).toBe(92n);
    const deadlineHook = Date.now() + 10_000;
    while (!received.some((r) => r.body.includes(id)) && Date.now() < deadlineHook)
      await new Promise((r) => setTimeout(r, 25));
    const hook = received.find((r) => r.body.includes(id));
    expect(hook).toBeDefined();
    const payload = new Webhook(secret).verify(hook?.body as string, hook?.headers ?? {}) as {
      type: string;
      data: { generationId: string; mediaType: string; status: string };
    };
    expect(payload).toMatchObject({
      type: "generation.completed",
      data: { generationId: id, mediaType: "video", status: "completed" },
    });
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
      [{ model: "sora-2-preview", prompt: "p", duration: 4, fps: 60 }, "invalid_request"],
      [
        { model: "sora-2-preview", prompt: "p", duration: 4, webhookUrl: "http://10.0.0.1/h" },
        "unsafe_url",
      ],
    ] as const;
    for (const [json, code] of cases) {
      const res = await app.request("POST", "/v1/videos/jobs", { token: key, json });
      expect(res.status, code).toBe(400);
      expect(res.body.error.code).toBe(code);
    }
    const image = await app.request("POST", "/v1/generate", {
      token: key,
      json: { prompt: "an image", models: ["z-image-turbo"] },
    });
    const other = await createFundedCaller(app.ctx, 100n);
    const job = await app.request("POST", "/v1/videos/jobs", {
      token: other.key,
      json: { model: "sora-2-preview", prompt: "theirs", duration: 4 },
    });
    for (const id of [image.body.generationId, job.body.id, "gen_00000000000000000000000000"]) {
      const res = await app.request("GET", `/v1/videos/jobs/${id}`, { token: key });
      expect(res.status).toBe(404);
    }
    expect((await app.request("GET", "/v1/videos/jobs/nope", { token: key })).status).toBe(400);
    // Nothing was charged for the refused requests.
    expect((await getBalance(app.ctx, account.id, "test")).creditBalance).toBe(
      100n - BigInt(image.body.cost),
    );
  });
});

describe("GET /v1/generate/:id/events", () => {
  it("streams status changes and ends with the final object", async () => {
    const { key } = await createFundedCaller(app.ctx, 100n);
    const submitted = await app.request("POST", "/v1/generate", {
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
    const submitted = await app.request("POST", "/v1/generate", {
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
