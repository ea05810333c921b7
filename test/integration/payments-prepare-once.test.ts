import { decodePaymentResponseHeader } from "@x402/core/http";
import { sql } from "drizzle-orm";
import type { Runner } from "graphile-worker";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import type { LocalChain } from "../../src/chain/local-chain.js";
import * as compose from "../../src/domains/generations/compose.js";
import { startWorker } from "../../src/jobs/worker.js";
import * as safeFetch from "../../src/lib/safe-fetch.js";
import { startTestApp, type TestApp, waitForGeneration } from "../helpers/app.js";
import { fundedPayer, payingFetch, paymentEnv, startTestChain } from "../helpers/chain.js";
import { expectMoneyInvariants } from "../helpers/ledger.js";
import { startReceiver } from "../helpers/receiver.js";

// A paid generation is prepared ONCE (composed, quoted, its URLs SSRF-checked) and nothing
// network-bound runs once its payment is claimed: the transaction that records the settled
// payment only inserts rows, places holds and enqueues jobs.

let chain: LocalChain;
let app: TestApp;
let worker: Runner;
let receiver: Awaited<ReturnType<typeof startReceiver>>;

beforeAll(async () => {
  chain = await startTestChain("test");
  receiver = await startReceiver();
  const port = new URL(receiver.url).port;
  app = await startTestApp({
    env: {
      ...paymentEnv([chain]),
      // The webhook is named by host name, so checking it means a DNS lookup.
      SSRF_ALLOW_HOSTS: `localhost:${port}`,
      CHANNELS: JSON.stringify([
        { id: "sandbox", provider: "sandbox", networks: ["test"], models: "*", priority: 1 },
      ]),
    },
  });
  worker = await startWorker(app.ctx);
});

afterAll(async () => {
  await worker?.stop();
  await app?.close();
  await receiver?.close();
  await chain?.stop();
});

afterEach(() => {
  vi.restoreAllMocks();
});

// biome-ignore lint/suspicious/noExplicitAny: tests read response bodies field by field.
async function json(res: Response): Promise<any> {
  return res.json();
}

/** Whether this wallet's payment has been claimed (its row exists) at this moment. */
async function claimed(payer: string): Promise<boolean> {
  const { rows } = await app.ctx.db.execute<{ n: number }>(
    sql`select count(*)::int as n from payments where payer = ${payer}`,
  );
  return (rows[0]?.n ?? 0) > 0;
}

describe("a paid generation", () => {
  it("is composed, quoted and SSRF-checked once, all before its payment is claimed", async () => {
    const payer = await fundedPayer(chain, 20n * 10n ** 6n);
    const webhookUrl = `http://localhost:${new URL(receiver.url).port}/hook`;
    // Each check of a URL (DNS lookups), noted with whether the payment was claimed by then.
    const checks: Array<{ url: string; afterClaim: boolean }> = [];
    const realCheckUrl = safeFetch.checkUrl;
    vi.spyOn(safeFetch, "checkUrl").mockImplementation(async (url, options) => {
      checks.push({ url, afterClaim: await claimed(payer.address) });
      return realCheckUrl(url, options);
    });
    // Each composition or quote of the request (template and pass reads), noted likewise.
    const quotes: boolean[] = [];
    const realCompose = compose.composeRequest;
    vi.spyOn(compose, "composeRequest").mockImplementation(async (...args) => {
      quotes.push(await claimed(payer.address));
      return realCompose(...args);
    });
    const realQuote = compose.quoteRequest;
    vi.spyOn(compose, "quoteRequest").mockImplementation(async (...args) => {
      quotes.push(await claimed(payer.address));
      return realQuote(...args);
    });

    const res = await payingFetch(payer, "test")(`${app.url}/v1/generate`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ prompt: "a kite", models: ["z-image-turbo"], webhookUrl }),
    });
    const body = await json(res);
    expect(res.status).toBe(202);
    expect(body.payment.status).toBe("settled");
    // The HTTP adapter writes the settlement the verb reports.
    const settlement = decodePaymentResponseHeader(res.headers.get("payment-response") as string);
    expect(settlement).toMatchObject({ success: true, transaction: body.payment.transaction });
    // Two requests reached the route (the 402, then the paid one); each prepared once, on the
    // one network that takes payments, and never after the payment was claimed.
    expect(checks).toEqual([
      { url: webhookUrl, afterClaim: false },
      { url: webhookUrl, afterClaim: false },
    ]);
    expect(quotes).toEqual([false, false]);
    await expectMoneyInvariants(app.ctx);
  });

  it("prices a creator's own pass as free once the payment names them, never above what was paid", async () => {
    const payer = await fundedPayer(chain, 20n * 10n ** 6n);
    const { findOrCreateWalletAccount } = await import("../../src/domains/accounts/service.js");
    const { createApiKey } = await import("../../src/domains/keys/service.js");
    const account = await findOrCreateWalletAccount(app.ctx, payer.address);
    const key = await createApiKey(
      app.ctx,
      { accountId: account.id },
      { network: "test", name: "creator" },
    );
    const pass = await app.request("POST", "/v1/passes", {
      token: key.key,
      json: { name: "Own", stylePrompt: "charcoal", fee: 5 },
    });
    expect(pass.status).toBe(201);

    const res = await payingFetch(payer, "test")(`${app.url}/v1/generate`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        prompt: "a heron",
        models: ["z-image-turbo"],
        stylePassIds: [pass.body.id],
      }),
    });
    const body = await json(res);
    expect(res.status).toBe(202);
    const done = await waitForGeneration(app, body.accessToken, body.generationId);
    expect(done.status).toBe("completed");
    // Paid with the fee (the payer was unknown when the 402 priced it); held and charged
    // without it, so the fee stays on the creator's account as credits.
    expect(done.quote.passFees).toEqual([{ passId: pass.body.id, fee: 0, uses: 1, credits: 0 }]);
    expect(done.cost).toMatchObject({ quoted: body.cost, charged: body.cost, refunded: 0 });
    const balance = await app.request("GET", "/v1/balance", { token: key.key });
    expect(balance.body).toMatchObject({ creditBalance: 5, earnings: 0 });
    await expectMoneyInvariants(app.ctx);
  });
});
