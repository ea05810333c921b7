import OpenAI, { toFile } from "openai";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  characterCount,
  findAudioModel,
  type SpeechModel,
  speechCost,
  type TranscriptionModel,
  transcriptionCost,
} from "../../src/domains/catalog/audio-models.js";
import { expireHolds, getBalance } from "../../src/domains/ledger/service.js";
import { makeWav, wavComment, wavSeconds } from "../../src/domains/providers/wav.js";
import { creditsToJson, creditUnits } from "../../src/lib/credits.js";
import {
  createAccountWithKey,
  createFundedCaller,
  startTestApp,
  type TestApp,
} from "../helpers/app.js";
import { mp3, mp3FrameSeconds } from "../helpers/audio.js";
import { expectMoneyInvariants } from "../helpers/ledger.js";
import { clearFaults, type Simulator, startSimulator } from "../simulator/upstream.js";

/**
 * POST /v1/audio/speech and /v1/audio/transcriptions through the official openai client: each
 * charged exactly the quote (speechCost of the input's characters, transcriptionCost of the
 * file's seconds), refunded in full when every channel fails, never charged twice for one
 * Idempotency-Key, and bad input refused with a 4xx before anything is held.
 */

const speechModel = findAudioModel("tts-1") as SpeechModel;
const whisper = findAudioModel("whisper-1") as TranscriptionModel;

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp({ env: { LOG_LEVEL: "error" } });
});
afterAll(() => app.close());
afterEach(() => expectMoneyInvariants(app.ctx));

async function client(target: TestApp, credits = 100n) {
  const caller = await createFundedCaller(target.ctx, credits, "test");
  const units = async () => (await getBalance(target.ctx, caller.account.id, "test")).creditBalance;
  return {
    ...caller,
    units,
    openai: new OpenAI({ apiKey: caller.key, baseURL: `${target.url}/v1`, maxRetries: 0 }),
  };
}

const isWav = (bytes: Buffer) =>
  bytes.toString("latin1", 0, 4) === "RIFF" && bytes.toString("latin1", 8, 12) === "WAVE";

describe("POST /v1/audio/speech (sandbox)", () => {
  it("answers real WAV audio whose length follows the input, charged exactly speechCost", async () => {
    const { openai, units } = await client(app);
    const input = "The quiet harbor at dawn, gulls over grey water. Ça va? 🎧";
    const before = await units();
    const response = await openai.audio.speech.create({
      model: "tts-1",
      input,
      voice: "alloy",
      response_format: "wav",
    });
    const bytes = Buffer.from(await response.arrayBuffer());
    expect(response.headers.get("content-type")).toMatch(/^audio\/wav/);
    expect(isWav(bytes)).toBe(true);
    // The sandbox speaks about 15 characters a second and writes its text in the file.
    expect(wavSeconds(bytes)).toBe(Math.ceil(characterCount(input) / 15));
    expect(wavComment(bytes)).toBe(input);

    const cost = speechCost(speechModel, characterCount(input));
    expect(cost).toBeGreaterThan(0n);
    expect(before - (await units())).toBe(cost);
    expect(response.headers.get("x-credits-charged")).toBe(String(creditsToJson(cost)));
    expect(response.headers.get("x-upstream")).toBe("sandbox-primary");
    expect(response.headers.get("x-failover")).toBe("false");
  });

  it("defaults to mp3 and says honestly that the sandbox answers WAV", async () => {
    const { openai } = await client(app);
    const response = await openai.audio.speech.create({
      model: "gpt-4o-mini-tts",
      input: "hello",
      voice: "coral",
    });
    const bytes = Buffer.from(await response.arrayBuffer());
    expect(isWav(bytes)).toBe(true);
    expect(response.headers.get("content-type")).toMatch(/^audio\/wav/);
  });

  it("a longer input makes longer audio", async () => {
    const { openai } = await client(app);
    const seconds = async (input: string) =>
      wavSeconds(
        Buffer.from(
          await (
            await openai.audio.speech.create({ model: "tts-1", input, voice: "nova" })
          ).arrayBuffer(),
        ),
      );
    expect(await seconds("a".repeat(300))).toBeGreaterThan((await seconds("short")) as number);
  });

  it.each([
    ["too long an input", { input: "x".repeat(4_097) }, 400, "prompt_too_long"],
    [
      "an input past the model's own max",
      { model: "eleven-v3", voice: "Aria", input: "x".repeat(3_001) },
      400,
      "prompt_too_long",
    ],
    ["an empty input", { input: "" }, 400, "invalid_request"],
    ["an unknown voice", { voice: "darth" }, 400, "invalid_voice"],
    ["an unknown format", { response_format: "ogg" }, 400, "invalid_request"],
    [
      "a format the model lacks",
      { model: "eleven-v3", voice: "Aria", response_format: "opus" },
      400,
      "invalid_audio_format",
    ],
    ["an unknown model", { model: "tts-9000" }, 400, "invalid_model"],
    ["a transcription model", { model: "whisper-1" }, 400, "model_media_mismatch"],
    ["an image model", { model: "nano-banana-2" }, 400, "model_media_mismatch"],
    ["a speed out of range", { speed: 5 }, 400, "invalid_request"],
    ["streamed speech (stream_format sse)", { stream_format: "sse" }, 400, "invalid_request"],
  ])("refuses %s with a stable code and charges nothing", async (_, over, status, code) => {
    const { key, units } = await client(app);
    const before = await units();
    const res = await app.request("POST", "/v1/audio/speech", {
      token: key,
      json: { model: "tts-1", input: "hello", voice: "alloy", ...over },
    });
    expect(res.status).toBe(status);
    expect(res.body.error.code).toBe(code);
    expect(await units()).toBe(before);
  });

  it("refuses a balance that cannot pay with 402, holding nothing", async () => {
    const { key, account } = await createAccountWithKey(app.ctx, "test");
    const res = await app.request("POST", "/v1/audio/speech", {
      token: key,
      json: { model: "tts-1", input: "hello", voice: "alloy" },
    });
    expect(res.status).toBe(402);
    expect(res.body.error.code).toBe("insufficient_credits");
    const balance = await getBalance(app.ctx, account.id, "test");
    expect([balance.creditBalance, balance.heldCredits]).toEqual([0n, 0n]);
  });

  it("needs an API key", async () => {
    const res = await app.request("POST", "/v1/audio/speech", {
      json: { model: "tts-1", input: "hello", voice: "alloy" },
    });
    expect(res.status).toBe(401);
  });

  it("a retry with the same Idempotency-Key replays the same audio and charges once", async () => {
    const { openai, units } = await client(app);
    const before = await units();
    const ask = () =>
      openai.audio.speech
        .create(
          { model: "tts-1", input: "charge me once", voice: "alloy", response_format: "wav" },
          { headers: { "Idempotency-Key": "speech-once-1" } },
        )
        .asResponse();
    const first = await ask();
    const firstBytes = Buffer.from(await first.arrayBuffer());
    const second = await ask();
    const secondBytes = Buffer.from(await second.arrayBuffer());
    expect(secondBytes.equals(firstBytes)).toBe(true);
    expect(second.headers.get("idempotent-replayed")).toBe("true");
    expect(second.headers.get("x-credits-charged")).toBe(first.headers.get("x-credits-charged"));
    expect(before - (await units())).toBe(speechCost(speechModel, "charge me once".length));
  });

  it("the same Idempotency-Key with another input is refused, uncharged", async () => {
    const { key, units } = await client(app);
    const send = (input: string) =>
      app.request("POST", "/v1/audio/speech", {
        token: key,
        headers: { "idempotency-key": "speech-reused" },
        json: { model: "tts-1", input, voice: "alloy" },
      });
    expect((await send("one")).status).toBe(200);
    const after = await units();
    const res = await send("two");
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe("idempotency_key_reused");
    expect(await units()).toBe(after);
    // A key lives 24 hours, as on every door: then it may be used again, for another request.
    app.clock.advance(24 * 3600_000 + 1000);
    const later = await send("two");
    expect(later.status).toBe(200);
    expect(later.headers.get("idempotent-replayed")).toBeNull();
    expect(after - (await units())).toBe(speechCost(speechModel, "two".length));
  });
});

describe("POST /v1/audio/transcriptions (sandbox)", () => {
  it("transcribes sandbox speech back to its text, charged exactly transcriptionCost", async () => {
    const { openai, units } = await client(app);
    const text = "Forty-two seconds of sandbox speech would be a lot.";
    const wav = makeWav({ seconds: 12.4, seed: "t", comment: text });
    const before = await units();
    const result = await openai.audio.transcriptions.create({
      file: await toFile(wav, "speech.wav", { type: "audio/wav" }),
      model: "whisper-1",
    });
    expect(result.text).toBe(text);
    const cost = transcriptionCost(whisper, 13);
    expect(before - (await units())).toBe(cost);
    const extra = result as unknown as {
      usage: { type: string; seconds: number; cost: number };
      routing: { upstream: string };
    };
    expect(extra.usage).toEqual({ type: "duration", seconds: 13, cost: creditsToJson(cost) });
    expect(extra.routing.upstream).toBe("sandbox-primary");
  });

  it("answers plain text with response_format=text", async () => {
    const { openai } = await client(app);
    const wav = makeWav({ seconds: 2, seed: "t", comment: "plain words" });
    const result = await openai.audio.transcriptions.create({
      file: await toFile(wav, "speech.wav"),
      model: "gpt-4o-mini-transcribe",
      response_format: "text",
    });
    expect(result).toBe("plain words");
  });

  it("speech made by the API transcribes back to its input", async () => {
    const { openai } = await client(app);
    const input = "round trip through the sandbox";
    const audio = Buffer.from(
      await (
        await openai.audio.speech.create({
          model: "tts-1",
          input,
          voice: "echo",
          response_format: "wav",
        })
      ).arrayBuffer(),
    );
    const result = await openai.audio.transcriptions.create({
      file: await toFile(audio, "speech.wav"),
      model: "whisper-1",
    });
    expect(result.text).toBe(input);
  });

  it("an MP3 is priced by its frames' seconds", async () => {
    const { openai, units } = await client(app);
    const before = await units();
    const result = await openai.audio.transcriptions.create({
      file: await toFile(mp3(400), "a.mp3", { type: "audio/mpeg" }),
      model: "gpt-4o-transcribe",
    });
    expect(result.text).toBe("Sandbox transcription of 10.4 seconds.");
    const model = findAudioModel("gpt-4o-transcribe") as TranscriptionModel;
    expect(before - (await units())).toBe(transcriptionCost(model, 11));
  });

  it("refuses a file whose length cannot be read with 400, charging nothing", async () => {
    const { openai, units } = await client(app);
    const before = await units();
    const err = await openai.audio.transcriptions
      .create({ file: await toFile(Buffer.from("not audio at all"), "a.wav"), model: "whisper-1" })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    const body = (err as InstanceType<typeof OpenAI.BadRequestError>).error as {
      code: string;
      reason: string;
    };
    expect(body.code).toBe("invalid_audio");
    expect(body.reason).toBe("unreadable");
    expect(await units()).toBe(before);
  });

  it.each([
    ["an unknown model", { model: "whisper-9" }, 400, "invalid_model"],
    ["a speech model", { model: "tts-1" }, 400, "model_media_mismatch"],
    ["no model", { model: undefined }, 400, "invalid_request"],
    ["an unknown format", { response_format: "srt" }, 400, "invalid_request"],
  ])("refuses %s with a stable code", async (_, over, status, code) => {
    const { key, units } = await client(app);
    const before = await units();
    const form = new FormData();
    const fields: Record<string, string | undefined> = { model: "whisper-1", ...over };
    for (const [k, v] of Object.entries(fields)) if (v !== undefined) form.append(k, v);
    form.append("file", new Blob([new Uint8Array(makeWav({ seconds: 1, seed: "x" }))]), "a.wav");
    const res = await fetch(`${app.url}/v1/audio/transcriptions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}` },
      body: form,
    });
    expect(res.status).toBe(status);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe(code);
    expect(await units()).toBe(before);
  });

  it("refuses a request without a file, or not multipart", async () => {
    const { key } = await client(app);
    const form = new FormData();
    form.append("model", "whisper-1");
    const noFile = await fetch(`${app.url}/v1/audio/transcriptions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}` },
      body: form,
    });
    expect(noFile.status).toBe(400);
    const json = await app.request("POST", "/v1/audio/transcriptions", {
      token: key,
      json: { model: "whisper-1" },
    });
    expect(json.status).toBe(400);
    expect(json.body.error.code).toBe("invalid_request");
  });

  it("refuses a file past 25 MB with 413", async () => {
    const { key } = await client(app);
    const form = new FormData();
    form.append("model", "whisper-1");
    form.append("file", new Blob([new Uint8Array(25 * 1024 * 1024 + 1)]), "big.wav");
    const res = await fetch(`${app.url}/v1/audio/transcriptions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}` },
      body: form,
    });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
      "payload_too_large",
    );
  });

  it("a retry with the same Idempotency-Key answers the same text and charges once", async () => {
    const { openai, units } = await client(app);
    const wav = makeWav({ seconds: 30, seed: "i", comment: "once only" });
    const before = await units();
    for (let i = 0; i < 2; i++) {
      const result = await openai.audio.transcriptions.create(
        { file: await toFile(wav, "a.wav"), model: "whisper-1" },
        { headers: { "Idempotency-Key": "transcribe-once" } },
      );
      expect(result.text).toBe("once only");
    }
    expect(before - (await units())).toBe(transcriptionCost(whisper, 30));
  });
});

describe("routing over the simulator: failover and refunds", () => {
  let sim: Simulator;
  let simApp: TestApp;
  beforeAll(async () => {
    sim = await startSimulator();
    const channel = (id: string, priority: number) => ({
      id,
      provider: "openai",
      baseUrl: `${sim.url}/openai`,
      apiKey: "sk-sim",
      networks: ["test"],
      models: { "tts-1": "tts-1", "whisper-1": "whisper-1" },
      priority,
    });
    simApp = await startTestApp({
      env: {
        LOG_LEVEL: "error",
        ROUTING_MAX_RETRIES: "0",
        UPSTREAM_TIMEOUT_MS: "1000",
        CIRCUIT_FAILURE_THRESHOLD: "1000",
        CHANNELS: JSON.stringify([
          channel("sim-a", 0),
          channel("sim-b", 1),
          // The image models' channel, so the catalog's other routes still route somewhere.
          {
            id: "sandbox",
            provider: "sandbox",
            networks: ["test"],
            models: { "nano-banana-2": "nano-banana-2" },
          },
        ]),
      },
    });
  });
  afterAll(async () => {
    await simApp.close();
    await sim.close();
  });
  beforeEach(() => {
    clearFaults(sim);
    sim.calls.length = 0;
  });
  afterEach(() => expectMoneyInvariants(simApp.ctx));

  it("speech through an OpenAI channel is charged exactly its quote", async () => {
    const { openai, units } = await client(simApp);
    const before = await units();
    const response = await openai.audio.speech.create({
      model: "tts-1",
      input: "from the simulator",
      voice: "alloy",
    });
    expect(isWav(Buffer.from(await response.arrayBuffer()))).toBe(true);
    expect(response.headers.get("x-upstream")).toBe("sim-a");
    expect(before - (await units())).toBe(speechCost(speechModel, 18));
    expect(sim.calls.at(-1)).toMatchObject({ api: "openai", model: "tts-1" });
  });

  it("fails over to the second channel when the first errors, charging the quote once", async () => {
    const { openai, units } = await client(simApp);
    sim.script.push("error500");
    const before = await units();
    const response = await openai.audio.speech.create({
      model: "tts-1",
      input: "failover",
      voice: "alloy",
    });
    expect(response.headers.get("x-upstream")).toBe("sim-b");
    expect(response.headers.get("x-failover")).toBe("true");
    expect(before - (await units())).toBe(speechCost(speechModel, 8));
  });

  it("refunds in full when every channel fails (speech)", async () => {
    const { key, units } = await client(simApp);
    sim.always = "error500";
    const before = await units();
    const res = await simApp.request("POST", "/v1/audio/speech", {
      token: key,
      json: { model: "tts-1", input: "doomed", voice: "alloy" },
    });
    expect(res.status).toBe(502);
    expect(res.body.error.code).toBe("generation_failed");
    expect(await units()).toBe(before);
    expect(
      (await getBalance(simApp.ctx, (await client(simApp)).account.id, "test")).heldCredits,
    ).toBe(0n);
  });

  it("refunds in full when every channel fails (transcription), and a malformed answer fails over", async () => {
    const { openai, units } = await client(simApp);
    const wav = makeWav({ seconds: 5, seed: "s", comment: "simulated words" });
    sim.script.push("malformed");
    const before = await units();
    const ok = await openai.audio.transcriptions.create({
      file: await toFile(wav, "a.wav"),
      model: "whisper-1",
    });
    expect(ok.text).toBe("simulated words");
    expect((ok as unknown as { routing: { upstream: string } }).routing.upstream).toBe("sim-b");
    const charged = transcriptionCost(whisper, 5);
    expect(before - (await units())).toBe(charged);

    sim.always = "rateLimit";
    const err = await openai.audio.transcriptions
      .create({ file: await toFile(wav, "a.wav"), model: "whisper-1" })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(502);
    expect(before - (await units())).toBe(charged);
  });

  it("an MP3 through an OpenAI channel is charged exactly transcriptionCost of its seconds", async () => {
    const { openai, units } = await client(simApp);
    const file = mp3(1_000, { id3: true }); // 26.12 s → 27 s
    const seconds = Math.ceil(1_000 * mp3FrameSeconds);
    expect(seconds).toBe(27);
    const before = await units();
    const result = await openai.audio.transcriptions.create({
      file: await toFile(file, "talk.mp3", { type: "audio/mpeg" }),
      model: "whisper-1",
    });
    expect(result.text).toMatch(/^Simulated transcription of 26\.1 seconds/);
    expect(before - (await units())).toBe(transcriptionCost(whisper, seconds));
    expect((result as unknown as { usage: { seconds: number } }).usage.seconds).toBe(27);
  });

  it("a retry after a failure with the same Idempotency-Key runs again and charges once", async () => {
    const { key, units } = await client(simApp);
    const send = () =>
      simApp.request("POST", "/v1/audio/speech", {
        token: key,
        headers: { "idempotency-key": "retry-after-failure" },
        json: { model: "tts-1", input: "try again", voice: "alloy" },
      });
    const before = await units();
    sim.always = "error500";
    expect((await send()).status).toBe(502);
    expect(await units()).toBe(before);
    clearFaults(sim);
    expect((await send()).status).toBe(200);
    expect((await send()).status).toBe(200);
    expect(before - (await units())).toBe(speechCost(speechModel, 9));
  });

  it("an upstream that hangs times out and fails over, charged once", async () => {
    const { openai, units } = await client(simApp);
    sim.script.push("hang");
    const before = await units();
    const response = await openai.audio.speech.create({
      model: "tts-1",
      input: "patience",
      voice: "alloy",
    });
    expect(response.headers.get("x-upstream")).toBe("sim-b");
    expect(before - (await units())).toBe(speechCost(speechModel, 8));
  });

  it("concurrent requests with one Idempotency-Key run once and charge once", async () => {
    const { key, units } = await client(simApp);
    sim.always = "slow";
    sim.latencyMs = 300;
    const before = await units();
    const answers = await Promise.all(
      Array.from({ length: 5 }, () =>
        simApp.request("POST", "/v1/audio/speech", {
          token: key,
          headers: { "idempotency-key": "concurrent-speech" },
          json: { model: "tts-1", input: "only once", voice: "alloy" },
        }),
      ),
    );
    const statuses = answers.map((a) => a.status).sort();
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    for (const a of answers.filter((a) => a.status !== 200)) {
      expect(a.status).toBe(409);
      expect(a.body.error.code).toBe("idempotency_key_in_flight");
    }
    expect(sim.calls.filter((c) => c.prompt === "only once")).toHaveLength(1);
    expect(before - (await units())).toBe(speechCost(speechModel, 9));
  });

  it("a hold a dead call leaves pending is voided by the sweeper at its expiry: a full refund", async () => {
    const { key, account, units } = await client(simApp);
    sim.always = "hang";
    const before = await units();
    const call = simApp.request("POST", "/v1/audio/speech", {
      token: key,
      json: { model: "tts-1", input: "never answered", voice: "alloy" },
    });
    const cost = speechCost(speechModel, 14);
    for (let i = 0; i < 100; i++) {
      if ((await getBalance(simApp.ctx, account.id, "test")).heldCredits === cost) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect((await getBalance(simApp.ctx, account.id, "test")).heldCredits).toBe(cost);
    // As if the process had died mid-call: the sweeper's turn comes after the hold's hour.
    simApp.clock.advance(61 * 60 * 1000);
    expect(await expireHolds(simApp.ctx)).toBeGreaterThanOrEqual(1);
    expect(await units()).toBe(before);
    // The call itself still ends, refunded once, not twice.
    expect((await call).status).toBe(502);
    const balance = await getBalance(simApp.ctx, account.id, "test");
    expect([balance.creditBalance, balance.heldCredits]).toEqual([before, 0n]);
  });

  it("live mode without a channel for the model is model_unavailable, uncharged", async () => {
    const caller = await createFundedCaller(simApp.ctx, 10n, "live");
    const res = await simApp.request("POST", "/v1/audio/speech", {
      token: caller.key,
      json: { model: "tts-1", input: "live", voice: "alloy" },
    });
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe("model_unavailable");
    expect((await getBalance(simApp.ctx, caller.account.id, "live")).creditBalance).toBe(
      creditUnits(10n),
    );
  });
});
