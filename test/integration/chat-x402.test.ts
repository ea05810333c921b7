import { sql } from "drizzle-orm";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { LocalChain } from "../../src/chain/local-chain.js";
import type { ChatMessage } from "../../src/domains/chat/messages.js";
import { countPromptTokens } from "../../src/domains/chat/tokens.js";
import { getBalance } from "../../src/domains/ledger/service.js";
import { creditsFromJson } from "../../src/lib/credits.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import {
  fundedPayer,
  payingFetch,
  paymentEnv,
  startTestChain,
  treasury,
  usdcBalance,
} from "../helpers/chain.js";
import { expectMoneyInvariants } from "../helpers/ledger.js";
import {
  clearFaults,
  type Simulator,
  simulatedChannel,
  startSimulator,
} from "../simulator/upstream.js";

/**
 * A chat paid per call with x402 (@x402/fetch, on anvil): the wallet pays the hold, the reply
 * settles to its usage, and what it did not use stays on the wallet's account as credits.
 * gpt-5.4-mini: 525,000 / 3,150,000 units per million prompt / reply tokens.
 */

const MODEL = "gpt-5.4-mini";
const cost = (prompt: number, completion: number) =>
  BigInt(Math.ceil((prompt * 525_000 + completion * 3_150_000) / 1_000_000));
const question = "name three lighthouses on the atlantic coast";
const messages: ChatMessage[] = [{ role: "user", content: question }];
/** The simulator replies "Simulated reply to: <question>" and counts a token a word. */
const simUsage = {
  prompt: question.split(" ").length + 3,
  completion: 3 + question.split(" ").length,
};

let chain: LocalChain;
let sim: Simulator;
let app: TestApp;
beforeAll(async () => {
  chain = await startTestChain("test");
  sim = await startSimulator();
  app = await startTestApp({
    env: {
      ...paymentEnv([chain]),
      LOG_LEVEL: "error",
      ROUTING_BACKOFF_MS: "1",
      ROUTING_MAX_RETRIES: "0",
      CHANNELS: JSON.stringify([simulatedChannel(sim, "openai", { [MODEL]: "gpt-5.4-mini" })]),
    },
  });
});
afterAll(async () => {
  await app?.close();
  await sim?.close();
  await chain?.stop();
});
beforeEach(() => clearFaults(sim));
afterEach(() => expectMoneyInvariants(app.ctx));

async function payerAccount(paymentId: string) {
  const { rows } = await app.ctx.db.execute<{ account_id: string }>(
    sql`select account_id from payments where id = ${paymentId}`,
  );
  return rows[0]?.account_id as string;
}

const chat = (max_tokens: number) => ({
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ model: MODEL, messages, max_tokens }),
});

describe("x402 chat", () => {
  it("routing no network's channels can honour is a 400, with nothing offered to pay", async () => {
    const res = await fetch(`${app.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL, messages, max_tokens: 5, routing: { order: ["nope"] } }),
    });
    expect(res.status).toBe(400);
    expect(res.headers.get("payment-required")).toBeNull();
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("unknown_channel");
    const honoured = await fetch(`${app.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: MODEL,
        messages,
        max_tokens: 5,
        routing: { order: ["openai-sim"] },
      }),
    });
    expect(honoured.status).toBe(402);
  });

  it("the wallet pays the hold; the unused remainder stays on its account as credits", async () => {
    const payer = await fundedPayer(chain, 5n * 10n ** 6n);
    const hold = cost(countPromptTokens(messages), 2_000);
    const treasuryBefore = await usdcBalance(chain, treasury);
    const res = await payingFetch(payer, "test")(`${app.url}/v1/chat/completions`, chat(2_000));
    expect(res.status).toBe(200);
    // biome-ignore lint/suspicious/noExplicitAny: the answer is read field by field.
    const body: any = await res.json();
    expect(body.choices[0].message.content).toBe(`Simulated reply to: ${question}`);
    const charged = cost(simUsage.prompt, simUsage.completion);
    expect(creditsFromJson(body.usage.cost)).toBe(charged);
    expect(creditsFromJson(body.cost.quoted)).toBe(hold);
    expect(creditsFromJson(body.payment.credits)).toBe(hold);
    expect(creditsFromJson(body.payment.keptAsCredits)).toBe(hold - charged);
    expect(body.payment.payer.toLowerCase()).toBe(payer.address.toLowerCase());
    // One USDC base unit per ledger unit: the treasury got the hold in USDC.
    expect((await usdcBalance(chain, treasury)) - treasuryBefore).toBe(hold);
    const account = await payerAccount(body.payment.id);
    const balance = await getBalance(app.ctx, account, "test");
    expect(balance.creditBalance).toBe(hold - charged);
    expect(balance.heldCredits).toBe(0n);
  });

  it("an upstream failure before any token keeps the whole payment as credits on the wallet's account", async () => {
    const payer = await fundedPayer(chain, 5n * 10n ** 6n);
    sim.always = "error500";
    const res = await payingFetch(payer, "test")(`${app.url}/v1/chat/completions`, chat(1_000));
    expect(res.status).toBe(502);
    // biome-ignore lint/suspicious/noExplicitAny: the answer is read field by field.
    const body: any = await res.json();
    expect(body.error.code).toBe("completion_failed");
    const { rows } = await app.ctx.db.execute<{ account_id: string }>(
      sql`select account_id from payments where payer = ${payer.address.toLowerCase()} or payer = ${payer.address}`,
    );
    expect(rows).toHaveLength(1);
    const balance = await getBalance(app.ctx, rows[0]?.account_id as string, "test");
    expect(balance.creditBalance).toBe(cost(countPromptTokens(messages), 1_000));
    expect(balance.heldCredits).toBe(0n);
  });
});
