import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { AudioGenerationTask } from "../../src/domains/providers/audio-types.js";
import { falAudioProvider } from "../../src/domains/providers/fal-audio.js";
import { sandboxAudioGenerationProvider } from "../../src/domains/providers/sandbox-audio.js";
import { ProviderError } from "../../src/domains/providers/types.js";
import { validateOutput } from "../../src/domains/providers/validate.js";
import { makeWav, wavSeconds } from "../../src/domains/providers/wav.js";
import { clearFaults, type Simulator, startSimulator } from "../simulator/upstream.js";

/** fal's queue for music and sound effects, against the simulator speaking it, with faults. */
let sim: Simulator;
let channel: { id: string; baseUrl: string; apiKey: string };
beforeAll(async () => {
  sim = await startSimulator();
  channel = { id: "fal", baseUrl: `${sim.url}/fal`, apiKey: "fal-key" };
});
afterAll(() => sim.close());
beforeEach(() => {
  clearFaults(sim);
  sim.calls.length = 0;
  sim.jobMs = 50;
});

const task: AudioGenerationTask = {
  upstreamModel: "fal-ai/stable-audio-25/text-to-audio",
  prompt: "rain on a tin roof",
  duration: 9,
  seed: 7,
};

async function failureOf(promise: Promise<unknown>): Promise<ProviderError> {
  const error = await promise.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(error).toBeInstanceOf(ProviderError);
  return error as ProviderError;
}

describe("the fal audio adapter", () => {
  it("submits to the queue, polls its status and downloads the result's audio", async () => {
    sim.jobMs = 300; // polled at least once before it completes
    const recorded: Array<Record<string, unknown>> = [];
    const output = await falAudioProvider.generateAudio(task, channel, AbortSignal.timeout(5_000), {
      resume: undefined,
      submitted: async (job) => void recorded.push(job),
    });
    expect(sim.calls).toEqual([
      {
        api: "fal",
        model: task.upstreamModel,
        prompt: task.prompt,
        input: { prompt: task.prompt, duration: 9, seed: 7 },
      },
    ]);
    expect(recorded).toEqual([
      {
        request_id: expect.any(String),
        status_url: expect.stringContaining("/status"),
        response_url: expect.any(String),
      },
    ]);
    expect(output.contentType).toBe("audio/wav");
    expect(wavSeconds(output.bytes)).toBe(9);
    expect((await validateOutput("audio", output)).contentType).toBe("audio/wav");
  });

  it("resumes a job an earlier run submitted instead of paying for another", async () => {
    let job: Record<string, unknown> | undefined;
    await falAudioProvider.generateAudio(task, channel, AbortSignal.timeout(5_000), {
      resume: undefined,
      submitted: async (submitted) => {
        job = submitted;
      },
    });
    sim.calls.length = 0;
    const output = await falAudioProvider.generateAudio(task, channel, AbortSignal.timeout(5_000), {
      resume: job,
      submitted: async () => {
        throw new Error("submitted again");
      },
    });
    expect(sim.calls).toEqual([]);
    expect(wavSeconds(output.bytes)).toBe(9);
  });

  it("reads a 500 as retryable and a 429 as rate limited with its Retry-After", async () => {
    sim.byApi = { fal: { script: ["error500", "rateLimit"] } };
    const signal = () => AbortSignal.timeout(5_000);
    const error500 = await failureOf(falAudioProvider.generateAudio(task, channel, signal()));
    expect(error500).toMatchObject({ kind: "retryable", code: "upstream_500" });
    const limited = await failureOf(falAudioProvider.generateAudio(task, channel, signal()));
    expect(limited).toMatchObject({ kind: "retryable", code: "rate_limited", retryAfterMs: 1_000 });
  });

  it("reads an unknown model as the channel's fault, a content refusal as the caller's, a malformed answer as retryable", async () => {
    sim.byApi = { fal: { script: ["unknownModel", "contentPolicy", "malformed"] } };
    const signal = () => AbortSignal.timeout(5_000);
    expect(await failureOf(falAudioProvider.generateAudio(task, channel, signal()))).toMatchObject({
      kind: "channel",
      code: "upstream_404",
    });
    expect(await failureOf(falAudioProvider.generateAudio(task, channel, signal()))).toMatchObject({
      kind: "caller",
    });
    expect(await failureOf(falAudioProvider.generateAudio(task, channel, signal()))).toMatchObject({
      kind: "retryable",
      code: "malformed_response",
    });
  });

  it("gives up on a hung upstream when its signal times out", async () => {
    sim.byApi = { fal: { script: ["hang"] } };
    const started = Date.now();
    const error = await falAudioProvider
      .generateAudio(task, channel, AbortSignal.timeout(300))
      .then(
        () => undefined,
        (err: unknown) => err as Error,
      );
    expect(error?.name).toMatch(/TimeoutError|AbortError/);
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it("reads a 404 from a channel with a wrong base URL as the channel's fault", async () => {
    const error = await failureOf(
      falAudioProvider.generateAudio(
        task,
        { ...channel, baseUrl: `${sim.url}/nowhere` },
        AbortSignal.timeout(5_000),
      ),
    );
    expect(error.kind).toBe("channel");
  });
});

describe("audio output validation", () => {
  it("takes WAV by its header and refuses bytes that are not audio", async () => {
    const wav = makeWav({ seconds: 2, seed: "x", sampleRate: 8_000 });
    expect(await validateOutput("audio", { bytes: wav, contentType: "text/html" })).toEqual({
      bytes: wav,
      contentType: "audio/wav",
    });
    for (const bytes of [
      Buffer.from("<html>oops</html>"),
      Buffer.from("RIFF\0\0\0\0WAVE"),
      makeWav({ seconds: 0, seed: "x" }),
    ]) {
      await expect(
        validateOutput("audio", { bytes, contentType: "audio/wav" }),
      ).rejects.toMatchObject({
        kind: "retryable",
        code: "malformed_response",
      });
    }
  });

  it("takes an MP3 by its first frame header", async () => {
    // MPEG-1 Layer III, 128 kbit/s, 44.1 kHz: 417-byte frames of 1,152 samples; 40 of them.
    const frame = Buffer.alloc(417);
    frame.set([0xff, 0xfb, 0x90, 0x00]);
    const mp3 = Buffer.concat(Array.from({ length: 40 }, () => frame));
    expect((await validateOutput("audio", { bytes: mp3, contentType: "x" })).contentType).toBe(
      "audio/mpeg",
    );
  });
});

describe("the sandbox's music", () => {
  it("is a real WAV of the length asked, the same for the same prompt and seed", async () => {
    const signal = AbortSignal.timeout(5_000);
    const a = await sandboxAudioGenerationProvider.generateAudio(task, channel, signal);
    const b = await sandboxAudioGenerationProvider.generateAudio(task, channel, signal);
    const other = await sandboxAudioGenerationProvider.generateAudio(
      { ...task, seed: 8 },
      channel,
      signal,
    );
    expect(wavSeconds(a.bytes)).toBe(9);
    expect(a.bytes.equals(b.bytes)).toBe(true);
    expect(a.bytes.equals(other.bytes)).toBe(false);
  });
});
