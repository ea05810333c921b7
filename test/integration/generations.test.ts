import type { Runner } from "graphile-worker";
import sharp from "sharp";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createApiKey } from "../../src/domains/keys/service.js";
import { grantCredits } from "../../src/domains/ledger/service.js";
import { startWorker } from "../../src/jobs/worker.js";
import { creditUnits } from "../../src/lib/credits.js";
import { newId } from "../../src/lib/ids.js";
import {
  createAccountWithKey,
  createFundedCaller,
  startTestApp,
  type TestApp,
  waitForGeneration,
} from "../helpers/app.js";
import { expectMoneyInvariants } from "../helpers/ledger.js";

let app: TestApp;
let worker: Runner;
beforeAll(async () => {
  app = await startTestApp({ env: { LOG_LEVEL: "error" } });
  worker = await startWorker(app.ctx);
});
afterAll(async () => {
  await worker.stop();
  await app.close();
});
afterEach(() => expectMoneyInvariants(app.ctx));

async function funded(credits: bigint, network: "test" | "live" = "test") {
  const caller = await createFundedCaller(app.ctx, credits, network);
  return caller;
}

const balance = async (key: string) => (await app.call("getBalance", { token: key })).body;

describe("POST /v1/generate on the sandbox", () => {
  it("runs an image on two models to completion and charges exactly the quote", async () => {
    const { key } = await funded(100n);
    const submitted = await app.call("generate", {
      token: key,
      json: {
        prompt: "a lighthouse at dusk",
        models: ["gpt-image-2", "nano-banana-pro"],
        resolution: "2K",
        aspectRatio: "16:9",
      },
    });
    expect(submitted.status).toBe(202);
    expect(submitted.body).toEqual({ generationId: expect.stringMatching(/^gen_/), cost: 16 });
    expect(await balance(key)).toMatchObject({ creditBalance: 84, heldCredits: 16 });

    const done = await waitForGeneration(app, key, submitted.body.generationId);
    expect(done).toMatchObject({
      status: "completed",
      mediaType: "image",
      cost: { quoted: 16, charged: 16, refunded: 0 },
    });
    expect(done.results.map((r: { model: string; cost: number }) => [r.model, r.cost])).toEqual([
      ["gpt-image-2", 4],
      ["gemini-3-pro-image-preview", 12],
    ]);
    for (const result of done.results) {
      expect(result.status).toBe("completed");
      expect(result.routing).toMatchObject({ upstream: "sandbox-primary", failover: false });
      expect(result.routing.attempts[0]).toMatchObject({
        channel: "sandbox-primary",
        outcome: "ok",
      });
      const path = new URL(result.imageUrl).pathname + new URL(result.imageUrl).search;
      const file = await fetch(app.url + path, { headers: { authorization: `Bearer ${key}` } });
      expect(file.status).toBe(200);
      expect(file.headers.get("content-type")).toBe("image/png");
      const meta = await sharp(Buffer.from(await file.arrayBuffer())).metadata();
      expect(meta.format).toBe("png");
      expect((meta.width ?? 0) / (meta.height ?? 1)).toBeCloseTo(16 / 9, 1);
    }
    expect(await balance(key)).toMatchObject({ creditBalance: 84, heldCredits: 0 });
  });

  it("runs a video to completion: an animated file of the requested duration", async () => {
    const { key } = await funded(100n);
    const submitted = await app.call("generate", {
      token: key,
      json: {
        prompt: "waves",
        mediaType: "video",
        models: ["veo3.1-fast"],
        duration: 8,
        resolution: "720p",
        aspectRatio: "16:9",
      },
    });
    expect(submitted.body.cost).toBe(24);
    const done = await waitForGeneration(app, key, submitted.body.generationId);
    expect(done.status).toBe("completed");
    const url = new URL(done.results[0].videoUrl);
    const file = await fetch(app.url + url.pathname + url.search, {
      headers: { authorization: `Bearer ${key}` },
    });
    expect(file.headers.get("content-type")).toBe("image/webp");
    const meta = await sharp(Buffer.from(await file.arrayBuffer()), { animated: true }).metadata();
    const seconds = (meta.delay ?? []).reduce((a, b) => a + b, 0) / 1000;
    expect(seconds).toBe(8);
    // Asked for no frame rate, it renders at the model's default (VEO: 24 fps).
    expect(done.results[0].fps).toBe(24);
    expect(meta.pages).toBe(8 * 24);
    expect(await balance(key)).toMatchObject({ creditBalance: 76 });
  });

  it("draws from a studio reservation when given its id", async () => {
    const { key } = await funded(100n);
    const reservation = await app.call("reserveCredits", {
      token: key,
      json: { credits: 50 },
    });
    const submitted = await app.call("generate", {
      token: key,
      json: {
        prompt: "from the batch",
        models: ["z-image-turbo"],
        reservationId: reservation.body.reservationId,
      },
    });
    expect(submitted.status).toBe(202);
    await waitForGeneration(app, key, submitted.body.generationId);
    const settled = await app.call("settleReservation", {
      token: key,
      json: { reservationId: reservation.body.reservationId },
    });
    expect(settled.body).toMatchObject({ usedCredits: 3, returnedCredits: 47 });
    expect(await balance(key)).toMatchObject({ creditBalance: 97, heldCredits: 0 });

    const short = await app.call("reserveCredits", {
      token: key,
      json: { credits: 5 },
    });
    const tooMuch = await app.call("generate", {
      token: key,
      json: {
        prompt: "too much",
        models: ["gpt-image-2", "imagen-4.0-apimart"],
        reservationId: short.body.reservationId,
      },
    });
    expect(tooMuch.status).toBe(402);
    expect(tooMuch.body.error).toMatchObject({ code: "insufficient_credits", need: 15, have: 5 });
  });

  it("refuses a short balance with 402 need/have and holds nothing", async () => {
    const { key } = await funded(10n);
    const res = await app.call("generate", {
      token: key,
      json: { prompt: "x", models: ["gpt-image-2", "nano-banana-pro"], resolution: "2K" },
    });
    expect(res.status).toBe(402);
    expect(res.body.error).toMatchObject({ code: "insufficient_credits", need: 16, have: 10 });
    expect(res.body.error.message).toBe("Insufficient credits. Need 16, have 10.");
    expect(await balance(key)).toMatchObject({ creditBalance: 10, heldCredits: 0 });
    const history = await app.call("listGenerations", { token: key });
    expect(history.body.data).toEqual([]);
  });

  it("answers 402, not 500, to an account that has never had credits", async () => {
    const { key } = await createAccountWithKey(app.ctx, "test");
    const res = await app.call("generate", {
      token: key,
      json: { prompt: "x", models: ["z-image-turbo"] },
    });
    expect(res.status).toBe(402);
    expect(res.body.error).toMatchObject({ code: "insufficient_credits", need: 3, have: 0 });
  });

  it("validates every field with a precise code", async () => {
    const { key } = await funded(1000n);
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ prompt: "x", models: ["dall-e-9"] }, "invalid_model"],
      // Without mediaType, models that mix images and videos do not fit one media type.
      [{ prompt: "x", models: ["gpt-image-2", "veo3.1-fast"] }, "model_media_mismatch"],
      [
        { prompt: "x", models: ["veo3.1-fast", "gpt-image-2"], duration: 8 },
        "model_media_mismatch",
      ],
      [{ prompt: "x", mediaType: "image", models: ["veo3.1-fast"] }, "model_media_mismatch"],
      // Video models alone make a video request: it needs its duration.
      [{ prompt: "x", models: ["veo3.1-fast"] }, "duration_required"],
      [{ prompt: "x", mediaType: "video", models: ["veo3.1-fast"] }, "duration_required"],
      [
        { prompt: "x", mediaType: "video", models: ["veo3.1-fast"], duration: 5 },
        "invalid_duration",
      ],
      [{ prompt: "x", models: ["gpt-image-2"], duration: 5 }, "invalid_duration"],
      [
        {
          prompt: "x",
          models: [
            "gpt-image-2",
            "z-image-turbo",
            "qwen-image-2.0",
            "wan2.7-image",
            "nano-banana",
            "imagen-4.0-apimart",
            "doubao-seedream-4.5",
          ],
        },
        "too_many_models",
      ],
      [{ prompt: "x", models: ["gpt-image-2", "gpt-image-2"] }, "duplicate_model"],
      [{ prompt: "x".repeat(10_001), models: ["gpt-image-2"] }, "prompt_too_long"],
      [{ prompt: "x".repeat(801), models: ["qwen-image-2.0"] }, "prompt_too_long"],
      [{ prompt: "x", models: ["gpt-image-2"], fps: 24 }, "invalid_fps"],
      [{ prompt: "x", models: ["veo3.1-fast"], duration: 8, fps: 30 }, "invalid_fps"],
      [{ prompt: "x", models: ["veo3.1-fast"], duration: 8, fps: 0 }, "invalid_request"],
      [{ prompt: "x", models: ["gpt-image-2"], resolution: "8K" }, "invalid_resolution"],
      [{ prompt: "x", models: ["gpt-image-2"], aspectRatio: "5:4" }, "invalid_aspect_ratio"],
      [
        {
          prompt: "x",
          mediaType: "video",
          models: ["veo3.1-fast"],
          duration: 8,
          aspectRatio: "21:9",
        },
        "invalid_aspect_ratio",
      ],
      [{ prompt: "x", models: ["gpt-image-2"], stylePassIds: ["pass_x"] }, "pass_not_found"],
      [{ prompt: "x", models: ["gpt-image-2"], templateId: "tpl_x" }, "template_not_found"],
      [{ prompt: "", models: ["gpt-image-2"] }, "invalid_request"],
      [{ prompt: "x", models: [] }, "invalid_request"],
      [
        {
          prompt: "x",
          models: ["gpt-image-2"],
          referenceImageUrls: Array(9).fill("https://example.com/a.png"),
        },
        "invalid_request",
      ],
      [{ prompt: "x", models: ["gpt-image-2"], colour: "red" }, "invalid_request"],
    ];
    for (const [json, code] of cases) {
      const res = await app.call("generate", { token: key, json });
      expect(res.status, code).toBe(code === "model_unavailable" ? 422 : 400);
      expect(res.body.error.code, JSON.stringify(json).slice(0, 80)).toBe(code);
    }
    expect(await balance(key)).toMatchObject({ creditBalance: 1000, heldCredits: 0 });
  });

  it("takes a prompt of 10,000 characters on a model that takes it, charged as any other; refuses 10,001", async () => {
    const { key } = await funded(100n);
    const long = "a lighthouse at dusk ".repeat(500).slice(0, 10_000);
    expect(long).toHaveLength(10_000);
    const submitted = await app.call("generate", {
      token: key,
      json: { prompt: long, models: ["gpt-image-2"] },
    });
    expect(submitted.status).toBe(202);
    expect(submitted.body.cost).toBe(3);
    const done = await waitForGeneration(app, key, submitted.body.generationId);
    expect(done).toMatchObject({ status: "completed", cost: { quoted: 3, charged: 3 } });
    expect(done.prompt).toBe(long);
    expect(await balance(key)).toMatchObject({ creditBalance: 97, heldCredits: 0 });

    const tooLong = await app.call("generate", {
      token: key,
      json: { prompt: `${long}x`, models: ["gpt-image-2"] },
    });
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.error).toMatchObject({
      code: "prompt_too_long",
      field: "prompt",
      limit: 10_000,
      message: "The prompt has 10,001 characters; the limit is 10,000.",
    });
    expect(await balance(key)).toMatchObject({ creditBalance: 97, heldCredits: 0 });
  });

  it("refuses a prompt over a model's own lower limit, naming the model and its limit, and holds nothing", async () => {
    const { key } = await funded(1000n);
    const prompt = "x".repeat(2_501);
    // Kling takes 2,500 characters; GPT Image, first in the list, takes the 10,000.
    const video = await app.call("generate", {
      token: key,
      json: { prompt, models: ["kling-v2-6"], duration: 5 },
    });
    expect(video.status).toBe(400);
    expect(video.body.error).toMatchObject({
      code: "prompt_too_long",
      field: "prompt",
      model: "kling-v2-6",
      limit: 2_500,
      message: "The prompt has 2,501 characters; kling-v2-6 takes at most 2,500.",
    });
    const mixed = await app.call("generate", {
      token: key,
      json: { prompt: "x".repeat(900), models: ["gpt-image-2", "qwen-image-2.0"] },
    });
    expect(mixed.body.error).toMatchObject({
      code: "prompt_too_long",
      model: "qwen-image-2.0",
      limit: 800,
    });
    // A template's text that the caller's values make too long names the values.
    const template = await app.call("createTemplate", {
      token: key,
      json: {
        name: "Long",
        text: "a scene: {{scene}}",
        variables: { scene: { maxLength: 10_000 } },
      },
    });
    expect(template.status).toBe(201);
    const templated = await app.call("generate", {
      token: key,
      json: {
        templateId: template.body.id,
        templateVariables: { scene: "y".repeat(2_495) },
        models: ["kling-v2-6"],
        duration: 5,
      },
    });
    expect(templated.body.error).toMatchObject({
      code: "prompt_too_long",
      field: "templateVariables",
      model: "kling-v2-6",
      message: "The prompt has 2,504 characters; kling-v2-6 takes at most 2,500.",
    });
    // The batch door quotes the same way, naming the item.
    const batch = await app.call("generateBatch", {
      token: key,
      json: {
        requests: [
          { prompt: "fine", models: ["z-image-turbo"] },
          { prompt, models: ["kling-v2-6"], duration: 5 },
        ],
      },
    });
    expect(batch.body.error).toMatchObject({
      code: "prompt_too_long",
      field: "requests.1.prompt",
      model: "kling-v2-6",
    });
    expect(await balance(key)).toMatchObject({ creditBalance: 1000, heldCredits: 0 });
    const history = await app.call("listGenerations", { token: key });
    expect(history.body.data).toEqual([]);
    // Within the limit, the same model takes it.
    const fits = await app.call("quoteGeneration", {
      token: key,
      json: { prompt: prompt.slice(1), models: ["kling-v2-6"], duration: 5 },
    });
    expect(fits.status).toBe(200);
  });

  it("makes a video generation of video models named without mediaType, and styles it with a video pass", async () => {
    const { key } = await funded(100n);
    const pass = await app.call("createPass", {
      token: key,
      json: { name: "Night", stylePrompt: "at night", mediaType: "video", fee: 0 },
    });
    expect(pass.status).toBe(201);
    const submitted = await app.call("generate", {
      token: key,
      json: {
        prompt: "waves",
        models: ["sora-2-preview"],
        duration: 4,
        stylePassIds: [pass.body.id],
      },
    });
    expect(submitted.status).toBe(202);
    expect(submitted.body.cost).toBe(8);
    const done = await waitForGeneration(app, key, submitted.body.generationId);
    expect(done).toMatchObject({
      status: "completed",
      mediaType: "video",
      prompt: "waves, at night",
    });
    expect(done.results[0].videoUrl).toMatch(/\/v1\/download\?/);
    const videos = await app.call("listGenerations", { query: { mediaType: "video" }, token: key });
    expect(videos.body.data.map((g: { generationId: string }) => g.generationId)).toEqual([
      submitted.body.generationId,
    ]);
  });

  it("renders a video at a frame rate the model offers, priced the same as its default", async () => {
    const { key } = await funded(500n);
    const at = async (fps?: number) => {
      const submitted = await app.call("generate", {
        token: key,
        json: { prompt: "a kite", models: ["kling-v2-6"], duration: 5, ...(fps && { fps }) },
      });
      expect(submitted.status, JSON.stringify(submitted.body)).toBe(202);
      return submitted.body;
    };
    const chosen = await at(30);
    const unasked = await at();
    expect([chosen.cost, unasked.cost]).toEqual([56, 56]);
    for (const [submitted, fps] of [
      [chosen, 30],
      [unasked, 24],
    ] as const) {
      const done = await waitForGeneration(app, key, submitted.generationId);
      expect(done.results[0]).toMatchObject({ status: "completed", fps });
      const url = new URL(done.results[0].videoUrl);
      const file = await fetch(app.url + url.pathname + url.search, {
        headers: { authorization: `Bearer ${key}` },
      });
      const meta = await sharp(Buffer.from(await file.arrayBuffer()), {
        animated: true,
      }).metadata();
      expect(meta.pages).toBe(5 * fps);
      expect((meta.delay ?? []).reduce((a, b) => a + b, 0)).toBe(5000);
    }
    const refused = await app.call("generate", {
      token: key,
      json: { prompt: "a kite", models: ["kling-v2-6"], duration: 5, fps: 60 },
    });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toMatchObject({
      code: "invalid_fps",
      field: "fps",
      message: "kling-v2-6 renders at 24, 30 fps, not 60.",
    });
    expect(await balance(key)).toMatchObject({ creditBalance: 388, heldCredits: 0 });
  });

  it("refuses a live request for a model with no live channel (model_unavailable)", async () => {
    const { key } = await funded(100n, "live");
    const res = await app.call("generate", {
      token: key,
      json: { prompt: "x", models: ["gpt-image-2"] },
    });
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe("model_unavailable");
  });
});

describe("music on the default sandbox channels", () => {
  it("makes a clip asynchronously on sandbox-primary, listed in history as audio", async () => {
    const { key } = await funded(10n);
    const submitted = await app.call("generate", {
      token: key,
      json: {
        mediaType: "audio",
        prompt: "a lullaby",
        models: ["minimax-music-1.5"],
        duration: 10,
      },
    });
    expect(submitted.status).toBe(202);
    // $0.03 a clip at 70%: 2.1 credits, held until the worker settles it.
    expect(submitted.body).toEqual({ generationId: expect.stringMatching(/^gen_/), cost: 2.1 });
    expect(await balance(key)).toMatchObject({ creditBalance: 7.9, heldCredits: 2.1 });
    const done = await waitForGeneration(app, key, submitted.body.generationId);
    expect(done).toMatchObject({
      status: "completed",
      mediaType: "audio",
      cost: { quoted: 2.1, charged: 2.1, refunded: 0 },
    });
    expect(done.results[0].routing).toMatchObject({ upstream: "sandbox-primary", failover: false });
    const url = new URL(done.results[0].audioUrl);
    const file = await fetch(app.url + url.pathname + url.search);
    expect(file.status).toBe(200);
    expect(file.headers.get("content-type")).toBe("audio/wav");
    const bytes = Buffer.from(await file.arrayBuffer());
    expect(bytes.toString("latin1", 0, 4)).toBe("RIFF");
    expect(await balance(key)).toMatchObject({ creditBalance: 7.9, heldCredits: 0 });
    const history = await app.request("GET", "/v1/history?mediaType=audio", { token: key });
    expect(history.status).toBe(200);
    expect(JSON.stringify(history.body)).toContain(submitted.body.generationId);
    const images = await app.request("GET", "/v1/history?mediaType=image", { token: key });
    expect(JSON.stringify(images.body)).not.toContain(submitted.body.generationId);
  });
});

describe("GET /v1/models", () => {
  it("lists 50 or more models of four types, text and audio priced in credits", async () => {
    const res = await app.call("listModels");
    expect(res.status).toBe(200);
    const data = res.body.data;
    expect(data.length).toBeGreaterThanOrEqual(50);
    expect(new Set(data.map((m) => m.type))).toEqual(new Set(["image", "video", "text", "audio"]));
    expect(data.find((m) => m.id === "claude-sonnet-5")).toMatchObject({
      type: "text",
      limits: { contextLength: 200_000, maxOutputTokens: 64_000 },
      capabilities: { imageInput: true },
      pricing: { unit: "credits", per: "1M tokens", input: 210, output: 1_050 },
    });
    expect(data.find((m) => m.id === "elevenlabs-music-v2")).toMatchObject({
      type: "audio",
      kind: "music",
      pricing: { per: "minute", credits: 42 },
    });
  });

  it("shows each model's prompt limit and each video model's frame rates", async () => {
    const res = await app.call("listModels");
    expect(res.status).toBe(200);
    type Model = {
      id: string;
      type: string;
      capabilities: { fps?: { options: number[]; default: number } };
      limits: { maxPromptLength: number };
    };
    const media = res.body.data.flatMap((m) =>
      m.type === "image" || m.type === "video" ? [m] : [],
    );
    const byId = new Map<string, Model>(media.map((m: Model) => [m.id, m]));
    expect(byId.get("gpt-image-2")).toMatchObject({ limits: { maxPromptLength: 10_000 } });
    expect(byId.get("gpt-image-2")?.capabilities.fps).toBeUndefined();
    expect(byId.get("qwen-image-2.0")?.limits.maxPromptLength).toBe(800);
    expect(byId.get("kling-v2-6")).toMatchObject({
      limits: { maxPromptLength: 2_500 },
      capabilities: { fps: { options: [24, 30], default: 24 } },
    });
    for (const model of byId.values()) {
      if (model.type === "video") expect(model.capabilities.fps?.options, model.id).toBeDefined();
    }
  });
});

describe("Idempotency-Key", () => {
  it("replays the first response for the same key and body, charging once", async () => {
    const { key } = await funded(100n);
    const json = { prompt: "same", models: ["z-image-turbo"] };
    const headers = { "idempotency-key": "order-42" };
    const first = await app.call("generate", { token: key, json, headers });
    const second = await app.call("generate", { token: key, json, headers });
    expect(second.status).toBe(202);
    expect(second.body).toEqual(first.body);
    expect(second.headers.get("idempotent-replayed")).toBe("true");
    const other = await app.call("generate", {
      token: key,
      json: { ...json, prompt: "different" },
      headers,
    });
    expect(other.status).toBe(422);
    expect(other.body.error.code).toBe("idempotency_key_reused");
    await waitForGeneration(app, key, first.body.generationId);
    expect(await balance(key)).toMatchObject({ creditBalance: 97 });
  });

  it("answers 409 while the first request with the key is in flight, and never charges twice", async () => {
    const { key } = await funded(100n);
    const json = { prompt: "race", models: ["z-image-turbo"] };
    const responses = await Promise.all(
      Array.from({ length: 5 }, () =>
        app.request("POST", "/v1/generate", {
          token: key,
          json,
          headers: { "idempotency-key": "race-1" },
        }),
      ),
    );
    // One request ran; each of the others was either told it is in flight or got a replay.
    const ran = responses.filter(
      (r) => r.status === 202 && r.headers.get("idempotent-replayed") !== "true",
    );
    expect(ran).toHaveLength(1);
    for (const r of responses.filter((r) => r !== ran[0])) {
      if (r.status === 409) expect(r.body.error.code).toBe("idempotency_key_in_flight");
      else
        expect([r.status, r.headers.get("idempotent-replayed"), r.body.generationId]).toEqual([
          202,
          "true",
          ran[0]?.body.generationId,
        ]);
    }
    await waitForGeneration(app, key, ran[0]?.body.generationId);
    expect(await balance(key)).toMatchObject({ creditBalance: 97, heldCredits: 0 });
  });

  it("keeps a key to its network, and refuses another body even past the middleware", async () => {
    const { key, account } = await funded(100n);
    await grantCredits(app.ctx, {
      id: newId("grant"),
      ownerId: account.id,
      network: "live",
      amount: creditUnits(100n),
      reason: "t",
    });
    const live = await createApiKey(
      app.ctx,
      { accountId: account.id },
      { name: "live", network: "live" },
    );
    const headers = { "idempotency-key": "cross-network" };
    const first = await app.call("generate", {
      token: key,
      json: { prompt: "a", models: ["z-image-turbo"] },
      headers,
    });
    expect(first.status).toBe(202);
    // The same key on live is another key: it is not the test generation (live has no channel here).
    const onLive = await app.call("generate", {
      token: live.key,
      json: { prompt: "b", models: ["z-image-turbo"] },
      headers,
    });
    expect(onLive.body.error.code).toBe("model_unavailable");
    // The middleware's record gone (say, a crash lost it), the generation itself still refuses another body.
    await app.ctx.pool.query("delete from idempotency_keys");
    const other = await app.call("generate", {
      token: key,
      json: { prompt: "c", models: ["z-image-turbo"] },
      headers,
    });
    expect(other.status).toBe(422);
    expect(other.body.error.code).toBe("idempotency_key_reused");
    await app.ctx.pool.query("delete from idempotency_keys");
    const same = await app.call("generate", {
      token: key,
      json: { prompt: "a", models: ["z-image-turbo"] },
      headers,
    });
    expect(same.body.generationId).toBe(first.body.generationId);
    await waitForGeneration(app, key, first.body.generationId);
    expect(await balance(key)).toMatchObject({ creditBalance: 97 });
  });

  it("lets a retry take over a key whose first request died in flight", async () => {
    const { key, account } = await funded(100n);
    const json = { prompt: "orphan", models: ["z-image-turbo"] };
    // A record left in flight by a process that died 2 minutes ago.
    await app.ctx.pool.query(
      "insert into idempotency_keys (account_id, key, request_hash, created_at) values ($1, 'orphan-1', 'x', now() - interval '2 minutes')",
      [`${account.id}:test`],
    );
    const retry = await app.call("generate", {
      token: key,
      json,
      headers: { "idempotency-key": "orphan-1" },
    });
    expect(retry.status).toBe(202);
    await waitForGeneration(app, key, retry.body.generationId);
  });

  it("keeps keys per account and frees a key whose first attempt failed", async () => {
    const a = await funded(100n);
    const b = await funded(2n);
    const headers = { "idempotency-key": "shared-name" };
    const json = { prompt: "p", models: ["z-image-turbo"] };
    expect((await app.call("generate", { token: a.key, json, headers })).status).toBe(202);
    const poor = await app.call("generate", { token: b.key, json, headers });
    expect(poor.status).toBe(402); // b's own key, b's own (failed) attempt
    await grantCredits(app.ctx, {
      id: newId("grant"),
      ownerId: b.account.id,
      network: "test",
      amount: creditUnits(10n),
      reason: "top up",
    });
    const retry = await app.call("generate", { token: b.key, json, headers });
    expect(retry.status).toBe(202);
    await waitForGeneration(app, b.key, retry.body.generationId);
  });
});

describe("status, history and downloads", () => {
  it("answers up to 50 ids, reports unknown and foreign ones as not found", async () => {
    const mine = await funded(1000n);
    const theirs = await funded(100n);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await app.call("generate", {
        token: mine.key,
        json: { prompt: `p${i}`, models: ["z-image-turbo"] },
      });
      ids.push(res.body.generationId);
    }
    const foreign = await app.call("generate", {
      token: theirs.key,
      json: { prompt: "theirs", models: ["z-image-turbo"] },
    });
    const unknown = Array.from({ length: 45 }, (_, i) => `gen_unknown${i}`);
    const res = await app.call("getGenerationStatus", {
      query: { ids: [...ids, foreign.body.generationId, ...unknown].join(",") },
      token: mine.key,
    });
    expect(res.status).toBe(200);
    // The documented shape: an object keyed by generation id, in the order asked.
    expect(Object.keys(res.body.generations)).toEqual(ids);
    for (const id of ids) expect(res.body.generations[id]).toMatchObject({ generationId: id });
    expect(res.body.notFound).toEqual([foreign.body.generationId, ...unknown]);
    const tooMany = Array.from({ length: 51 }, (_, i) => `gen_${i}`).join(",");
    expect(
      (await app.call("getGenerationStatus", { query: { ids: tooMany }, token: mine.key })).status,
    ).toBe(400);
    const missing = await app.call("getGenerationStatus", { token: mine.key });
    expect(missing.status).toBe(400);
    expect(missing.body.error.message).toBe(
      "Invalid request: ids: give 1–50 generation ids, comma-separated.",
    );
    // A malformed id in a path is the thing's 404, as an unknown one is.
    const events = await app.request("GET", "/v1/generate/not-an-id/events", { token: mine.key });
    expect(events.status).toBe(404);
    expect(events.body.error).toMatchObject({
      code: "not_found",
      message: "Generation not found.",
    });

    // A live key of the same account does not see test generations.
    const live = await createApiKey(
      app.ctx,
      { accountId: mine.account.id },
      { name: "live", network: "live" },
    );
    const seenLive = await app.call("getGenerationStatus", {
      query: { ids: ids[0] },
      token: live.key,
    });
    expect(seenLive.body).toEqual({ generations: {}, notFound: [ids[0]] });
    for (const id of [...ids, foreign.body.generationId])
      await waitForGeneration(app, id === foreign.body.generationId ? theirs.key : mine.key, id);

    // Downloads: the owner's with the key; anyone's with the signed URL, until it expires.
    const done = await waitForGeneration(app, mine.key, ids[0] as string);
    const url = new URL(done.results[0].imageUrl);
    expect(url.searchParams.get("signature")).toMatch(/^[\w-]{43}$/);
    const signed = await fetch(app.url + url.pathname + url.search);
    expect(signed.status).toBe(200);
    expect(signed.headers.get("content-type")).toBe("image/png");
    const unsigned = new URL(url);
    unsigned.searchParams.delete("signature");
    unsigned.searchParams.delete("expires");
    const asOwner = await fetch(app.url + unsigned.pathname + unsigned.search, {
      headers: { authorization: `Bearer ${mine.key}` },
    });
    expect(Buffer.from(await asOwner.arrayBuffer())).toEqual(
      Buffer.from(await signed.arrayBuffer()),
    );
    const stolen = await fetch(app.url + unsigned.pathname + unsigned.search, {
      headers: { authorization: `Bearer ${theirs.key}` },
    });
    expect(stolen.status).toBe(404);
    // The signature names one output: moved to another model or tampered with, it opens nothing.
    const forged = new URL(url);
    forged.searchParams.set("model", "gpt-image-2");
    expect((await fetch(app.url + forged.pathname + forged.search)).status).toBe(404);
    const tampered = new URL(url);
    tampered.searchParams.set("expires", String(Number(url.searchParams.get("expires")) + 3600));
    expect((await fetch(app.url + tampered.pathname + tampered.search)).status).toBe(404);
    app.clock.advance(25 * 3600_000);
    try {
      expect((await fetch(app.url + url.pathname + url.search)).status).toBe(404);
    } finally {
      app.clock.advance(-25 * 3600_000);
    }
  });

  it("pages history newest first and filters by media type, status, model and date", async () => {
    const { key } = await funded(1000n);
    const made: string[] = [];
    for (const models of [
      ["z-image-turbo"],
      ["gpt-image-2"],
      ["z-image-turbo", "qwen-image-2.0"],
    ]) {
      made.push(
        (await app.call("generate", { token: key, json: { prompt: "h", models } })).body
          .generationId,
      );
    }
    const video = await app.call("generate", {
      token: key,
      json: { prompt: "v", mediaType: "video", models: ["sora-2-preview"], duration: 4 },
    });
    made.push(video.body.generationId);
    for (const id of made) await waitForGeneration(app, key, id);

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await app.request(
        "GET",
        `/v1/history?limit=3${cursor ? `&cursor=${cursor}` : ""}`,
        { token: key },
      );
      expect(page.status).toBe(200);
      seen.push(...page.body.data.map((g: { generationId: string }) => g.generationId));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual([...made].reverse());

    const ids = async (query: string) =>
      (await app.call("listGenerations", { query, token: key })).body.data.map(
        (g: { generationId: string }) => g.generationId,
      );
    expect(await ids("mediaType=video")).toEqual([made[3]]);
    expect(await ids("model=z-image-turbo")).toEqual([made[2], made[0]]);
    expect(await ids("status=completed")).toHaveLength(4);
    expect(await ids("status=failed")).toEqual([]);
    expect(await ids(`from=${new Date(Date.now() + 60_000).toISOString()}`)).toEqual([]);
    expect(
      (await app.call("listGenerations", { query: { cursor: "bogus" }, token: key })).status,
    ).toBe(400);
    const forged = Buffer.from(JSON.stringify(["2024-13-45 99:99:99", made[0]])).toString(
      "base64url",
    );
    expect(
      (await app.call("listGenerations", { query: { cursor: forged }, token: key })).status,
    ).toBe(400);
  });
});
