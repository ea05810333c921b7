import { sql } from "drizzle-orm";
import OpenAI from "openai";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { ChatMessage } from "../../src/domains/chat/messages.js";
import { countPromptTokens, countTextTokens } from "../../src/domains/chat/tokens.js";
import { systemLedgerAccount, userLedgerAccount } from "../../src/domains/ledger/accounts.js";
import { transfer } from "../../src/domains/ledger/service.js";
import { creditsFromJson } from "../../src/lib/credits.js";
import { createFundedCaller, startTestApp, type TestApp } from "../helpers/app.js";
import { expectMoneyInvariants } from "../helpers/ledger.js";
import { until } from "../helpers/receiver.js";
import {
  clearFaults,
  type Simulator,
  simulatedChannel,
  startSimulator,
} from "../simulator/upstream.js";

/**
 * POST /v1/chat/completions through the official openai SDK, against the simulator speaking
 * OpenAI chat completions (primary) and Anthropic Messages (backup), with stream faults.
 * gpt-5.4-mini is priced at 525,000 units per million prompt tokens and 3,150,000 per million
 * reply tokens (70% of $0.75 / $4.50): the expected charges below are written from those rates.
 */

const MODEL = "gpt-5.4-mini";
const cost = (prompt: number, completion: number) =>
  BigInt(Math.ceil((prompt * 525_000 + completion * 3_150_000) / 1_000_000));

let sim: Simulator;
let app: TestApp;
beforeAll(async () => {
  sim = await startSimulator();
  app = await startTestApp({
    env: {
      LOG_LEVEL: "error",
      ROUTING_BACKOFF_MS: "1",
      ROUTING_MAX_RETRIES: "0",
      CHANNELS: JSON.stringify([
        simulatedChannel(sim, "openai", { [MODEL]: "gpt-5.4-mini-2026" }),
        simulatedChannel(sim, "anthropic", { [MODEL]: "claude-haiku-4-5" }, { priority: 1 }),
        {
          id: "sandbox",
          provider: "sandbox",
          networks: ["test"],
          models: { "gpt-oss-120b": "gpt-oss-120b", "nano-banana-2": "nano-banana-2" },
          priority: 0,
        },
      ]),
    },
  });
});
afterAll(async () => {
  await app?.close();
  await sim?.close();
});
beforeEach(() => {
  clearFaults(sim);
  sim.calls.length = 0;
});
afterEach(() => expectMoneyInvariants(app.ctx));

async function client(credits = 100n) {
  const caller = await createFundedCaller(app.ctx, credits, "test");
  const balance = async () => {
    const body = (await app.call("getBalance", { token: caller.key })).body;
    return {
      credits: creditsFromJson(body.creditBalance) as bigint,
      held: creditsFromJson(body.heldCredits) as bigint,
    };
  };
  return {
    ...caller,
    balance,
    openai: new OpenAI({ apiKey: caller.key, baseURL: `${app.url}/v1`, maxRetries: 0 }),
  };
}

const question = "name three lighthouses on the atlantic coast";
const messages: ChatMessage[] = [{ role: "user", content: question }];
/** The simulator's reply and its reported usage for `messages` (see test/simulator/text-audio.ts). */
const simReply = `Simulated reply to: ${question}`;
const simUsage = { prompt: question.split(" ").length + 3, completion: simReply.split(" ").length };

/** The units a call moved: what the balance lost once nothing is held. */
async function charged(c: Awaited<ReturnType<typeof client>>, before: bigint) {
  const after = await until("nothing held", async () => {
    const b = await c.balance();
    return b.held === 0n ? b : undefined;
  });
  return before - after.credits;
}

type Extra = {
  usage: { cost: number };
  cost: { quoted: number; charged: number; refunded: number };
  routing: { upstream: string; failover: boolean };
};

describe("POST /v1/chat/completions, plain", () => {
  it("answers a chat.completion charged exactly the upstream's reported usage", async () => {
    const c = await client();
    const before = (await c.balance()).credits;
    const reply = await c.openai.chat.completions.create({
      model: MODEL,
      messages,
      max_tokens: 500,
    });
    expect(reply.object).toBe("chat.completion");
    expect(reply.choices[0]?.message.content).toBe(simReply);
    expect(reply.choices[0]?.finish_reason).toBe("stop");
    expect(reply.usage).toMatchObject({
      prompt_tokens: simUsage.prompt,
      completion_tokens: simUsage.completion,
      total_tokens: simUsage.prompt + simUsage.completion,
    });
    const want = cost(simUsage.prompt, simUsage.completion);
    const extra = reply as unknown as Extra;
    expect(creditsFromJson(extra.usage.cost)).toBe(want);
    expect(creditsFromJson(extra.cost.charged)).toBe(want);
    // The hold was the prompt as we count it and the 500-token reply limit.
    expect(creditsFromJson(extra.cost.quoted)).toBe(cost(countPromptTokens(messages), 500));
    expect(creditsFromJson(extra.cost.refunded)).toBe(
      (creditsFromJson(extra.cost.quoted) as bigint) - want,
    );
    expect(extra.routing).toMatchObject({ upstream: "openai-sim", failover: false });
    expect(await charged(c, before)).toBe(want);
    // The upstream was asked for the reply limit the hold paid for.
    expect(sim.calls[0]?.input?.max_completion_tokens).toBe(500);
  });

  it("fails over to the Anthropic channel when OpenAI fails, and a failure everywhere refunds in full", async () => {
    const c = await client();
    const before = (await c.balance()).credits;
    sim.byApi.openai = { script: ["error500"] };
    const reply = await c.openai.chat.completions.create({ model: MODEL, messages });
    const extra = reply as unknown as Extra;
    expect(extra.routing).toMatchObject({ upstream: "anthropic-sim", failover: true });
    expect(reply.choices[0]?.message.content).toBe(simReply);
    expect(await charged(c, before)).toBe(cost(simUsage.prompt, simUsage.completion));

    const middle = (await c.balance()).credits;
    sim.byApi.openai = { script: [], always: "error500" };
    sim.byApi.anthropic = { script: [], always: "error500" };
    const failed = await c.openai.chat.completions
      .create({ model: MODEL, messages })
      .catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(OpenAI.APIError);
    expect((failed as InstanceType<typeof OpenAI.APIError>).status).toBe(502);
    expect((failed as { error: { code: string } }).error.code).toBe("completion_failed");
    expect(await charged(c, middle)).toBe(0n);
  });

  it("a plain reply whose stream breaks midway fails over: nothing was sent yet", async () => {
    const c = await client();
    const before = (await c.balance()).credits;
    sim.byApi.openai = { script: ["streamError"] };
    const reply = await c.openai.chat.completions.create({ model: MODEL, messages });
    expect((reply as unknown as Extra).routing.upstream).toBe("anthropic-sim");
    expect(await charged(c, before)).toBe(cost(simUsage.prompt, simUsage.completion));
  });
});

describe("POST /v1/chat/completions, streamed", () => {
  it("streams chat.completion.chunk events and a usage chunk, charged exactly that usage", async () => {
    const c = await client();
    const before = (await c.balance()).credits;
    const stream = await c.openai.chat.completions.create({
      model: MODEL,
      messages,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const chunk of stream) {
      chunks.push(chunk);
      text += chunk.choices[0]?.delta.content ?? "";
    }
    expect(text).toBe(simReply);
    expect(chunks.every((ch) => ch.object === "chat.completion.chunk")).toBe(true);
    expect(chunks[0]?.choices[0]?.delta.role).toBe("assistant");
    expect(chunks.at(-2)?.choices[0]?.finish_reason).toBe("stop");
    const last = chunks.at(-1) as unknown as Extra & { choices: unknown[] };
    expect(last.choices).toEqual([]);
    const want = cost(simUsage.prompt, simUsage.completion);
    expect(creditsFromJson(last.usage.cost)).toBe(want);
    expect(await charged(c, before)).toBe(want);
  });

  it("fails over before the first token; after it the reply stays on its channel and is charged what was sent", async () => {
    const c = await client();
    let before = (await c.balance()).credits;
    sim.byApi.openai = { script: ["streamErrorFirst"] };
    let text = "";
    for await (const chunk of await c.openai.chat.completions.create({
      model: MODEL,
      messages,
      stream: true,
    })) {
      text += chunk.choices[0]?.delta.content ?? "";
    }
    expect(text).toBe(simReply);
    expect(sim.calls.map((call) => call.api)).toEqual(["openai", "anthropic"]);
    // No usage asked for: the reply is charged from Anthropic's reported usage all the same.
    expect(await charged(c, before)).toBe(cost(simUsage.prompt, simUsage.completion));

    sim.calls.length = 0;
    before = (await c.balance()).credits;
    sim.byApi.openai = { script: ["streamError"] };
    text = "";
    const error = await (async () => {
      for await (const chunk of await c.openai.chat.completions.create({
        model: MODEL,
        messages,
        stream: true,
      })) {
        text += chunk.choices[0]?.delta.content ?? "";
      }
    })().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    // Two words came before the fault; no second channel was asked.
    expect(text).toBe("Simulated reply");
    expect(sim.calls.map((call) => call.api)).toEqual(["openai"]);
    expect(await charged(c, before)).toBe(
      cost(countPromptTokens(messages), countTextTokens("Simulated reply")),
    );
  });

  it("a client that disconnects mid-stream pays for the text generated until then", async () => {
    const c = await client();
    const before = (await c.balance()).credits;
    // Two words, then the upstream goes silent: the client gives up and hangs up.
    sim.byApi.openai = { script: ["streamHang"] };
    const controller = new AbortController();
    let text = "";
    const stream = await c.openai.chat.completions.create(
      { model: MODEL, messages, stream: true },
      { signal: controller.signal },
    );
    await (async () => {
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta.content ?? "";
        if (text === "Simulated reply") controller.abort();
      }
    })().catch(() => undefined);
    expect(text).toBe("Simulated reply");
    expect(await charged(c, before)).toBe(
      cost(countPromptTokens(messages), countTextTokens("Simulated reply")),
    );
  });
});

describe("billing before the call", () => {
  it("refuses with 402 saying how many reply tokens the balance affords, and that many then pass", async () => {
    // 1 credit = 10,000 units: the prompt costs a few units, each reply token 3.15.
    const c = await client(1n);
    const refused = await c.openai.chat.completions
      .create({ model: MODEL, messages, max_tokens: 100_000 })
      .catch((e: unknown) => e as InstanceType<typeof OpenAI.APIError>);
    expect((refused as InstanceType<typeof OpenAI.APIError>).status).toBe(402);
    const details = (refused as unknown as { error: { code: string; affordableTokens: number } })
      .error;
    expect(details.code).toBe("insufficient_credits");
    const prompt = countPromptTokens(messages);
    const affordable = Math.floor((10_000 * 1_000_000 - prompt * 525_000) / 3_150_000);
    expect(details.affordableTokens).toBe(affordable);
    expect((refused as Error).message).toContain(`max_tokens ${affordable}`);
    const reply = await c.openai.chat.completions.create({
      model: MODEL,
      messages,
      max_tokens: affordable,
    });
    expect(reply.choices[0]?.message.content).toBe(simReply);
  });

  it("50 concurrent chats on a balance that holds 10 of their maximums: never negative, each settled once", async () => {
    const model = "gpt-oss-120b"; // sandbox: 27,300 / 126,000 units per million tokens
    const prompt = countPromptTokens(messages);
    const hold = BigInt(Math.ceil((prompt * 27_300 + 4_000 * 126_000) / 1_000_000));
    const c = await client(1n);
    // Down to exactly ten holds: the rest of the credit is spent away first.
    await transfer(app.ctx, {
      id: `spare-${c.account.id}`,
      network: "test",
      debit: userLedgerAccount(c.account.id, "test"),
      credit: systemLedgerAccount("test", "revenue"),
      amount: 10_000n - hold * 10n,
      kind: "spend",
    });
    expect((await c.balance()).credits).toBe(hold * 10n);
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        c.openai.chat.completions
          .create({ model, messages, max_tokens: 4_000, seed: i })
          .then((r) => ({ ok: true as const, charged: (r as unknown as Extra).cost.charged }))
          .catch((e: InstanceType<typeof OpenAI.APIError>) => ({
            ok: false as const,
            status: e.status,
          })),
      ),
    );
    const done = results.filter((r) => r.ok);
    expect(done.length).toBeGreaterThanOrEqual(10);
    for (const r of results) if (!r.ok) expect(r.status).toBe(402);
    const spent = done.reduce((sum, r) => sum + (creditsFromJson(r.charged) as bigint), 0n);
    const left = await c.balance();
    expect(left.held).toBe(0n);
    expect(left.credits).toBe(hold * 10n - spent);
    expect(left.credits).toBeGreaterThanOrEqual(0n);
    // One hold per accepted chat, each resolved once with one post.
    const { rows } = await app.ctx.db.execute<{ status: string; posts: number }>(sql`
      select h.status, (select count(*)::int from ledger_transfers t where t.hold_id = h.id and t.kind = 'hold_post') as posts
      from ledger_holds h where h.kind = 'chat' and h.account_id = ${userLedgerAccount(c.account.id, "test")}`);
    expect(rows).toHaveLength(done.length);
    expect(rows.every((r) => r.status === "posted" && r.posts === 1)).toBe(true);
  });
});

describe("refusals cost nothing", () => {
  it.each([
    ["an unknown model", { model: "gpt-9", messages }, 400, "invalid_model"],
    ["an image model", { model: "nano-banana-2", messages }, 400, "model_media_mismatch"],
    [
      "an image to a text-only model",
      {
        model: "gpt-oss-120b",
        messages: [
          {
            role: "user",
            content: [{ type: "image_url", image_url: { url: "https://example.com/a.png" } }],
          },
        ],
      },
      400,
      "model_media_mismatch",
    ],
    ["two replies", { model: MODEL, messages, n: 2 }, 400, "invalid_request"],
    ["tools", { model: MODEL, messages, tools: [] }, 400, "invalid_request"],
    ["no messages", { model: MODEL, messages: [] }, 400, "invalid_request"],
    [
      "more text than any context",
      { model: MODEL, messages: [{ role: "user", content: "a".repeat(500_001) }] },
      400,
      "prompt_too_long",
    ],
    [
      "a tool role",
      { model: MODEL, messages: [{ role: "tool", content: "x" }] },
      400,
      "invalid_request",
    ],
  ])("%s", async (_name, body, status, code) => {
    const c = await client();
    const res = await fetch(`${app.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${c.key}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(status);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe(code);
    expect((await c.balance()).credits).toBe(100n * 10_000n);
  });
});
