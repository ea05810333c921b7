import type { ProviderName } from "../routing/channels.js";
import { falProvider } from "./fal.js";
import { openaiProvider } from "./openai.js";
import { replicateProvider } from "./replicate.js";
import { sandboxProvider } from "./sandbox.js";
import type { Provider } from "./types.js";

/** Every image and video adapter, by the name channels use for it. */
export const providers: Partial<Record<ProviderName, Provider>> = {
  sandbox: sandboxProvider,
  openai: openaiProvider,
  fal: falProvider,
  replicate: replicateProvider,
};
