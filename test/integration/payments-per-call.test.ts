import { decodePaymentRequiredHeader } from "@x402/core/http";
import { sql } from "drizzle-orm";
import type { Runner } from "graphile-worker";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { LocalChain } from "../../src/chain/local-chain.js";
import { startWorker } from "../../src/jobs/worker.js";
import {
  type ApiResponse,
  createFundedCaller,
  startTestApp,
  type TestApp,
  waitForGeneration,
} from "../helpers/app.js";
import {
  fundedPayer,
  payingFetch,
  paymentEnv,
  signPayment,
  startTestChain,
  treasury,
  usdcBalance,
} from "../helpers/chain.js";
import { expectMoneyInvariants } from "../helpers/ledger.js";
import { startReceiver } from "../helpers/receiver.js";
import { type Simulator, startSimulator } from "../simulator/upstream.js";

let chain: LocalChain;
let app: TestApp;
let worker: Runner;
let sim: Simulator;
let receiver: Awaited<ReturnType<typeof startReceiver>>;

beforeAll(async () => {
  chain = await startTestChain("test");
  sim = await startSimulator();
  receiver = await startReceiver();
  app = await startTestApp({
    env: {
      ...paymentEnv([chain]),
      SSRF_ALLOW_HOSTS: receiver.hostPort,
      CHANNELS: JSON.stringify([
        { id: "sandbox", provider: "sandbox", networks: ["test"], models: "*", priority: 1 },
        {
          id: "openai",
          provider: "openai",
          baseUrl: `${sim.url}/openai`,
          apiKey: "sk-sim",
          networks: ["test"],
          models: { "gpt-image-2": "gpt-image-1" },
          priority: 0,
        },
      ]),
    },
  });
  worker = await startWorker(app.ctx);
});

afterAll(async () => {
  await worker?.stop();
  await app?.close();
  await sim?.close();
  await receiver?.close();
  await chain?.stop();
});

beforeEach(() => {
  sim.always = "ok";
});

const newPayer = (usdc = 20n * 10n ** 6n) => fundedPayer(chain, usdc);

// biome-ignore lint/suspicious/noExplicitAny: tests read response bodies field by field.
async function json(res: Response): Promise<any> {
  return res.json();
}

/** A public URL the API gave out, on this test server. */
const local = (url: string) => `${app.url}${new URL(url).pathname}${new URL(url).search}`;

const image = { prompt: "a lighthouse at dusk", models: ["z-image-turbo", "qwen-image-2.0"] };

describe("pay per call", () => {
  it("refuses a bad body with a 400 before any 402", async () => {
    for (const body of [
      { models: ["z-image-turbo"] },
      { prompt: "x", models: ["no-such-model"] },
      { prompt: "x", models: ["sora-2-preview"], mediaType: "video" },
    ]) {
      const res = await app.request("POST", "/v1/generate", { json: body });
      expect(res.status).toBe(400);
      expect(res.headers.get("payment-required")).toBeNull();
    }
    const video = await app.request("POST", "/v1/videos/jobs", {
      json: { model: "sora-2-preview", prompt: "x", duration: 99 },
    });
    expect(video.status).toBe(400);
    const openai = await app.request("POST", "/v1/images/generations", {
      json: { model: "gpt-image-2", prompt: "x", n: 9 },
    });
    expect(openai.status).toBe(400);
  });

  it("asks for exactly the quote: the credits an API key would be charged, at $0.01 each", async () => {
    const { key } = await createFundedCaller(app.ctx, 1_000n);
    const withKey = await app.request("POST", "/v1/generate", { token: key, json: image });
    const quoted = withKey.body.cost as number;
    expect(quoted).toBeGreaterThan(0);
    const unpaid = await app.request("POST", "/v1/generate", { json: image });
    expect(unpaid.status).toBe(402);
    const required = decodePaymentRequiredHeader(unpaid.headers.get("payment-required") as string);
    expect(required.accepts.map((a) => [a.network, a.amount, a.payTo])).toEqual([
      ["eip155:84532", String(quoted * 10_000), treasury],
    ]);
    expect(required.resource.url).toMatch(/\/v1\/generate$/);
  });

  it("pays for an image generation: receipt, access token, exact charge, USDC moved once", async () => {
    const payer = await newPayer();
    const before = await usdcBalance(chain, treasury);
    const res = await payingFetch(payer, "test")(`${app.url}/v1/generate`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(image),
    });
    const body = await json(res);
    expect(res.status).toBe(202);
    expect(body.payment).toMatchObject({
      status: "settled",
      network: "test",
      payer: payer.address,
      transaction: expect.stringMatching(/^0x[0-9a-f]{64}$/),
    });
    expect(body.accessToken).toMatch(/^gat_gen_/);
    expect((await usdcBalance(chain, treasury)) - before).toBe(BigInt(body.cost) * 10_000n);

    const done = await waitForGeneration(app, body.accessToken, body.generationId);
    expect(done.status).toBe("completed");
    expect(done.cost).toMatchObject({ quoted: body.cost, charged: body.cost, refunded: 0 });
    const file = await fetch(local(done.results[0].imageUrl));
    expect(file.status).toBe(200);

    // The token reads that generation only: nothing else, and no other endpoint.
    const { key } = await createFundedCaller(app.ctx, 100n);
    const other = await app.request("POST", "/v1/generate", {
      token: key,
      json: { prompt: "someone else's", models: ["z-image-turbo"] },
    });
    const peek = await app.request("GET", `/v1/generate/status?ids=${other.body.generationId}`, {
      token: body.accessToken,
    });
    expect(peek.body).toEqual({ generations: {}, notFound: [other.body.generationId] });
    for (const path of ["/v1/history", "/v1/balance"]) {
      const res = await app.request("GET", path, { token: body.accessToken });
      expect(res.status).toBe(401);
    }
    const forged = `${body.accessToken.slice(0, -4)}AAAA`;
    const refused = await app.request("GET", `/v1/generate/status?ids=${body.generationId}`, {
      token: forged,
    });
    expect(refused.status).toBe(401);
    await expectMoneyInvariants(app.ctx);
  });

  it("pays for a styled generation: the 402 asks for the pass fees too, and the creator earns the royalty once", async () => {
    const creator = await createFundedCaller(app.ctx, 1n);
    const pass = await app.request("POST", "/v1/passes", {
      token: creator.key,
      json: { name: "Ink", stylePrompt: "ink wash", fee: 5 },
    });
    const styled = { ...image, stylePassIds: [pass.body.id] };
    const unpaid = await app.request("POST", "/v1/generate", { json: styled });
    const plain = await app.request("POST", "/v1/generate", { json: image });
    const amount = (res: ApiResponse) =>
      BigInt(
        decodePaymentRequiredHeader(res.headers.get("payment-required") as string).accepts[0]
          ?.amount ?? 0,
      );
    // Two models, each paying the 5-credit fee: 10 credits, $0.10 more.
    expect(amount(unpaid) - amount(plain)).toBe(10n * 10_000n);

    const payer = await newPayer();
    const res = await payingFetch(payer, "test")(`${app.url}/v1/generate`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(styled),
    });
    const body = await json(res);
    expect(res.status).toBe(202);
    expect(BigInt(body.cost) * 10_000n).toBe(amount(unpaid));
    const done = await waitForGeneration(app, body.accessToken, body.generationId);
    expect(done.status).toBe("completed");
    expect(done.quote.passFees).toEqual([{ passId: pass.body.id, fee: 5, uses: 2, credits: 10 }]);
    const balance = await app.request("GET", "/v1/balance", { token: creator.key });
    expect(balance.body.earnings).toBe(2 * 4);
    await expectMoneyInvariants(app.ctx);
  });

  it("pays for a batch in one payment of the whole quote; each generation has its own token", async () => {
    const payer = await newPayer();
    const before = await usdcBalance(chain, treasury);
    const requests = [image, { prompt: "a red kite", models: ["z-image-turbo"] }];
    const unpaid = await app.request("POST", "/v1/generate/batch", { json: { requests } });
    expect(unpaid.status).toBe(402);
    const res = await payingFetch(payer, "test")(`${app.url}/v1/generate/batch`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ requests }),
    });
    const body = await json(res);
    expect(res.status).toBe(202);
    expect(body.batchId).toMatch(/^bat_/);
    expect(body.payment).toMatchObject({ status: "settled", payer: payer.address });
    expect((await usdcBalance(chain, treasury)) - before).toBe(BigInt(body.cost) * 10_000n);
    expect(body.generations).toHaveLength(2);
    for (const g of body.generations) {
      const done = await waitForGeneration(app, g.accessToken, g.generationId);
      expect(done.status).toBe("completed");
      expect(done.cost.charged).toBe(g.cost);
    }
    expect(body.generations[0].cost + body.generations[1].cost).toBe(body.cost);
    await expectMoneyInvariants(app.ctx);
  });

  it.each([
    ["a paid generation", "/v1/generate", image, 1],
    ["a paid batch", "/v1/generate/batch", { requests: [image, image] }, 2],
  ])(
    "charges %s once: the same payment sent again starts nothing",
    async (_what, path, body, made) => {
      const payer = await newPayer();
      const unpaid = await app.request("POST", path, { json: body });
      const payment = await signPayment(
        payer,
        "test",
        unpaid.headers.get("payment-required") as string,
      );
      const send = () =>
        app.request("POST", path, {
          json: body,
          headers: { "payment-signature": payment },
        });
      const first = await send();
      expect(first.status).toBe(202);
      const again = await send();
      expect(again.status).toBe(402);
      expect(again.body.error.code).toBe("payment_required");
      expect(await usdcBalance(chain, payer.address)).toBe(
        20_000_000n - BigInt(first.body.cost) * 10_000n,
      );
      const { rows } = await app.ctx.db.execute<{ payments: number; generations: number }>(sql`
      select (select count(*)::int from payments where payer = ${payer.address}) as payments,
             (select count(*)::int from generations where account_id =
                (select account_id from payments where payer = ${payer.address})) as generations`);
      expect(rows[0]).toEqual({ payments: 1, generations: made });
      await expectMoneyInvariants(app.ctx);
    },
  );

  it("pays for a video job and polls it with its token", async () => {
    const payer = await newPayer();
    const res = await payingFetch(payer, "test")(`${app.url}/v1/videos/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "sora-2-preview", prompt: "waves", duration: 4 }),
    });
    const body = await json(res);
    expect(res.status).toBe(202);
    expect(body).toMatchObject({ object: "video.job", status: "queued", model: "sora-2-preview" });
    expect(body.payment.status).toBe("settled");
    let job: ApiResponse | undefined;
    for (let i = 0; i < 400; i++) {
      job = await app.request("GET", `/v1/videos/jobs/${body.id}`, { token: body.accessToken });
      if (job.body.status === "succeeded" || job.body.status === "failed") break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(job?.body).toMatchObject({ status: "succeeded", progress: 100 });
    expect(job?.body.videoUrl).toBeTruthy();
  });

  it("pays through the OpenAI-compatible endpoint and gets the images back", async () => {
    const payer = await newPayer();
    const res = await payingFetch(payer, "test")(`${app.url}/v1/images/generations`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "z-image-turbo", prompt: "two of them", n: 2 }),
    });
    const body = await json(res);
    expect(res.status).toBe(200);
    expect(body.data).toHaveLength(2);
    expect(body.accessTokens).toHaveLength(2);
    expect(body.payment.status).toBe("settled");
    expect((await fetch(local(body.data[0].url))).status).toBe(200);
    // The ids are announced only once the payment settled: the unpaid 402 names none.
    expect(res.headers.get("x-generation-id")).toBe(body.generationIds.join(","));
    const unpaid = await app.request("POST", "/v1/images/generations", {
      json: { model: "z-image-turbo", prompt: "unpaid" },
    });
    expect(unpaid.status).toBe(402);
    expect(unpaid.headers.get("x-generation-id")).toBeNull();
  });

  it("refunds a failed paid generation to the wallet's account, usable by a key made for it", async () => {
    sim.always = "contentPolicy";
    const payer = await newPayer();
    const res = await payingFetch(payer, "test")(`${app.url}/v1/generate`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ prompt: "refused", models: ["gpt-image-2"] }),
    });
    const body = await json(res);
    expect(res.status).toBe(202);
    const done = await waitForGeneration(app, body.accessToken, body.generationId);
    expect(done.status).toBe("failed");
    expect(done.cost).toMatchObject({ charged: 0, refunded: body.cost });

    // The wallet's account holds the refund; a key for that wallet sees it and can spend it.
    const { key } = await createAccountWithKeyFor(payer.address);
    const balance = await app.request("GET", "/v1/balance", { token: key });
    expect(balance.body.creditBalance).toBe(body.cost);
    const payments = await app.request("GET", "/v1/payments", { token: key });
    expect(payments.body.data[0]).toMatchObject({
      purpose: "generation",
      generationId: body.generationId,
      credits: body.cost,
      status: "settled",
    });
    await expectMoneyInvariants(app.ctx);
  });

  it("through the images door: routing is checked before any 402, and a failed paid call keeps its payment as credits", async () => {
    const unknown = await app.request("POST", "/v1/images/generations", {
      json: { model: "gpt-image-2", prompt: "routed", routing: { only: ["fal-eu"] } },
    });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error).toMatchObject({ code: "unknown_channel", channels: ["fal-eu"] });
    expect(unknown.headers.get("payment-required")).toBeNull();

    sim.always = "error500";
    const payer = await newPayer();
    const res = await payingFetch(payer, "test")(`${app.url}/v1/images/generations`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      // Without failover the sandbox channel is never tried: the openai channel's failure ends it.
      body: JSON.stringify({
        model: "gpt-image-2",
        prompt: "fails",
        routing: { allowFailover: false },
      }),
    });
    const body = await json(res);
    expect(res.status).toBe(502);
    expect(body.error.code).toBe("generation_failed");
    const { key } = await createAccountWithKeyFor(payer.address);
    const payments = await app.request("GET", "/v1/payments", { token: key });
    expect(payments.body.data).toHaveLength(1);
    const paid = payments.body.data[0].credits as number;
    expect(paid).toBeGreaterThan(0);
    const balance = await app.request("GET", "/v1/balance", { token: key });
    expect(balance.body).toMatchObject({ creditBalance: paid, heldCredits: 0 });
    await expectMoneyInvariants(app.ctx);
  });

  it("refuses what only an account may use (reservations, uploads) before any 402", async () => {
    for (const extra of [
      { reservationId: "res_01jdzzzzzzzzzzzzzzzzzzzzzz" },
      { referenceImageUrls: ["http://localhost:3000/v1/uploads/img_01jdzzzzzzzzzzzzzzzzzzzzzz"] },
    ]) {
      const res = await app.request("POST", "/v1/generate", {
        json: { prompt: "x", models: ["z-image-turbo"], ...extra },
      });
      expect(res.status).toBe(400);
      expect(res.headers.get("payment-required")).toBeNull();
    }
  });

  it("fetches reference images after verifying the payment and before settling it", async () => {
    const payer = await newPayer();
    const res = await payingFetch(payer, "test")(`${app.url}/v1/generate`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        prompt: "with a reference that is not an image",
        models: ["z-image-turbo"],
        referenceImageUrls: [`${receiver.url}/not-an-image.png`],
      }),
    });
    const body = await json(res);
    expect(res.status).toBe(400);
    // The first answer was the 402 (the client paid); the image is refused only then.
    expect(body.error.code).toMatch(/unsafe_url|invalid_image|invalid_reference_image/);
    expect(await usdcBalance(chain, payer.address)).toBe(20_000_000n);
    const { rows } = await app.ctx.db.execute<{ n: number }>(
      sql`select count(*)::int as n from payments where payer = ${payer.address}`,
    );
    expect(rows[0]?.n).toBe(0);
  });
});

async function createAccountWithKeyFor(address: string) {
  const { findOrCreateWalletAccount } = await import("../../src/domains/accounts/service.js");
  const { createApiKey } = await import("../../src/domains/keys/service.js");
  const account = await findOrCreateWalletAccount(app.ctx, address);
  return createApiKey(app.ctx, { accountId: account.id }, { network: "test", name: "later" });
}
