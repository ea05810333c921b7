import type { Runner } from "graphile-worker";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { runResult } from "../../src/domains/generations/run.js";
import { resultIdOf } from "../../src/domains/generations/submit.js";
import { wavSeconds } from "../../src/domains/providers/wav.js";
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
 * Music and sound effects through POST /v1/generate (issue 20, item 4): asynchronous like
 * video, quoted with audioGenerationCost, run by the worker over the sandbox and fal's queue.
 */
let app: TestApp;
let worker: Runner;
let primary: Simulator;
let backup: Simulator;

beforeAll(async () => {
  primary = await startSimulator();
  backup = await startSimulator();
  app = await startTestApp({
    env: {
      CHANNELS: JSON.stringify([
        {
          id: "sandbox",
          provider: "sandbox",
          networks: ["test"],
          models: {
            "stable-audio-2.5": "stable-audio-2.5",
            "elevenlabs-music-v2": "elevenlabs-music-v2",
            "tts-1": "tts-1",
            "whisper-1": "whisper-1",
            "z-image-turbo": "z-image-turbo",
          },
        },
        {
          id: "fal-main",
          provider: "fal",
          baseUrl: `${primary.url}/fal`,
          apiKey: "fal-key",
          networks: ["test"],
          priority: 0,
          models: {
            "minimax-music-2.5": "fal-ai/minimax-music/v2.5",
            "beatoven-sound-effects": "beatoven/sound-effect-generation",
          },
        },
        {
          id: "fal-backup",
          provider: "fal",
          baseUrl: `${backup.url}/fal`,
          apiKey: "fal-key",
          networks: ["test"],
          priority: 1,
          models: {
            "minimax-music-2.5": "fal-ai/minimax-music/v2.5",
            "minimax-music-1.5": "fal-ai/minimax-music/v1.5",
          },
        },
      ]),
    },
  });
  worker = await startWorker(app.ctx);
});

afterAll(async () => {
  await worker?.stop();
  await app?.close();
  await primary?.close();
  await backup?.close();
});

beforeEach(() => {
  for (const sim of [primary, backup]) {
    sim.script = [];
    sim.always = "ok";
    sim.byApi = {};
    sim.calls.length = 0;
  }
});

async function download(url: string, key: string) {
  const at = new URL(url);
  const res = await fetch(app.url + at.pathname + at.search, {
    headers: { authorization: `Bearer ${key}` },
  });
  return {
    status: res.status,
    contentType: res.headers.get("content-type"),
    bytes: Buffer.from(await res.arrayBuffer()),
  };
}

async function generate(key: string, json: Record<string, unknown>) {
  const res = await app.request("POST", "/v1/generate", { token: key, json });
  return res;
}

describe("music and sound effects through /v1/generate", () => {
  it("runs asynchronously, charges exactly its quote and delivers a real WAV of the length asked", async () => {
    const caller = await createFundedCaller(app.ctx, 100n);
    const json = {
      mediaType: "audio",
      prompt: "a calm piano loop",
      models: ["stable-audio-2.5"],
      duration: 7,
      seed: 42,
    };
    const res = await generate(caller.key, json);
    expect(res.status).toBe(202);
    // $0.20 a clip at 70%: 140,000 units = 14 credits.
    expect(res.body).toEqual({ generationId: expect.any(String), cost: 14 });
    const done = await waitForGeneration(app, caller.key, res.body.generationId);
    expect(done).toMatchObject({
      status: "completed",
      mediaType: "audio",
      cost: { quoted: 14, charged: 14, refunded: 0 },
    });
    const result = done.results[0];
    expect(result).toMatchObject({
      model: "stable-audio-2.5",
      status: "completed",
      cost: 14,
      charged: 14,
      routing: { upstream: "sandbox", failover: false },
    });
    expect(result.imageUrl).toBeUndefined();
    expect(result.audioUrl).toMatch(/\/v1\/download\?/);
    const file = await download(result.audioUrl, caller.key);
    expect(file.status).toBe(200);
    expect(file.contentType).toBe("audio/wav");
    expect(wavSeconds(file.bytes)).toBe(7);

    // The same prompt and seed make the same bytes.
    const again = await generate(caller.key, json);
    const second = await waitForGeneration(app, caller.key, again.body.generationId);
    expect((await download(second.results[0].audioUrl, caller.key)).bytes.equals(file.bytes)).toBe(
      true,
    );
    const balance = (await app.request("GET", "/v1/balance", { token: caller.key })).body;
    expect(balance).toMatchObject({ creditBalance: 72, heldCredits: 0 });
    await expectMoneyInvariants(app.ctx);
  });

  it("prices by the started minute, and infers audio from its models", async () => {
    const caller = await createFundedCaller(app.ctx, 200n);
    // $0.60 a started minute at 70%: 42 credits; 61 seconds start two.
    const res = await generate(caller.key, {
      prompt: "an orchestral swell",
      models: ["elevenlabs-music-v2"],
      duration: 61,
    });
    expect(res.status).toBe(202);
    expect(res.body.cost).toBe(84);
    const done = await waitForGeneration(app, caller.key, res.body.generationId);
    expect(done).toMatchObject({ status: "completed", cost: { charged: 84, refunded: 0 } });
    const file = await download(done.results[0].audioUrl, caller.key);
    expect(wavSeconds(file.bytes)).toBe(61);
  });

  it("fails over to a second fal channel when the first answers 500, charging the quote once", async () => {
    const caller = await createFundedCaller(app.ctx, 100n);
    primary.byApi = { fal: { script: [], always: "error500" } };
    const res = await generate(caller.key, {
      mediaType: "audio",
      prompt: "synthwave at night",
      models: ["minimax-music-2.5"],
      duration: 12,
    });
    expect(res.status).toBe(202);
    // $0.15 a clip at 70%: 10.5 credits.
    expect(res.body.cost).toBe(10.5);
    const done = await waitForGeneration(app, caller.key, res.body.generationId);
    expect(done).toMatchObject({
      status: "completed",
      cost: { quoted: 10.5, charged: 10.5, refunded: 0 },
    });
    const routing = done.results[0].routing;
    expect(routing).toMatchObject({ upstream: "fal-backup", failover: true });
    const attempts = routing.attempts.map((a: { channel: string; outcome: string }) => [
      a.channel,
      a.outcome,
    ]);
    expect(attempts.at(-1)).toEqual(["fal-backup", "ok"]);
    expect(attempts.length).toBeGreaterThan(1);
    for (const attempt of attempts.slice(0, -1))
      expect(attempt).toEqual(["fal-main", "upstream_500"]);
    expect(backup.calls).toEqual([
      {
        api: "fal",
        model: "fal-ai/minimax-music/v2.5",
        prompt: "synthwave at night",
        input: expect.objectContaining({ prompt: "synthwave at night", duration: 12 }),
      },
    ]);
    const file = await download(done.results[0].audioUrl, caller.key);
    expect(file.contentType).toBe("audio/wav");
    expect(wavSeconds(file.bytes)).toBe(12);
    const balance = (await app.request("GET", "/v1/balance", { token: caller.key })).body;
    expect(balance).toMatchObject({ creditBalance: 89.5, heldCredits: 0 });
    await expectMoneyInvariants(app.ctx);
  });

  it("refunds in full when every channel fails", async () => {
    const caller = await createFundedCaller(app.ctx, 100n);
    primary.byApi = { fal: { script: [], always: "error500" } };
    const res = await generate(caller.key, {
      mediaType: "audio",
      prompt: "a door creaks",
      models: ["beatoven-sound-effects"],
      duration: 5,
    });
    expect(res.status).toBe(202);
    expect(res.body.cost).toBe(7);
    const done = await waitForGeneration(app, caller.key, res.body.generationId);
    expect(done).toMatchObject({
      status: "failed",
      cost: { quoted: 7, charged: 0, refunded: 7 },
    });
    expect(done.results[0]).toMatchObject({ audioUrl: null, routing: { upstream: null } });
    const balance = (await app.request("GET", "/v1/balance", { token: caller.key })).body;
    expect(balance).toMatchObject({ creditBalance: 100, heldCredits: 0 });
    await expectMoneyInvariants(app.ctx);
  });

  it("resumes the fal job an earlier run submitted, so a second run pays upstream once and settles once", async () => {
    const caller = await createFundedCaller(app.ctx, 100n);
    backup.jobMs = 600_000; // the upstream job runs until the test lets it finish
    try {
      const res = await generate(caller.key, {
        mediaType: "audio",
        prompt: "thunder far away",
        models: ["minimax-music-1.5"],
        duration: 10,
      });
      expect(res.status).toBe(202);
      const resultId = resultIdOf(res.body.generationId, 0);
      const deadline = Date.now() + 20_000;
      for (;;) {
        const { rows } = await app.ctx.pool.query(
          "select upstream_job from generation_results where id = $1",
          [resultId],
        );
        if (rows[0]?.upstream_job) {
          expect(rows[0].upstream_job).toMatchObject({ channel: "fal-backup" });
          break;
        }
        if (Date.now() > deadline) throw new Error("the fal job was not recorded");
        await new Promise((r) => setTimeout(r, 50));
      }
      // A second run of the same result (as after a crash) while the first still polls.
      const second = runResult(app.ctx, app.ctx.generations, resultId);
      await new Promise((r) => setTimeout(r, 300));
      backup.jobMs = 0;
      await second;
      const done = await waitForGeneration(app, caller.key, res.body.generationId);
      expect(done).toMatchObject({
        status: "completed",
        cost: { quoted: 2.1, charged: 2.1, refunded: 0 },
      });
      expect(backup.calls.filter((c) => c.api === "fal")).toHaveLength(1);
      const { rows } = await app.ctx.pool.query(
        `select r.runs, (select count(*)::int from ledger_transfers t where t.hold_id = r.hold_id and t.kind = 'hold_post') as charges
         from generation_results r where r.id = $1`,
        [resultId],
      );
      expect(rows).toEqual([{ runs: 2, charges: 1 }]);
      expect(wavSeconds((await download(done.results[0].audioUrl, caller.key)).bytes)).toBe(10);
      await expectMoneyInvariants(app.ctx);
    } finally {
      backup.jobMs = 50;
    }
  });

  it("refuses a model that is not a music or sound-effect model, and a duration it does not offer", async () => {
    const caller = await createFundedCaller(app.ctx, 100n);
    const base = { mediaType: "audio", prompt: "a song", duration: 10 };
    const cases: Array<[Record<string, unknown>, string, string]> = [
      [{ ...base, models: ["tts-1"] }, "audio_model_not_generative", "models"],
      [{ ...base, models: ["whisper-1"] }, "audio_model_not_generative", "models"],
      [{ ...base, models: ["z-image-turbo"] }, "model_media_mismatch", "models"],
      [{ ...base, models: ["no-such-model"] }, "invalid_model", "models"],
      [{ ...base, models: ["stable-audio-2.5"], duration: 191 }, "invalid_duration", "duration"],
      [{ ...base, models: ["elevenlabs-music-v2"], duration: 5 }, "invalid_duration", "duration"],
      [
        { mediaType: "audio", prompt: "a song", models: ["stable-audio-2.5"] },
        "duration_required",
        "duration",
      ],
      [
        { ...base, models: ["stable-audio-2.5"], resolution: "1K" },
        "invalid_resolution",
        "resolution",
      ],
      [{ ...base, models: ["stable-audio-2.5", "stable-audio-2.5"] }, "duplicate_model", "models"],
    ];
    for (const [json, code, field] of cases) {
      const res = await generate(caller.key, json);
      expect(res.status, JSON.stringify(json)).toBe(400);
      expect(res.body.error, JSON.stringify(json)).toMatchObject({ code, field });
    }
    const tts = await generate(caller.key, { ...base, models: ["tts-1"] });
    expect(tts.body.error.message).toMatch(/speech model.*\/v1\/audio\/speech/);
    const balance = (await app.request("GET", "/v1/balance", { token: caller.key })).body;
    expect(balance).toMatchObject({ creditBalance: 100, heldCredits: 0 });
  });
});
