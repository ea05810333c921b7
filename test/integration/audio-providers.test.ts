import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { audioSeconds, mp3Seconds } from "../../src/domains/providers/audio-duration.js";
import type { SpeechTask, TranscriptionTask } from "../../src/domains/providers/audio-types.js";
import {
  openaiSpeechProvider,
  openaiTranscriptionProvider,
} from "../../src/domains/providers/openai-audio.js";
import {
  sandboxSpeechProvider,
  sandboxSpeechSeconds,
  sandboxTranscriptionProvider,
} from "../../src/domains/providers/sandbox-audio.js";
import { ProviderError } from "../../src/domains/providers/types.js";
import { makeWav, wavComment, wavSeconds } from "../../src/domains/providers/wav.js";
import { classify } from "../../src/domains/routing/router.js";
import { mp3, mp3FrameSeconds } from "../helpers/audio.js";
import { clearFaults, type Fault, type Simulator, startSimulator } from "../simulator/upstream.js";

/**
 * The speech and transcription adapters: OpenAI's against the upstream simulator, with each
 * fault it injects (5xx, 429, a hang, a malformed body, a misconfigured model, a refusal), and
 * the offline sandbox; and reading an audio file's length from its headers (WAV and MP3).
 */

let sim: Simulator;
beforeAll(async () => {
  sim = await startSimulator();
});
afterAll(() => sim.close());
beforeEach(() => {
  clearFaults(sim);
  sim.calls.length = 0;
});

const channel = () => ({ id: "sim", baseUrl: `${sim.url}/openai`, apiKey: "sk-sim" });
const speechTask = (over: Partial<SpeechTask> = {}): SpeechTask => ({
  upstreamModel: "tts-1",
  input: "Hello from the simulated upstream.",
  voice: "alloy",
  format: "mp3",
  ...over,
});
const transcriptionTask = (over: Partial<TranscriptionTask> = {}): TranscriptionTask => ({
  upstreamModel: "whisper-1",
  file: makeWav({ seconds: 3, seed: "t", comment: "words in the file" }),
  filename: "speech.wav",
  contentType: "audio/wav",
  ...over,
});

/** The error a call ended with, as routing classifies it. */
async function failureOf(call: Promise<unknown>): Promise<ProviderError> {
  try {
    await call;
  } catch (err) {
    return classify(err);
  }
  throw new Error("the call did not fail");
}

const faultCases: Array<[Fault, ProviderError["kind"], string]> = [
  ["error500", "retryable", "upstream_500"],
  ["rateLimit", "retryable", "rate_limited"],
  ["malformed", "retryable", "malformed_response"],
  ["unknownModel", "channel", "upstream_404"],
  ["contentPolicy", "caller", "content_policy"],
];

describe("the OpenAI speech adapter against the simulator", () => {
  it("answers the upstream's audio bytes with its content type, sending every field", async () => {
    const out = await openaiSpeechProvider.speak(
      speechTask({ speed: 1.5, instructions: "cheerfully" }),
      channel(),
      AbortSignal.timeout(5_000),
    );
    expect(out.contentType).toBe("audio/wav");
    expect(wavComment(out.bytes)).toBe("Hello from the simulated upstream.");
    expect(wavSeconds(out.bytes)).toBe(3);
    expect(sim.calls.at(-1)?.input).toEqual({
      model: "tts-1",
      input: "Hello from the simulated upstream.",
      voice: "alloy",
      response_format: "mp3",
      speed: 1.5,
      instructions: "cheerfully",
    });
  });

  it.each(faultCases)("%s is a %s failure (%s)", async (fault, kind, code) => {
    sim.script.push(fault);
    const error = await failureOf(
      openaiSpeechProvider.speak(speechTask(), channel(), AbortSignal.timeout(5_000)),
    );
    expect(error).toBeInstanceOf(ProviderError);
    expect(error).toMatchObject({ kind, code });
    if (fault === "rateLimit") expect(error.retryAfterMs).toBe(1_000);
  });

  it("a hang ends at the signal's deadline as a retryable timeout", async () => {
    sim.script.push("hang");
    const error = await failureOf(
      openaiSpeechProvider.speak(speechTask(), channel(), AbortSignal.timeout(300)),
    );
    expect(error).toMatchObject({ kind: "retryable", code: "timeout" });
  });

  it("a connection refused is a retryable connection error", async () => {
    const error = await failureOf(
      openaiSpeechProvider.speak(
        speechTask(),
        { id: "down", baseUrl: "http://127.0.0.1:9", apiKey: "k" },
        AbortSignal.timeout(5_000),
      ),
    );
    expect(error).toMatchObject({ kind: "retryable", code: "connection_error" });
  });
});

describe("the OpenAI transcription adapter against the simulator", () => {
  it("sends the file as multipart with its options and reads { text }", async () => {
    const out = await openaiTranscriptionProvider.transcribe(
      transcriptionTask({ language: "en", prompt: "names: Polyforge" }),
      channel(),
      AbortSignal.timeout(5_000),
    );
    expect(out).toEqual({ text: "words in the file" });
    expect(sim.calls.at(-1)).toMatchObject({ api: "openai", model: "whisper-1" });
  });

  it("a file the upstream cannot read is its 400: the caller's failure, not the channel's, not a 500", async () => {
    const error = await failureOf(
      openaiTranscriptionProvider.transcribe(
        transcriptionTask({ file: Buffer.from("nope") }),
        channel(),
        AbortSignal.timeout(5_000),
      ),
    );
    expect(error).toMatchObject({ kind: "caller", code: "upstream_400" });
  });

  it.each(faultCases)("%s is a %s failure (%s)", async (fault, kind, code) => {
    sim.script.push(fault);
    const error = await failureOf(
      openaiTranscriptionProvider.transcribe(
        transcriptionTask(),
        channel(),
        AbortSignal.timeout(5_000),
      ),
    );
    expect(error).toMatchObject({ kind, code });
  });

  it("a hang ends at the signal's deadline as a retryable timeout", async () => {
    sim.script.push("hang");
    const error = await failureOf(
      openaiTranscriptionProvider.transcribe(
        transcriptionTask(),
        channel(),
        AbortSignal.timeout(300),
      ),
    );
    expect(error).toMatchObject({ kind: "retryable", code: "timeout" });
  });
});

describe("the sandbox audio adapters", () => {
  const offline = { id: "sandbox", baseUrl: "" };
  it("speaks real WAV of a length that follows the input, the same bytes for the same input", async () => {
    const speak = (input: string, speed?: number) =>
      sandboxSpeechProvider.speak(
        speechTask({ input, speed }),
        offline,
        AbortSignal.timeout(1_000),
      );
    const short = await speak("short");
    const long = await speak("x".repeat(150));
    expect(short.contentType).toBe("audio/wav");
    expect(wavSeconds(short.bytes)).toBe(1);
    expect(wavSeconds(long.bytes)).toBe(10);
    expect(sandboxSpeechSeconds("x".repeat(150))).toBe(10);
    expect((await speak("short")).bytes.equals(short.bytes)).toBe(true);
    // Twice the speed, half the length.
    expect(wavSeconds((await speak("x".repeat(150), 2)).bytes)).toBe(5);
  });

  it("transcribes its own speech back to the text, and other WAV deterministically", async () => {
    const speech = await sandboxSpeechProvider.speak(
      speechTask({ input: "é 🎧 unicode survives" }),
      offline,
      AbortSignal.timeout(1_000),
    );
    const task = transcriptionTask({ file: speech.bytes });
    expect(
      await sandboxTranscriptionProvider.transcribe(task, offline, AbortSignal.timeout(1_000)),
    ).toEqual({ text: "é 🎧 unicode survives" });
    const plain = transcriptionTask({ file: makeWav({ seconds: 2.5, seed: "x" }) });
    expect(
      await sandboxTranscriptionProvider.transcribe(plain, offline, AbortSignal.timeout(1_000)),
    ).toEqual({ text: "Sandbox transcription of 2.5 seconds." });
  });

  it("transcribes an MP3 to a sentence naming its length, and refuses other bytes as the caller's error", async () => {
    expect(
      await sandboxTranscriptionProvider.transcribe(
        transcriptionTask({ file: mp3(400), filename: "a.mp3" }),
        offline,
        AbortSignal.timeout(1_000),
      ),
    ).toEqual({ text: "Sandbox transcription of 10.4 seconds." });
    const error = await failureOf(
      sandboxTranscriptionProvider.transcribe(
        transcriptionTask({ file: Buffer.from("not audio") }),
        offline,
        AbortSignal.timeout(1_000),
      ),
    );
    expect(error).toMatchObject({ kind: "caller", code: "unsupported_media" });
  });
});

describe("an audio file's length from its headers", () => {
  it("reads a WAV's seconds from its fmt and data chunks, its comment chunk aside", () => {
    expect(wavSeconds(makeWav({ seconds: 7.25, seed: "a", comment: "odd length!" }))).toBe(7.25);
    expect(wavSeconds(makeWav({ seconds: 61.2, seed: "b", sampleRate: 8_000 }))).toBeCloseTo(
      61.2,
      6,
    );
    expect(audioSeconds(makeWav({ seconds: 3, seed: "c" }))).toBe(3);
  });

  it("reads an MP3's seconds by walking its frames, after an ID3 tag too", () => {
    const perFrame = mp3FrameSeconds;
    expect(mp3Seconds(mp3(100))).toBeCloseTo(100 * perFrame, 9);
    expect(mp3Seconds(mp3(100, { id3: true }))).toBeCloseTo(100 * perFrame, 9);
    expect(mp3Seconds(mp3(50, { padding: true }))).toBeCloseTo(50 * perFrame, 9);
    expect(audioSeconds(mp3(383))).toBeCloseTo(10, 1);
  });

  it("is undefined for bytes that are neither", () => {
    expect(audioSeconds(Buffer.from("hello, not audio"))).toBeUndefined();
    expect(audioSeconds(Buffer.alloc(0))).toBeUndefined();
    expect(audioSeconds(Buffer.from("RIFF\x00\x00\x00\x00WAVE", "latin1"))).toBeUndefined();
    expect(audioSeconds(Buffer.from([0xff, 0xfb, 0xf0, 0x00, 1, 2, 3]))).toBeUndefined();
  });
});
