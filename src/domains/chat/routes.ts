import { type Response, Router } from "express";
import type { AppContext } from "../../context.js";
import { AppError } from "../../errors.js";
import { keyScopeOf } from "../../http/auth.js";
import { mountOn, uncheckedBody } from "../../http/mount.js";
import { countOnlyWork, setRateLimitHeaders } from "../../http/rate-limit.js";
import { payOverHttp, respondPending } from "../../http/x402.js";
import { creditsToJson } from "../../lib/credits.js";
import type { NetworkScope } from "../accounts/caller.js";
import type { Hold } from "../ledger/service.js";
import { receiptJson } from "../payments/accept.js";
import type { ChatEvent } from "../providers/chat-types.js";
import { chatContracts } from "./contract.js";
import { payForChat } from "./paid.js";
import {
  type ChatCost,
  ChatFailed,
  type ChatOutcome,
  type ChatPlan,
  finishChat,
  holdForChat,
  type OpenChat,
  openChat,
  planChat,
  refundChat,
} from "./service.js";

const costJson = (cost: ChatCost) => ({
  quoted: creditsToJson(cost.quoted),
  charged: creditsToJson(cost.charged),
  refunded: creditsToJson(cost.refunded),
});

const usageJson = (outcome: ChatOutcome) => ({
  prompt_tokens: outcome.usage.promptTokens,
  completion_tokens: outcome.usage.completionTokens,
  total_tokens: outcome.usage.promptTokens + outcome.usage.completionTokens,
  cost: creditsToJson(outcome.cost.charged),
});

/** Writes a reply as OpenAI's `chat.completion.chunk` events, and settles it. */
async function streamReply(
  ctx: AppContext,
  res: Response,
  plan: ChatPlan,
  hold: Hold,
  open: OpenChat,
  options: { includeUsage: boolean; extra: (cost: ChatCost) => Record<string, unknown> },
) {
  const base = {
    id: plan.chatId,
    object: "chat.completion.chunk",
    created: Math.floor(Date.now() / 1000),
    model: plan.model.id,
    system_fingerprint: null,
  };
  const usageField = options.includeUsage ? { usage: null } : {};
  const send = (data: unknown) => {
    if (!res.destroyed && !res.writableEnded) res.write(`data: ${JSON.stringify(data)}\n\n`);
  };
  const choice = (delta: Record<string, unknown>, finishReason: string | null) => ({
    ...base,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
    ...usageField,
  });
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache, no-transform",
    connection: "keep-alive",
    "x-accel-buffering": "no",
  });
  // The first chunk names the role, as OpenAI's do, and says which channel serves the reply.
  send({ ...choice({ role: "assistant", content: "" }, null), routing: open.routing });
  const onEvent = (event: ChatEvent) => {
    if (event.type === "delta") send(choice({ content: event.text }, null));
    else if (event.type === "finish") send(choice({}, event.reason));
  };
  const outcome = await finishChat(ctx, hold, plan, open, onEvent);
  if (outcome.cut) {
    // What OpenAI sends when a stream fails after it began; its SDK raises it as an APIError.
    send({
      error: {
        message: `${outcome.cut.message} The reply was cut after ${outcome.usage.completionTokens} tokens, which were charged.`,
        type: "server_error",
        code: "completion_failed",
        usage: usageJson(outcome),
        cost: costJson(outcome.cost),
      },
    });
  } else if (options.includeUsage) {
    send({
      ...base,
      choices: [],
      usage: usageJson(outcome),
      cost: costJson(outcome.cost),
      ...options.extra(outcome.cost),
    });
  }
  if (!res.destroyed && !res.writableEnded) res.end("data: [DONE]\n\n");
  return outcome;
}

/** POST /v1/chat/completions: OpenAI's chat completions, billed by usage (see service.ts). */
export function chatRoutes(ctx: AppContext): Router {
  const router = Router();
  mountOn(router, ctx)(
    chatContracts.createChatCompletion,
    async ({ ctx, caller, body, req, res }) => {
      const plan = planChat(body);
      let scope: NetworkScope;
      let hold: Hold;
      let extra = (_cost: ChatCost): Record<string, unknown> => ({});
      if (!caller) {
        const outcome = await payOverHttp(ctx, req, res, (paid) =>
          payForChat(ctx, paid, plan, (decision) => {
            setRateLimitHeaders(res, decision);
            countOnlyWork(ctx, res, decision);
          }),
        );
        if (outcome.status === "pending") {
          respondPending(res, outcome.payment);
          return undefined;
        }
        ({ scope, hold } = outcome.result);
        const receipt = receiptJson(outcome.payment);
        // The wallet paid the hold; what the reply left stays on its account as credits.
        extra = (cost) => ({
          payment: {
            ...receipt,
            credits: creditsToJson(cost.quoted),
            keptAsCredits: creditsToJson(cost.refunded),
          },
        });
      } else {
        scope = keyScopeOf(caller);
        hold = await holdForChat(ctx, scope, plan);
      }

      // A client that leaves stops the upstream call; it pays for what was generated by then.
      const gone = new AbortController();
      res.on("close", () => {
        if (!res.writableFinished) gone.abort(new Error("The client disconnected."));
      });
      let open: OpenChat;
      try {
        open = await openChat(ctx, ctx.generations.routing, scope, plan, {
          whole: !body.stream,
          signal: gone.signal,
        });
      } catch (err) {
        await refundChat(ctx, hold);
        if (!(err instanceof ChatFailed)) throw err;
        throw new AppError(
          "completion_failed",
          `The reply failed before it began: ${err.error.message} Its credits were refunded.`,
          { reason: err.error.code, routing: err.routing },
        );
      }

      if (body.stream) {
        await streamReply(ctx, res, plan, hold, open, {
          includeUsage: body.stream_options?.include_usage === true,
          extra,
        });
        return undefined;
      }
      const outcome = await finishChat(ctx, hold, plan, open);
      return {
        status: 200,
        body: uncheckedBody({
          id: plan.chatId,
          object: "chat.completion",
          created: Math.floor(Date.now() / 1000),
          model: plan.model.id,
          choices: [
            {
              index: 0,
              message: { role: "assistant", content: outcome.text, refusal: null },
              finish_reason: outcome.finishReason ?? "stop",
              logprobs: null,
            },
          ],
          usage: usageJson(outcome),
          cost: costJson(outcome.cost),
          routing: open.routing,
          ...extra(outcome.cost),
        }),
      };
    },
  );
  return router;
}
