import { anthropicChatProvider } from "./anthropic-chat.js";
import type { ChatProvider } from "./chat-types.js";
import { openaiChatProvider } from "./openai-chat.js";
import { sandboxChatProvider } from "./sandbox-chat.js";

/**
 * Every chat adapter, by the name a channel would use for it. `anthropic` is not yet a
 * CHANNELS provider name (routing/channels.ts): adding it is part of wiring chat into routing.
 */
export const chatProviderNames = ["sandbox", "openai", "anthropic"] as const;
export type ChatProviderName = (typeof chatProviderNames)[number];

export const chatProviders: Record<ChatProviderName, ChatProvider> = {
  sandbox: sandboxChatProvider,
  openai: openaiChatProvider,
  anthropic: anthropicChatProvider,
};
