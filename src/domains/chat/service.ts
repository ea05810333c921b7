import type { AppContext, ServiceContext } from "../../context.js";
import { AppError } from "../../errors.js";
import { formatCredits } from "../../lib/credits.js";
import { newId } from "../../lib/ids.js";
import type { Network } from "../../lib/network.js";
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
import { checkPreferences, type RoutingPreferences } from "../routing/preferences.js";
import { classify, type Routing, type RoutingSettings, routeCall } from "../routing/router.js";
import type { ChatRequest } from "./contract.js";
import { hasImages, textOf } from "./messages.js";
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

/** The most text one request's messages may carry, in characters. */
export const MAX_CHAT_CHARACTERS = 500_000;

export interface ChatPlan {
  chatId: string;
  model: TextModel;
  promptTokens: number;
  /** The reply's token limit: max_tokens, capped at the model's maximum and its context. */
  replyTokens: number;
  /** Ledger units held for the call. */
  hold: bigint;
  task: Omit<ChatTask, "upstreamModel">;
  routing: RoutingPreferences | undefined;
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
  // Counted only within a bound: what no context holds is refused before any tokenizing.
  const characters = request.messages.reduce((sum, m) => sum + textOf(m).length, 0);
  if (characters > MAX_CHAT_CHARACTERS) {
    throw new AppError(
      "prompt_too_long",
      `The messages have ${characters} characters; at most ${MAX_CHAT_CHARACTERS} are taken.`,
      { field: "messages" },
    );
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
    routing: request.routing,
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

const servesChat = (channel: Channel) => chatProviders[channel.provider] !== undefined;

/** Refuses routing preferences the network's chat channels cannot honour: before any hold or payment. */
export function checkChatRouting(ctx: AppContext, plan: ChatPlan, network: Network): void {
  checkPreferences(
    ctx.generations.routing.channels,
    [plan.model.id],
    network,
    plan.routing,
    servesChat,
  );
}

/** The hold's terms, for placeHold here and for a paid call's transaction (paid.ts). */
export function chatHoldInput(ctx: ServiceContext, scope: NetworkScope, plan: ChatPlan) {
  return {
    id: plan.chatId,
    network: scope.network,
    ownerId: scope.accountId,
    apiKeyId: scope.apiKeyId,
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
  ctx: AppContext,
  scope: NetworkScope,
  plan: ChatPlan,
): Promise<Hold> {
  checkChatRouting(ctx, plan, scope.network);
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

/** A reply must end this long before its hold expires, so its settle comes first. */
const SETTLE_MARGIN_MS = 60_000;

/** When a reply held by `hold` must have ended: the same for every attempt at it. */
export const replyDeadline = (hold: Hold) => new Date(hold.expiresAt.getTime() - SETTLE_MARGIN_MS);

/**
 * An abort signal for one upstream call: the caller's (a disconnect), the reply's deadline,
 * and routing's per-call time limit until `detach` (called once text flows: from then on only
 * a stalled stream, the adapter's idle timeout, ends it). `dispose` removes every listener and
 * the timer, so nothing of the call outlives it.
 */
function callSignal(caller: AbortSignal, opening: AbortSignal, deadline: Date) {
  const controller = new AbortController();
  const listen = (source: AbortSignal) => {
    const listener = () => controller.abort(source.reason);
    if (source.aborted) listener();
    else source.addEventListener("abort", listener, { once: true });
    return () => source.removeEventListener("abort", listener);
  };
  const unlisten = [listen(caller), listen(opening)];
  const timer = setTimeout(
    () => controller.abort(new DOMException("The reply ran past its deadline.", "TimeoutError")),
    Math.max(0, deadline.getTime() - Date.now()),
  );
  timer.unref();
  return {
    signal: controller.signal,
    detach: () => unlisten[1]?.(),
    dispose: () => {
      clearTimeout(timer);
      for (const remove of unlisten) remove();
    },
  };
}

export interface OpenChat {
  routing: Routing;
  /** Every event of the reply, the ones read while opening it first. */
  events: AsyncIterable<ChatEvent>;
  /** Releases the call's listeners and timer (finishChat calls it when the reply ends). */
  dispose: () => void;
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
  options: { whole: boolean; signal: AbortSignal; deadline: Date },
): Promise<OpenChat> {
  const idleTimeoutMs = ctx.config.generation.upstreamTimeoutMs;
  const result = await routeCall(ctx, routing, {
    model: plan.model.id,
    network: scope.network,
    preferences: plan.routing,
    serves: servesChat,
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
  const { first, rest, dispose } = result.value;
  return { routing: result.routing, events: replay(first, rest), dispose };

  async function readOpening(channel: Channel, upstreamModel: string, opening: AbortSignal) {
    const provider = chatProviders[channel.provider];
    if (!provider) throw new Error(`no chat adapter for ${channel.provider}`);
    const { signal, detach, dispose } = callSignal(options.signal, opening, options.deadline);
    try {
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
      if (!options.whole) {
        return { first, rest: events as AsyncIterator<ChatEvent> | null, dispose };
      }
      for (;;) {
        const next = await events.next();
        if (next.done) break;
        first.push(next.value);
      }
      dispose();
      return { first, rest: null, dispose };
    } catch (err) {
      dispose();
      throw err;
    }
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
    return await openChat(ctx, ctx.generations.routing, scope, plan, {
      ...options,
      deadline: replyDeadline(hold),
    });
  } catch (err) {
    await withRetry(ctx, plan, "refund", () => refundChat(ctx, hold));
    if (!(err instanceof ChatFailed)) throw err;
    // The upstream's own words (which may quote our keys or its internals) stay in the log.
    ctx.logger.warn({ chatId: plan.chatId, err: err.error }, "chat failed before its first token");
    throw new AppError(
      "completion_failed",
      `The reply failed before it began (${err.error.code}); its credits were refunded.`,
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
    ctx.logger.warn({ chatId: plan.chatId, err: cut.cause }, "chat cut after its first token");
  } finally {
    open.dispose();
  }
  // A reply that ended cleanly without saying why ended as OpenAI's would: "stop".
  if (!cut && !finishReason) {
    finishReason = "stop";
    onEvent({ type: "finish", reason: "stop" });
  }
  const usage: TokenUsage =
    !cut && reported
      ? reported
      : { promptTokens: plan.promptTokens, completionTokens: text ? countTextTokens(text) : 0 };
  const cost = await withRetry(ctx, plan, "settle", () =>
    settleChat(ctx, hold, plan, usage, open.routing),
  );
  return { text, finishReason, usage, cost, cut };
}

/**
 * A settle or refund that fails on the database (restarting) is tried again a few times; one
 * that never lands leaves the hold to the sweeper, which voids it: the caller is never charged
 * twice, at worst not at all. The ledger's own refusals (an expired hold) are not retried.
 */
async function withRetry<T>(
  ctx: ServiceContext,
  plan: ChatPlan,
  what: string,
  work: () => Promise<T>,
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await work();
    } catch (err) {
      if (err instanceof AppError || attempt >= 4) throw err;
      ctx.logger.warn({ err, chatId: plan.chatId }, `chat ${what} failed; trying again`);
      await new Promise((resolve) => setTimeout(resolve, 200 * 2 ** attempt));
    }
  }
}
