import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { z } from "zod";
import { chatMessage } from "../domains/chat/messages.js";
import type { PolyforgeApi } from "./api.js";
import { answer, generating, type ToolExtra } from "./tool-answer.js";

/**
 * generate_text: one chat reply from a text model, as POST /v1/chat/completions makes it (held
 * at its most, charged its usage), returned whole with what it cost.
 */
export function registerTextTools(server: McpServer, api: PolyforgeApi): void {
  server.registerTool(
    "generate_text",
    {
      title: "Generate text",
      description:
        "Ask a text model (e.g. gpt-5.5, claude-sonnet-5, gemini-3.5-flash, deepseek-v4-pro; list_models with mediaType text shows them) for a reply: a prompt, or a whole conversation as messages. Billed by the tokens used, in credits; returns the reply, its token usage, cost and which upstream served it.",
      inputSchema: {
        model: z.string().min(1).describe("A text model's id."),
        prompt: z.string().min(1).optional().describe("The user's message, when not `messages`."),
        system: z.string().min(1).optional().describe("Instructions placed before the prompt."),
        messages: z
          .array(chatMessage)
          .min(1)
          .optional()
          .describe("A conversation in OpenAI's chat shape, instead of prompt and system."),
        maxTokens: z.number().int().min(1).optional().describe("The reply's token limit."),
        temperature: z.number().min(0).max(2).optional(),
      },
      outputSchema: {
        text: z.string(),
        model: z.string(),
        finishReason: z.string(),
        usage: z.object({
          promptTokens: z.number().int(),
          completionTokens: z.number().int(),
        }),
        cost: z
          .object({ quoted: z.number(), charged: z.number(), refunded: z.number() })
          .describe("Credits: held, charged for the usage, and returned."),
        routing: z.record(z.string(), z.unknown()),
      },
      annotations: generating,
    },
    async ({ model, prompt, system, messages, maxTokens, temperature }, extra) =>
      answer(async () => {
        const conversation = messages ?? [
          ...(system ? [{ role: "system" as const, content: system }] : []),
          { role: "user" as const, content: prompt ?? "" },
        ];
        const reply = await api.chat(
          {
            model,
            messages: conversation,
            ...(maxTokens !== undefined && { max_tokens: maxTokens }),
            ...(temperature !== undefined && { temperature }),
          },
          (extra as ToolExtra).signal,
        );
        const choice = reply.choices[0];
        return {
          text: choice?.message.content ?? "",
          model: reply.model,
          finishReason: choice?.finish_reason ?? "stop",
          usage: {
            promptTokens: reply.usage.prompt_tokens,
            completionTokens: reply.usage.completion_tokens,
          },
          cost: reply.cost,
          routing: reply.routing,
        };
      }),
  );
}
