import type { ProviderName } from "../routing/channels.js";
import type {
  AudioGenerationProvider,
  SpeechProvider,
  TranscriptionProvider,
} from "./audio-types.js";
import { falAudioProvider } from "./fal-audio.js";
import { openaiSpeechProvider, openaiTranscriptionProvider } from "./openai-audio.js";
import {
  sandboxAudioGenerationProvider,
  sandboxSpeechProvider,
  sandboxTranscriptionProvider,
} from "./sandbox-audio.js";

/**
 * Every audio adapter, by the name channels use for it and by what it makes; a provider
 * without one for a call serves no such call, and each door routes only to channels whose
 * provider is listed for it.
 */
export const speechProviders: Partial<Record<ProviderName, SpeechProvider>> = {
  sandbox: sandboxSpeechProvider,
  openai: openaiSpeechProvider,
};

export const transcriptionProviders: Partial<Record<ProviderName, TranscriptionProvider>> = {
  sandbox: sandboxTranscriptionProvider,
  openai: openaiTranscriptionProvider,
};

/** Music and sound effects (POST /v1/generate with mediaType audio). */
export const audioGenerationProviders: Partial<Record<ProviderName, AudioGenerationProvider>> = {
  sandbox: sandboxAudioGenerationProvider,
  fal: falAudioProvider,
};

/** Whether a channel's provider makes music and sound effects: where such a job may run. */
export const makesAudioGeneration = (channel: { provider: ProviderName }) =>
  audioGenerationProviders[channel.provider] !== undefined;
