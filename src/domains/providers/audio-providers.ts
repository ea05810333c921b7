import type { ProviderName } from "../routing/channels.js";
import type { SpeechProvider, TranscriptionProvider } from "./audio-types.js";
import { openaiSpeechProvider, openaiTranscriptionProvider } from "./openai-audio.js";
import { sandboxSpeechProvider, sandboxTranscriptionProvider } from "./sandbox-audio.js";

/**
 * Every speech and transcription adapter, by the name channels use for it; a provider without
 * one (anthropic, replicate; fal's audio is music and sound effects) serves no such call, and
 * the audio doors route only to channels whose provider is listed here.
 */
export const speechProviders: Partial<Record<ProviderName, SpeechProvider>> = {
  sandbox: sandboxSpeechProvider,
  openai: openaiSpeechProvider,
};

export const transcriptionProviders: Partial<Record<ProviderName, TranscriptionProvider>> = {
  sandbox: sandboxTranscriptionProvider,
  openai: openaiTranscriptionProvider,
};
