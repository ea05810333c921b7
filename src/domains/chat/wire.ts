import { creditsToJson } from "../../lib/credits.js";
import type { Routing } from "../routing/router.js";
import type { ChatCost, ChatOutcome, ChatPlan } from "./service.js";

/** A reply's money and usage as the API shows them (credits, at most 4 decimals). */

export const costJson = (cost: ChatCost) => ({
  quoted: creditsToJson(cost.quoted),
  charged: creditsToJson(cost.charged),
  refunded: creditsToJson(cost.refunded),
});

export const usageJson = (outcome: ChatOutcome) => ({
  prompt_tokens: outcome.usage.promptTokens,
  completion_tokens: outcome.usage.completionTokens,
  total_tokens: outcome.usage.promptTokens + outcome.usage.completionTokens,
  cost: creditsToJson(outcome.cost.charged),
});

/** A whole reply as OpenAI's `chat.completion`, with what it cost and who served it. */
export const completionJson = (plan: ChatPlan, outcome: ChatOutcome, routing: Routing) => ({
  id: plan.chatId,
  object: "chat.completion" as const,
  created: Math.floor(Date.now() / 1000),
  model: plan.model.id,
  choices: [
    {
      index: 0,
      message: { role: "assistant" as const, content: outcome.text, refusal: null },
      finish_reason: outcome.finishReason ?? "stop",
      logprobs: null,
    },
  ],
  usage: usageJson(outcome),
  cost: costJson(outcome.cost),
  routing,
});
