import { audioSeconds } from "./audio-duration.js";
import type {
  AudioGenerationProvider,
  SpeechProvider,
  TranscriptionProvider,
} from "./audio-types.js";
import { ProviderError } from "./types.js";
import { makeWav, wavComment } from "./wav.js";

/**
 * Offline audio: real WAV files of the length asked (speech: of its text, at a reading pace),
 * the same bytes for the same input. Speech carries its text in the file, so transcribing
 * sandbox speech gives that text back. WAV whatever format was asked: the sandbox has no MP3,
 * Opus or FLAC encoder, and says so in the content type. Transcription takes WAV and MP3 (what
 * the doors can price): a WAV it made gives back its text, any other file a fixed sentence
 * naming its length.
 */

/** Characters a second of sandbox speech (a brisk reading pace). */
export const SANDBOX_CHARACTERS_PER_SECOND = 15;

export const sandboxSpeechSeconds = (input: string): number =>
  Math.max(1, Math.ceil([...input].length / SANDBOX_CHARACTERS_PER_SECOND));

export const sandboxSpeechProvider: SpeechProvider = {
  speak: async (task) => ({
    bytes: makeWav({
      seconds: sandboxSpeechSeconds(task.input) / (task.speed ?? 1),
      seed: `${task.upstreamModel}\n${task.voice}\n${task.input}`,
      comment: task.input,
    }),
    contentType: "audio/wav",
  }),
};

export const sandboxTranscriptionProvider: TranscriptionProvider = {
  transcribe: async (task) => {
    const seconds = audioSeconds(task.file);
    if (seconds === undefined) {
      throw new ProviderError(
        "caller",
        "unsupported_media",
        "The sandbox transcribes WAV and MP3 files only.",
      );
    }
    return {
      text: wavComment(task.file) ?? `Sandbox transcription of ${seconds.toFixed(1)} seconds.`,
    };
  },
};

export const sandboxAudioGenerationProvider: AudioGenerationProvider = {
  generateAudio: async (task) => ({
    bytes: makeWav({
      seconds: task.duration,
      seed: `${task.upstreamModel}\n${task.prompt}\n${task.seed}`,
      // Music at a lower rate: a 300 s clip stays under 5 MB.
      sampleRate: 8_000,
    }),
    contentType: "audio/wav",
  }),
};
