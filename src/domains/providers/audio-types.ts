import type { SpeechFormat } from "../catalog/audio-models.js";
import type { ChannelEndpoint, ProviderOutput, UpstreamJob } from "./types.js";

/** Audio adapters (issue 20, items 4 and 6), beside the image/video and chat ones. */

export interface SpeechTask {
  upstreamModel: string;
  /** At most the model's maxInputCharacters, checked before it was priced. */
  input: string;
  voice: string;
  format: SpeechFormat;
  speed?: number | undefined;
  /** How to speak it (gpt-4o-mini-tts); upstreams without the option ignore it. */
  instructions?: string | undefined;
}

export interface TranscriptionTask {
  upstreamModel: string;
  file: Buffer;
  filename: string;
  contentType: string;
  /** ISO-639 code of the spoken language, when the caller knows it. */
  language?: string | undefined;
  /** Text to guide the transcription's style or vocabulary. */
  prompt?: string | undefined;
}

export interface Transcription {
  text: string;
}

/** Music and sound effects: a clip of `duration` seconds from a prompt. */
export interface AudioGenerationTask {
  upstreamModel: string;
  prompt: string;
  duration: number;
  seed: number;
}

export interface SpeechProvider {
  speak(task: SpeechTask, channel: ChannelEndpoint, signal: AbortSignal): Promise<ProviderOutput>;
}

export interface TranscriptionProvider {
  transcribe(
    task: TranscriptionTask,
    channel: ChannelEndpoint,
    signal: AbortSignal,
  ): Promise<Transcription>;
}

export interface AudioGenerationProvider {
  generateAudio(
    task: AudioGenerationTask,
    channel: ChannelEndpoint,
    signal: AbortSignal,
    job?: UpstreamJob,
  ): Promise<ProviderOutput>;
}
