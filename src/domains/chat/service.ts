import type { AppContext, ServiceContext } from "../../context.js";
import { AppError } from "../../errors.js";
import { formatCredits } from "../../lib/credits.js";
import { newId } from "../../lib/ids.js";
import type { NetworkScope } from "../accounts/caller.js";
import { findAudioModel } from "../catalog/audio-models.js";
import { findModel } from "../catalog/models.js";
import {
  affordableReplyTokens,
  chatCost,
  findTextModel,
  replyTokenLimit,
  type TextModel,
} from "../catalog/text-models.js";
import { getBalance, type Hold, placeNewHold, postHold, voidHold } from "../ledger/service.js";
import { chatProviders } from "../providers/chat-providers.js";
import {
  type ChatEvent,
  type ChatTask,
  type FinishReason,
  StreamBrokenError,
  type TokenUsage,
} from "../providers/chat-types.js";
import { ProviderError } from "../providers/types.js";
import type { Channel } from "../routing/channels.js";
import { classify, type Routing, type RoutingSettings, routeCall } from "../routing/router.js";
import type { ChatRequest } from "./contract.js";
import { hasImages } from "./messages.js";
import { countPromptTokens, countTextTokens } from "./tokens.js";

/**
 * Chat billed by usage (issue 20, item 3), on the ledger's two-phase spending: a hold for the
 * most the reply can cost, placed before the call; settled once, to the usage, when it ends.
 * - hold = prompt tokens (counted here, offline) × input rate + the reply's limit × output rate;
 * - the reply's end posts its cost (the upstream's reported usage, else our count of its text),
 *   never more than the hold, and releases the rest; a failure before any text voids it;
 * - a stream that breaks or a client that leaves after text was sent is charged for the text
 *   generated until then (counted here, since no upstream reports usage for a cut stream);
 * - before the first token a failure may fail over to the next channel; after it the reply is
 *   committed to its channel (StreamBrokenError ends it there). A plain (non-streamed) reply
 *   has sent the caller nothing until it is whole, so it may fail over at any point.
 * A process that dies mid-reply leaves its hold to the expiry sweeper, which voids it: the
 * caller is then charged nothing.
 */

export interface ChatPlan {
  chatId: string;
  model: TextModel;
  promptTokens: number;
  /** The reply's token limit: max_tokens, capped at the model's maximum and its context. */
  replyTokens: number;
  /** Ledger units held for the call. */
  hold: bigint;
  task: Omit<ChatTask, "upstreamModel">;
}

export interface ChatCost {
  quoted: bigint;
  charged: bigint;
  refunded: bigint;
}

/** Validates and prices a request before anything is held or paid: a pure function of the body. */
export function planChat(request: ChatRequest): ChatPlan {
  const model = findTextModel(request.model);
  if (!model) {
    if (findModel(request.model) || findAudioModel(request.model)) {
      throw new AppError(
        "model_media_mismatch",
        `${request.model} is not a text model. GET /v1/models lists the text models (type "text").`,
        { field: "model" },
      );
    }
    throw new AppError(
      "invalid_model",
      `Unknown model ${request.model}. GET /v1/models lists them.`,
      { field: "model" },
    );
  }
  if (!model.imageInput && hasImages(request.messages)) {
    throw new AppError("model_media_mismatch", `${model.id} takes no images in its messages.`, {
      field: "messages",
    });
  }
  const promptTokens = countPromptTokens(request.messages);
  if (promptTokens >= model.contextLength) {
    throw new AppError(
      "context_length_exceeded",
      `The messages are ${promptTokens} tokens; ${model.id} reads at most ${model.contextLength} with its reply.`,
      { field: "messages", promptTokens, contextLength: model.contextLength },
    );
  }
  const asked = request.max_completion_tokens ?? request.max_tokens;
  const replyTokens = Math.min(replyTokenLimit(model, asked), model.contextLength - promptTokens);
  return {
    chatId: newId("chat"),
    model,
    promptTokens,
    replyTokens,
    hold: chatCost(model, { promptTokens, completionTokens: replyTokens }),
    task: {
      messages: request.messages,
      maxTokens: replyTokens,
      temperature: request.temperature,
      topP: request.top_p,
      stop: request.stop,
      seed: request.seed,
    },
  };
}

/** The hold's terms, for placeHold here and for a paid call's transaction (paid.ts). */
export function chatHoldInput(ctx: ServiceContext, scope: NetworkScope, plan: ChatPlan) {
  return {
    id: plan.chatId,
    network: scope.network,
    ownerId: scope.accountId,
    amount: plan.hold,
    kind: "chat",
    reference: plan.chatId,
    // The reply's deadline (chatDeadlineMs) ends well before the hold's, so the settle comes first.
    expiresAt: new Date(ctx.clock().getTime() + ctx.config.generation.timeoutSeconds * 1000),
  };
}

/**
 * Holds the most the reply can cost. A balance short of it is refused with 402 saying how long
 * a reply it affords, so the caller can ask again with that max_tokens.
 */
export async function holdForChat(
  ctx: ServiceContext,
  scope: NetworkScope,
  plan: ChatPlan,
): Promise<Hold> {
  try {
    return await placeNewHold(ctx, chatHoldInput(ctx, scope, plan));
  } catch (err) {
    if (!(err instanceof AppError) || err.code !== "insufficient_credits") throw err;
    const { creditBalance } = await getBalance(ctx, scope.accountId, scope.network);
    const affordable = Math.min(
      affordableReplyTokens(plan.model, plan.promptTokens, creditBalance),
      plan.replyTokens,
    );
    const need = plan.hold;
    throw new AppError(
      "insufficient_credits",
      affordable > 0
        ? `Insufficient credits. Need ${formatCredits(need)} for a reply of up to ${plan.replyTokens} tokens, have ${formatCredits(creditBalance)}: that affords max_tokens ${affordable}.`
        : `Insufficient credits. Need ${formatCredits(need)}, have ${formatCredits(creditBalance)}: not enough for the prompt itself.`,
      { ...err.details, affordableTokens: affordable, promptTokens: plan.promptTokens },
    );
  }
}

/** The longest a reply may run: it must settle before its hold expires. */
const chatDeadlineMs = (ctx: ServiceContext) =>
  Math.max(10_000, ctx.config.generation.timeoutSeconds * 1000 - 60_000);

/**
 * An abort signal for one upstream call: the caller's (a disconnect), the reply's deadline, and
 * routing's per-call time limit until `detach` (called once text flows: from then on only a
 * stalled stream, the adapter's idle timeout, ends it).
 */
function callSignal(ctx: ServiceContext, caller: AbortSignal, opening: AbortSignal) {
  const controller = new AbortController();
  const abort = (signal: AbortSignal) => () => controller.abort(signal.reason);
  const deadline = AbortSignal.timeout(chatDeadlineMs(ctx));
  const sources = [caller, deadline, opening];
  const listeners = sources.map((s) => {
    const listener = abort(s);
    if (s.aborted) listener();
    else s.addEventListener("abort", listener, { once: true });
    return listener;
  });
  return {
    signal: controller.signal,
    detach: () => opening.removeEventListener("abort", listeners[2] as () => void),
  };
}

export interface OpenChat {
  routing: Routing;
  /** Every event of the reply, the ones read while opening it first. */
  events: AsyncIterable<ChatEvent>;
}

async function* replay(first: ChatEvent[], rest: AsyncIterator<ChatEvent> | null) {
  yield* first;
  for (;;) {
    if (!rest) return;
    const next = await rest.next();
    if (next.done) return;
    yield next.value;
  }
}

export class ChatFailed extends Error {
  constructor(
    readonly error: ProviderError,
    readonly routing: Routing,
  ) {
    super(error.message);
  }
}

/**
 * Routes the reply over the model's channels up to its first text (or its end, for a reply
 * with none): what fails before it fails over. `whole` reads the reply to its end inside the
 * routing too (a plain answer: nothing reached the caller yet, so any failure may fail over).
 */
export async function openChat(
  ctx: ServiceContext,
  routing: { channels: Parameters<typeof routeCall>[1]["channels"]; settings: RoutingSettings },
  scope: NetworkScope,
  plan: ChatPlan,
  options: { whole: boolean; signal: AbortSignal },
): Promise<OpenChat> {
  const idleTimeoutMs = ctx.config.generation.upstreamTimeoutMs;
  const result = await routeCall(ctx, routing, {
    model: plan.model.id,
    network: scope.network,
    serves: (channel) => chatProviders[channel.provider] !== undefined,
    call: async (channel, upstreamModel, opening) => {
      try {
        return await readOpening(channel, upstreamModel, opening);
      } catch (err) {
        // A caller gone before the reply began ends the routing: no channel is to blame.
        if (options.signal.aborted) {
          throw new ProviderError("caller", "connection_error", "The client disconnected.");
        }
        throw err;
      }
    },
  });
  if (!result.ok) throw new ChatFailed(result.error, result.routing);
  const { first, rest } = result.value;
  return { routing: result.routing, events: replay(first, rest) };

  async function readOpening(channel: Channel, upstreamModel: string, opening: AbortSignal) {
    const provider = chatProviders[channel.provider];
    if (!provider) throw new Error(`no chat adapter for ${channel.provider}`);
    const { signal, detach } = callSignal(ctx, options.signal, opening);
    const events = provider
      .complete({ ...plan.task, upstreamModel }, channel, signal, { idleTimeoutMs })
      [Symbol.asyncIterator]();
    const first: ChatEvent[] = [];
    for (;;) {
      const next = await events.next();
      if (next.done) break;
      first.push(next.value);
      if (next.value.type !== "usage") break;
    }
    detach();
    if (!options.whole) return { first, rest: events as AsyncIterator<ChatEvent> | null };
    for (;;) {
      const next = await events.next();
      if (next.done) break;
      first.push(next.value);
    }
    return { first, rest: null };
  }
}

/**
 * Opens the reply on the context's routing; a reply that cannot begin is refunded in full and
 * refused with 502 completion_failed (its last upstream failure as `reason`).
 */
export async function startChat(
  ctx: AppContext,
  scope: NetworkScope,
  plan: ChatPlan,
  hold: Hold,
  options: { whole: boolean; signal: AbortSignal },
): Promise<OpenChat> {
  try {
    return await openChat(ctx, ctx.generations.routing, scope, plan, options);
  } catch (err) {
    await refundChat(ctx, hold);
    if (!(err instanceof ChatFailed)) throw err;
    throw new AppError(
      "completion_failed",
      `The reply failed before it began: ${err.error.message} Its credits were refunded.`,
      { reason: err.error.code, routing: err.routing },
    );
  }
}

/**
 * A whole reply for an API key's account, held, run and settled: the plain answer, as the MCP
 * tool and any door that does not stream want it.
 */
export async function completeChat(
  ctx: AppContext,
  scope: NetworkScope,
  request: ChatRequest,
  signal: AbortSignal,
): Promise<{ plan: ChatPlan; outcome: ChatOutcome; routing: Routing }> {
  const plan = planChat(request);
  const hold = await holdForChat(ctx, scope, plan);
  const open = await startChat(ctx, scope, plan, hold, { whole: true, signal });
  return { plan, outcome: await finishChat(ctx, hold, plan, open), routing: open.routing };
}

/** What a reply came to, as it is settled. */
export interface ChatOutcome {
  text: string;
  finishReason: FinishReason | null;
  usage: TokenUsage;
  cost: ChatCost;
  /** Set when the reply broke or the caller left before its end. */
  cut: ProviderError | null;
}

/**
 * Posts a reply's cost from its hold (never more than the hold), once: the resolution's id is
 * the hold's, so a second settle of the same reply is a replay, never a second charge.
 */
export async function settleChat(
  ctx: ServiceContext,
  hold: Hold,
  plan: ChatPlan,
  usage: TokenUsage,
  routing: Routing,
): Promise<ChatCost> {
  const cost = chatCost(plan.model, usage);
  const charged = cost < hold.amount ? cost : hold.amount;
  await postHold(ctx, {
    holdId: hold.id,
    id: `${hold.id}/settle`,
    amount: charged,
    metadata: {
      model: plan.model.id,
      promptTokens: usage.promptTokens,
      completionTokens: usage.completionTokens,
      upstream: routing.upstream,
    },
  });
  return { quoted: hold.amount, charged, refunded: hold.amount - charged };
}

/** A reply that never started: everything held goes back. */
export async function refundChat(ctx: ServiceContext, hold: Hold): Promise<ChatCost> {
  await voidHold(ctx, { holdId: hold.id, id: `${hold.id}/void` });
  return { quoted: hold.amount, charged: 0n, refunded: hold.amount };
}

/**
 * Reads an opened reply to its end, handing each event to `onEvent` (a stream writes it out),
 * and settles it: the upstream's usage when the reply ended and reported one, else our count of
 * the prompt and of the text that was generated.
 */
export async function finishChat(
  ctx: ServiceContext,
  hold: Hold,
  plan: ChatPlan,
  open: OpenChat,
  onEvent: (event: ChatEvent) => void = () => {},
): Promise<ChatOutcome> {
  let text = "";
  let finishReason: FinishReason | null = null;
  let reported: TokenUsage | undefined;
  let cut: ProviderError | null = null;
  try {
    for await (const event of open.events) {
      if (event.type === "delta") text += event.text;
      else if (event.type === "finish") finishReason = event.reason;
      else
        reported = { promptTokens: event.promptTokens, completionTokens: event.completionTokens };
      onEvent(event);
    }
  } catch (err) {
    cut = err instanceof StreamBrokenError ? err : new StreamBrokenError(classify(err), text);
  }
  const usage: TokenUsage =
    !cut && reported
      ? reported
      : { promptTokens: plan.promptTokens, completionTokens: text ? countTextTokens(text) : 0 };
  const cost = await settleWithRetry(ctx, hold, plan, usage, open.routing);
  return { text, finishReason, usage, cost, cut };
}

/**
 * A settle that fails (the database restarting) is tried again a few times; one that never
 * lands leaves the hold to the sweeper, which voids it: the caller is never charged twice, at
 * worst not at all.
 */
async function settleWithRetry(
  ctx: ServiceContext,
  hold: Hold,
  plan: ChatPlan,
  usage: TokenUsage,
  routing: Routing,
): Promise<ChatCost> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await settleChat(ctx, hold, plan, usage, routing);
    } catch (err) {
      if (attempt >= 4) throw err;
      ctx.logger.warn({ err, chatId: plan.chatId }, "chat settle failed; trying again");
      await new Promise((resolve) => setTimeout(resolve, 200 * 2 ** attempt));
    }
  }
}
