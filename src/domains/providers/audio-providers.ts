import type { ProviderName } from "../routing/channels.js";
import type { AudioGenerationProvider } from "./audio-types.js";
import { falAudioProvider } from "./fal-audio.js";
import { sandboxAudioGenerationProvider } from "./sandbox-audio.js";

/** Every music and sound-effect adapter, by the name channels use for it; others make none. */
export const audioGenerationProviders: Partial<Record<ProviderName, AudioGenerationProvider>> = {
  sandbox: sandboxAudioGenerationProvider,
  fal: falAudioProvider,
};
