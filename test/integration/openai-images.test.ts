import http from "node:http";
import type { Runner } from "graphile-worker";
import OpenAI from "openai";
import sharp from "sharp";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { fromSize } from "../../src/domains/generations/openai-images.js";
import { startWorker } from "../../src/jobs/worker.js";
import {
  createFundedCaller,
  startTestApp,
  type TestApp,
  waitForGeneration,
} from "../helpers/app.js";
import { expectMoneyInvariants } from "../helpers/ledger.js";
import { startReceiver, until } from "../helpers/receiver.js";
import { startSimulator } from "../simulator/upstream.js";

let app: TestApp;
let worker: Runner;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
beforeAll(async () => {
  receiver = await startReceiver();
  app = await startTestApp({
    env: { LOG_LEVEL: "error", IMAGES_WAIT_MS: "15000", SSRF_ALLOW_HOSTS: receiver.hostPort },
  });
  worker = await startWorker(app.ctx);
});
afterAll(async () => {
  await worker.stop();
  await app.close();
  await receiver.close();
});
afterEach(() => expectMoneyInvariants(app.ctx));

async function client(credits = 100n) {
  const caller = await createFundedCaller(app.ctx, credits, "test");
  return {
    ...caller,
    openai: new OpenAI({ apiKey: caller.key, baseURL: `${app.url}/v1`, maxRetries: 0 }),
  };
}

describe("POST /v1/images/generations with the official openai client", () => {
  it("returns b64_json images, charges the catalog price, and reports routing", async () => {
    const { openai, key } = await client();
    const result = await openai.images.generate({
      model: "nano-banana-2",
      prompt: "a red kite",
      size: "1536x1024",
      response_format: "b64_json",
    });
    expect(result.data).toHaveLength(1);
    const bytes = Buffer.from(result.data?.[0]?.b64_json ?? "", "base64");
    const meta = await sharp(bytes).metadata();
    expect(meta.format).toBe("png");
    expect((meta.width ?? 0) / (meta.height ?? 1)).toBeCloseTo(3 / 2, 1);
    const extra = result as unknown as { credits: number; routing: { upstream: string } };
    expect(extra.credits).toBe(12); // nano-banana-2 at 2K (1536 px long side)
    expect(extra.routing.upstream).toBe("sandbox-primary");
    expect((await app.call("getBalance", { token: key })).body.creditBalance).toBe(88);
  });

  it("returns signed URLs that open without the key, n at a time", async () => {
    const { openai } = await client();
    const result = await openai.images.generate({
      model: "z-image-turbo",
      prompt: "two boats",
      n: 2,
      size: "1024x1024",
    });
    expect(result.data).toHaveLength(2);
    for (const image of result.data ?? []) {
      const url = new URL(image.url as string); // on PUBLIC_URL; the test server listens elsewhere
      expect(url.pathname).toBe("/v1/download");
      // Like OpenAI's, the URL opens on its own: it is signed, no key needed.
      const file = await fetch(app.url + url.pathname + url.search);
      expect(file.status).toBe(200);
      expect(file.headers.get("content-type")).toBe("image/png");
    }
    expect((result as unknown as { credits: number }).credits).toBe(6);
  });

  it("raises the client's own error types for bad input and a short balance", async () => {
    const { openai } = await client(1n);
    await expect(openai.images.generate({ model: "dall-e-9", prompt: "x" })).rejects.toMatchObject({
      status: 400,
    });
    const short = await openai.images
      .generate({ model: "gpt-image-2", prompt: "x" })
      .catch((e: unknown) => e);
    expect(short).toBeInstanceOf(OpenAI.APIError);
    expect((short as InstanceType<typeof OpenAI.APIError>).status).toBe(402);
    expect((short as InstanceType<typeof OpenAI.APIError>).message).toContain(
      "Insufficient credits",
    );
    const wrongKey = new OpenAI({
      apiKey: `sk_test_${"x".repeat(64)}`,
      baseURL: `${app.url}/v1`,
      maxRetries: 0,
    });
    await expect(
      wrongKey.images.generate({ model: "gpt-image-2", prompt: "x" }),
    ).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
  });

  it("answers 202 with the generation id when the images take longer than the wait, and finishes them in the background", async () => {
    const sim = await startSimulator();
    let letGo = () => {};
    sim.held = new Promise<void>((resolve) => {
      letGo = resolve;
    });
    const slow = await startTestApp({
      env: {
        LOG_LEVEL: "error",
        IMAGES_WAIT_MS: "300",
        CHANNELS: JSON.stringify([
          {
            id: "slow",
            provider: "openai",
            baseUrl: `${sim.url}/openai`,
            apiKey: "k",
            networks: ["test"],
            models: { "gpt-image-2": "gpt-image-1" },
          },
        ]),
      },
    });
    try {
      // No worker runs: the API process runs the image itself, past its answer.
      const caller = await createFundedCaller(slow.ctx, 10n);
      const res = await slow.call("createImage", {
        token: caller.key,
        json: { model: "gpt-image-2", prompt: "later" },
      });
      expect(res.status).toBe(202);
      expect(res.body).toMatchObject({
        id: expect.stringMatching(/^gen_/),
        status: "processing",
        credits: 3,
      });
      const ids = "ids" in res.body ? res.body.ids : [];
      expect(res.headers.get("x-generation-id")).toBe(ids.join(","));
      letGo();
      const done = await waitForGeneration(slow, caller.key, ids[0] as string, 10_000);
      expect(done.status).toBe("completed");
      expect((await slow.call("getBalance", { token: caller.key })).body).toMatchObject({
        creditBalance: 7,
        heldCredits: 0,
      });
      await expectMoneyInvariants(slow.ctx);
    } finally {
      letGo();
      await slow.close();
      await sim.close();
    }
  });
});

describe("the images endpoint's fields", () => {
  it("refuses a field it does not know instead of dropping it, and holds nothing", async () => {
    const { key } = await client();
    for (const extra of [{ webhook_url: "http://x.test/h" }, { colour: "red" }, { stream: true }]) {
      const res = await app.call("createImage", {
        token: key,
        json: { model: "z-image-turbo", prompt: "a red kite", ...extra },
      });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe("invalid_request");
      const [name] = Object.keys(extra);
      expect(res.body.error.message).toContain(name);
    }
    const balance = await app.call("getBalance", { token: key });
    expect(balance.body).toMatchObject({ creditBalance: 100, heldCredits: 0 });
  });

  it("takes the other doors' webhookUrl and OpenAI's own fields it has no use for", async () => {
    const { key } = await client();
    receiver.reset();
    const res = await app.request("POST", "/v1/images/generations", {
      token: key,
      json: {
        model: "z-image-turbo",
        prompt: "a red kite",
        quality: "high",
        user: "user-42",
        output_format: "png",
        webhookUrl: `${receiver.url}/hooks`,
      },
    });
    expect(res.status).toBe(200);
    const [generationId] = res.body.generationIds;
    const delivered = await until("the webhook", () => receiver.received[0]);
    expect(delivered.path).toBe("/hooks");
    expect(JSON.parse(delivered.body)).toMatchObject({
      type: "generation.completed",
      data: { generationId, status: "completed" },
    });
  });
});

describe("money on the images endpoint", () => {
  it("charges once for one Idempotency-Key, and replays the first answer", async () => {
    const { key } = await client();
    const send = () =>
      app.request("POST", "/v1/images/generations", {
        token: key,
        json: { model: "z-image-turbo", prompt: "once", response_format: "url" },
        headers: { "idempotency-key": "images-1" },
      });
    const first = await send();
    const again = await send();
    expect(first.status).toBe(200);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.body.generationIds).toEqual(first.body.generationIds);
    expect((await app.call("getBalance", { token: key })).body).toMatchObject({
      creditBalance: 97,
      heldCredits: 0,
    });
  });

  it("answers 502 generation_failed and refunds when every upstream fails", async () => {
    const sim = await startSimulator();
    sim.always = "error500";
    const failing = await startTestApp({
      env: {
        LOG_LEVEL: "error",
        IMAGES_WAIT_MS: "15000",
        ROUTING_MAX_RETRIES: "0",
        CHANNELS: JSON.stringify([
          {
            id: "down",
            provider: "openai",
            baseUrl: `${sim.url}/openai`,
            apiKey: "k",
            networks: ["test"],
            models: { "gpt-image-2": "gpt-image-1" },
          },
        ]),
      },
    });
    const failingWorker = await startWorker(failing.ctx);
    try {
      const caller = await createFundedCaller(failing.ctx, 20n);
      const res = await failing.call("createImage", {
        token: caller.key,
        json: { model: "gpt-image-2", prompt: "nobody answers" },
      });
      expect(res.status).toBe(502);
      expect(res.body.error.code).toBe("generation_failed");
      expect(res.headers.get("x-generation-id")).toMatch(/^gen_[^,]+$/);
      expect((await failing.call("getBalance", { token: caller.key })).body).toMatchObject({
        creditBalance: 20,
        heldCredits: 0,
      });
      await expectMoneyInvariants(failing.ctx);
    } finally {
      await failingWorker.stop();
      await failing.close();
      await sim.close();
    }
  });
});

/** Sends the request, takes the ids from its 103 Early Hints, then gives up on the answer. */
function abandonAfterEarlyHints(key: string, json: unknown) {
  return new Promise<{ ids: string; link: string }>((resolve, reject) => {
    const body = JSON.stringify(json);
    const req = http.request(`${app.url}/v1/images/generations`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    });
    req.on("information", (info) => {
      if (info.statusCode !== 103) return;
      resolve({
        ids: String(info.headers["x-generation-id"]),
        link: String(info.headers.link),
      });
      req.destroy();
    });
    req.on("response", () => reject(new Error("the final answer came before the early hints")));
    req.on("error", (err) => {
      if (!req.destroyed) reject(err);
    });
    req.end(body);
  });
}

describe("a call the client abandons", () => {
  it("keeps and charges the generations once, and makes them findable by the early ids", async () => {
    const { key } = await client();
    const { ids, link } = await abandonAfterEarlyHints(key, {
      model: "z-image-turbo",
      prompt: "given up on",
      n: 2,
    });
    const generationIds = ids.split(",");
    expect(generationIds).toEqual([expect.stringMatching(/^gen_/), expect.stringMatching(/^gen_/)]);
    expect(link).toBe(`</v1/generate/status?ids=${encodeURIComponent(ids)}>; rel="monitor"`);
    const status = await until("the abandoned generations to complete", async () => {
      const res = await app.call("getGenerationStatus", { token: key, query: { ids } });
      const all = Object.values(res.body.generations);
      return all.length === 2 && all.every((g) => g.status === "completed") ? res.body : undefined;
    });
    expect(Object.keys(status.generations)).toEqual(generationIds);
    expect(status.notFound).toEqual([]);
    const history = await app.call("listGenerations", { token: key });
    expect(history.body.data.map((g) => g.generationId).sort()).toEqual([...generationIds].sort());
    // Two z-image-turbo images at 3 credits each, charged once, nothing left held.
    expect((await app.call("getBalance", { token: key })).body).toMatchObject({
      creditBalance: 94,
      heldCredits: 0,
    });
  });

  it("names the generation ids in the X-Generation-Id header of the normal answer", async () => {
    const { key } = await client();
    const res = await app.call("createImage", {
      token: key,
      json: { model: "z-image-turbo", prompt: "with a header", n: 2, response_format: "url" },
    });
    expect(res.status).toBe(200);
    const ids = "generationIds" in res.body ? res.body.generationIds : [];
    expect(ids).toHaveLength(2);
    expect(res.headers.get("x-generation-id")).toBe(ids.join(","));
  });
});

/** POSTs one call and records every answer the server sent: the 1xx ones, then the final. */
function statusesOf(url: string, key: string, json: unknown) {
  return new Promise<{ statuses: number[]; generationIds: string }>((resolve, reject) => {
    const statuses: number[] = [];
    const req = http.request(`${url}/v1/images/generations`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    });
    req.on("information", (info) => statuses.push(info.statusCode));
    req.on("response", (res) => {
      statuses.push(res.statusCode ?? 0);
      res
        .resume()
        .on("end", () =>
          resolve({ statuses, generationIds: String(res.headers["x-generation-id"]) }),
        );
    });
    req.on("error", reject);
    req.end(JSON.stringify(json));
  });
}

describe("IMAGES_EARLY_HINTS", () => {
  const call = { model: "z-image-turbo", prompt: "hinted or not", response_format: "url" };

  it("sends the 103 before the final answer by default", async () => {
    const { key } = await client();
    const { statuses, generationIds } = await statusesOf(app.url, key, call);
    expect(statuses).toEqual([103, 200]);
    expect(generationIds).toMatch(/^gen_/);
  });

  it("off: only the final answer, which still names the generation ids", async () => {
    const quiet = await startTestApp({ env: { LOG_LEVEL: "error", IMAGES_EARLY_HINTS: "off" } });
    try {
      const { key } = await createFundedCaller(quiet.ctx, 100n, "test");
      const { statuses, generationIds } = await statusesOf(quiet.url, key, call);
      expect(statuses).toEqual([200]);
      expect(generationIds).toMatch(/^gen_/);
    } finally {
      await quiet.close();
    }
  });
});

describe("size mapping", () => {
  it("maps OpenAI sizes to the nearest aspect ratio and a resolution class", () => {
    expect(fromSize("1024x1024")).toEqual({ aspectRatio: "1:1", resolution: "1K" });
    expect(fromSize("1536x1024")).toEqual({ aspectRatio: "3:2", resolution: "2K" });
    expect(fromSize("1024x1792")).toEqual({ aspectRatio: "9:16", resolution: "2K" });
    expect(fromSize("256x256")).toEqual({ aspectRatio: "1:1", resolution: "0.5K" });
    expect(fromSize("auto")).toEqual({ aspectRatio: "1:1", resolution: "1K" });
  });
});
