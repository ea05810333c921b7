import type { ProviderName } from "../routing/channels.js";
import { anthropicChatProvider } from "./anthropic-chat.js";
import type { ChatProvider } from "./chat-types.js";
import { openaiChatProvider } from "./openai-chat.js";
import { sandboxChatProvider } from "./sandbox-chat.js";

/** Every chat adapter, by the name channels use for it; other providers serve no chat. */
export const chatProviders: Partial<Record<ProviderName, ChatProvider>> = {
  sandbox: sandboxChatProvider,
  openai: openaiChatProvider,
  anthropic: anthropicChatProvider,
};
