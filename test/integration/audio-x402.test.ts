import { sql } from "drizzle-orm";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { LocalChain } from "../../src/chain/local-chain.js";
import {
  findAudioModel,
  type SpeechModel,
  speechCost,
} from "../../src/domains/catalog/audio-models.js";
import { getBalance } from "../../src/domains/ledger/service.js";
import { makeWav, wavComment } from "../../src/domains/providers/wav.js";
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
 * Speech paid per call with x402 (@x402/fetch, on anvil): the wallet pays the exact quote (one USDC base unit per ledger unit), the call posts it, and a failed call
 * leaves the payment on the wallet's account as credits.
 */

const tts = findAudioModel("tts-1") as SpeechModel;

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
      CHANNELS: JSON.stringify([
        simulatedChannel(sim, "openai", { "tts-1": "tts-1", "whisper-1": "whisper-1" }),
      ]),
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

async function payerAccount(address: string) {
  const { rows } = await app.ctx.db.execute<{ account_id: string }>(
    sql`select account_id from payments where lower(payer) = ${address.toLowerCase()}`,
  );
  expect(rows).toHaveLength(1);
  return rows[0]?.account_id as string;
}

const speech = (input: string) => ({
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ model: "tts-1", input, voice: "alloy", response_format: "wav" }),
});

describe("x402 speech", () => {
  it("speech: the wallet pays exactly speechCost and gets the audio", async () => {
    const payer = await fundedPayer(chain, 5n * 10n ** 6n);
    const input = "Paid per call, by the character.";
    const cost = speechCost(tts, input.length);
    const treasuryBefore = await usdcBalance(chain, treasury);
    const res = await payingFetch(payer, "test")(`${app.url}/v1/audio/speech`, speech(input));
    expect(res.status).toBe(200);
    expect(res.headers.get("payment-response")).toBeTruthy();
    const bytes = Buffer.from(await res.arrayBuffer());
    expect(wavComment(bytes)).toBe(input);
    expect(creditsFromJson(Number(res.headers.get("x-credits-charged")))).toBe(cost);
    expect((await usdcBalance(chain, treasury)) - treasuryBefore).toBe(cost);
    const balance = await getBalance(app.ctx, await payerAccount(payer.address), "test");
    expect([balance.creditBalance, balance.heldCredits]).toEqual([0n, 0n]);
  });

  it("transcription takes an API key: no x402 offer for a multipart body", async () => {
    const form = new FormData();
    form.append("model", "whisper-1");
    form.append("file", new Blob([new Uint8Array(makeWav({ seconds: 1, seed: "x" }))]), "a.wav");
    const res = await fetch(`${app.url}/v1/audio/transcriptions`, { method: "POST", body: form });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("missing_api_key");
  });

  it("an upstream failure keeps the whole payment as credits on the wallet's account", async () => {
    const payer = await fundedPayer(chain, 5n * 10n ** 6n);
    sim.always = "error500";
    const input = "this one fails";
    const res = await payingFetch(payer, "test")(`${app.url}/v1/audio/speech`, speech(input));
    expect(res.status).toBe(502);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
      "generation_failed",
    );
    const balance = await getBalance(app.ctx, await payerAccount(payer.address), "test");
    expect(balance.creditBalance).toBe(speechCost(tts, input.length));
    expect(balance.heldCredits).toBe(0n);
  });

  it("without a payment: 402 with the offers; bad input is a 400 first, never a 402", async () => {
    const unpaid = await fetch(`${app.url}/v1/audio/speech`, speech("what does it cost?"));
    expect(unpaid.status).toBe(402);
    expect(unpaid.headers.get("payment-required")).toBeTruthy();
    const bad = await fetch(`${app.url}/v1/audio/speech`, speech("x".repeat(5_000)));
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe("prompt_too_long");
    // No network's channels honour this routing: nothing is offered to pay.
    const routed = await fetch(`${app.url}/v1/audio/speech`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: "tts-1",
        input: "hi",
        voice: "alloy",
        routing: { only: ["nope"] },
      }),
    });
    expect(routed.status).toBe(400);
    expect(routed.headers.get("payment-required")).toBeNull();
    expect(((await routed.json()) as { error: { code: string } }).error.code).toBe(
      "unknown_channel",
    );
  });
});
