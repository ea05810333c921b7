import { randomBytes } from "node:crypto";
import { sql } from "drizzle-orm";
import { getAddress } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LocalChain } from "../../src/chain/local-chain.js";
import { USDC } from "../../src/chain/networks.js";
import { reconcilePayments, resolvePayment } from "../../src/domains/payments/reconcile.js";
import {
  applySettledPayment,
  claimPayment,
  getPayment,
} from "../../src/domains/payments/service.js";
import { creditUnits } from "../../src/lib/credits.js";
import { createAccountWithKey, startTestApp, type TestApp } from "../helpers/app.js";
import {
  chainClients,
  fundedPayer,
  payingFetch,
  paymentEnv,
  signPayment,
  startTestChain,
  treasury,
  usdcBalance,
} from "../helpers/chain.js";
import { expectMoneyInvariants } from "../helpers/ledger.js";

/**
 * What must never happen with money on chain: a second mint for one authorization, credits for
 * a payment that did not settle, a test-network payment on a live route, a caller asked to pay
 * again for a settlement that timed out.
 */
let testChain: LocalChain;
let liveChain: LocalChain;
let app: TestApp;
/** Same chain, its own treasury, settlements that give up waiting after half a second. */
let impatient: TestApp;
const impatientTreasury = privateKeyToAccount(generatePrivateKey()).address;

beforeAll(async () => {
  [testChain, liveChain] = await Promise.all([startTestChain("test"), startTestChain("live")]);
  app = await startTestApp({ env: paymentEnv([testChain, liveChain]) });
  impatient = await startTestApp({
    env: {
      ...paymentEnv([testChain], { payTo: impatientTreasury }),
      X402_SETTLE_TIMEOUT_MS: "500",
    },
  });
});

afterAll(async () => {
  await app?.close();
  await impatient?.close();
  await testChain?.stop();
  await liveChain?.stop();
});

const newPayer = (chain: LocalChain = testChain, usdc = 50n * 10n ** 6n) =>
  fundedPayer(chain, usdc);

async function requirementFor(target: TestApp, key: string, pack = "starter") {
  const res = await target.request("POST", `/v1/credits/packs/${pack}`, { token: key });
  expect(res.status).toBe(402);
  return res.headers.get("payment-required") as string;
}

const buy = (target: TestApp, key: string, payment: string, pack = "starter") =>
  target.request("POST", `/v1/credits/packs/${pack}`, {
    token: key,
    headers: { "payment-signature": payment },
  });

const balanceOf = async (target: TestApp, key: string) =>
  (await target.request("GET", "/v1/balance", { token: key })).body.creditBalance as number;

describe("payment safety", () => {
  it("refuses a settled authorization sent again (402), minting nothing more", async () => {
    const { key } = await createAccountWithKey(app.ctx, "test");
    const payer = await newPayer();
    const payment = await signPayment(payer, "test", await requirementFor(app, key));
    expect((await buy(app, key, payment)).status).toBe(201);
    const replay = await buy(app, key, payment);
    expect(replay.status).toBe(402);
    expect(replay.body.error.code).toBe("payment_required");
    expect(await balanceOf(app, key)).toBe(1000);
    expect(await usdcBalance(testChain, payer.address)).toBe(42_000_000n);
  });

  it("runs one of two requests carrying the same authorization at once; the other gets 409", async () => {
    const { key } = await createAccountWithKey(app.ctx, "test");
    const payer = await newPayer();
    const payment = await signPayment(payer, "test", await requirementFor(app, key));
    const { testClient } = chainClients(testChain);
    // Blocks are mined by hand, so the first settlement is still waiting when the second arrives.
    await testClient.setAutomine(false);
    try {
      const first = buy(app, key, payment);
      const second = buy(app, key, payment);
      const loser = await Promise.race([first, second]);
      expect(loser.status).toBe(409);
      expect(loser.body.error.code).toBe("payment_in_flight");
      await testClient.mine({ blocks: 1 });
      const winner = loser === (await first) ? await second : await first;
      expect(winner.status).toBe(201);
    } finally {
      await testClient.setAutomine(true);
    }
    expect(await balanceOf(app, key)).toBe(1000);
    expect(await usdcBalance(testChain, payer.address)).toBe(42_000_000n);
  });

  it("answers malformed or overreaching payments with 402, never a 5xx", async () => {
    const { key } = await createAccountWithKey(app.ctx, "test");
    const payer = await newPayer();
    const required = await requirementFor(app, key);
    const good = JSON.parse(
      Buffer.from(await signPayment(payer, "test", required), "base64").toString(),
    );
    const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64");
    const far = BigInt(Math.floor(Date.now() / 1000) + 30 * 24 * 3600);
    for (const payment of [
      "not base64 json",
      encode({ ...good, x402Version: 3 }),
      encode({ ...good, x402Version: 1 }),
      encode({
        ...good,
        payload: { ...good.payload, permit2Authorization: { from: payer.address } },
      }),
      encode({ ...good, payload: { signature: good.payload.signature } }),
      await signPayment(payer, "test", required, { validBefore: far }),
      await signPayment(payer, "test", required, { validBefore: 10n ** 20n }),
    ]) {
      const res = await buy(app, key, payment);
      expect(res.status).toBe(402);
      expect(res.body.error.code).toBe("payment_required");
    }
    expect(await balanceOf(app, key)).toBe(0);
    expect(await usdcBalance(testChain, payer.address)).toBe(50_000_000n);
  });

  it("refuses an expired authorization before anything is broadcast", async () => {
    const { key } = await createAccountWithKey(app.ctx, "test");
    const payer = await newPayer();
    const expired = BigInt(Math.floor(Date.now() / 1000) - 60);
    const payment = await signPayment(payer, "test", await requirementFor(app, key), {
      validBefore: expired,
    });
    const res = await buy(app, key, payment);
    expect(res.status).toBe(402);
    expect(res.body.error.reason).toMatch(/valid_before|expired/);
    expect(await balanceOf(app, key)).toBe(0);
    expect(await usdcBalance(testChain, payer.address)).toBe(50_000_000n);
  });

  it("never takes a test-network payment on a live route", async () => {
    const live = await createAccountWithKey(app.ctx, "live");
    const test = await createAccountWithKey(app.ctx, "test");
    const liveRequired = await requirementFor(app, live.key);
    expect(JSON.parse(Buffer.from(liveRequired, "base64").toString()).accepts).toEqual([
      expect.objectContaining({
        network: "eip155:8453",
        asset: "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
      }),
    ]);
    const payer = await newPayer();
    // Signed for Base Sepolia (what a test route asks), sent with the live key.
    const testPayment = await signPayment(payer, "test", await requirementFor(app, test.key));
    const res = await buy(app, live.key, testPayment);
    expect(res.status).toBe(402);
    expect(res.body.error.reason).toBe("no_matching_requirements");
    expect(await balanceOf(app, live.key)).toBe(0);
    expect(await usdcBalance(testChain, payer.address)).toBe(50_000_000n);

    // A live payment on the live chain does buy live credits.
    const livePayer = await newPayer(liveChain);
    const paid = await payingFetch(livePayer, "live")(`${app.url}/v1/credits/packs/starter`, {
      method: "POST",
      headers: { authorization: `Bearer ${live.key}` },
    });
    expect(paid.status).toBe(201);
    expect(await balanceOf(app, live.key)).toBe(1000);
    expect(await balanceOf(app, test.key)).toBe(0);
  });

  it("settles 20 distinct concurrent payments, each exactly once", async () => {
    const callers = [];
    for (let i = 0; i < 20; i++) {
      const { key } = await createAccountWithKey(app.ctx, "test");
      callers.push({ key, payer: await newPayer() });
    }
    const before = await usdcBalance(testChain, treasury);
    const results = await Promise.all(
      callers.map(({ key, payer }) =>
        payingFetch(payer, "test")(`${app.url}/v1/credits/packs/starter`, {
          method: "POST",
          headers: { authorization: `Bearer ${key}` },
        }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(Array(20).fill(201));
    expect((await usdcBalance(testChain, treasury)) - before).toBe(20n * 8_000_000n);
    for (const { key } of callers) expect(await balanceOf(app, key)).toBe(1000);
  });

  it("records a settlement that times out as pending, and the chain resolves it exactly once", async () => {
    const { key } = await createAccountWithKey(impatient.ctx, "test");
    const payer = await newPayer();
    const { testClient } = chainClients(testChain);
    await testClient.setAutomine(false);
    let res: Awaited<ReturnType<typeof buy>>;
    try {
      res = await buy(
        impatient,
        key,
        await signPayment(payer, "test", await requirementFor(impatient, key)),
      );
    } finally {
      await testClient.mine({ blocks: 1 });
      await testClient.setAutomine(true);
    }
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({
      status: "payment_pending",
      payment: { status: "pending", transaction: expect.stringMatching(/^0x/) },
    });
    const paymentId = res.body.payment.id as string;
    expect(await balanceOf(impatient, key)).toBe(0);
    // Kept pending with a stable code (settlement_error, or the facilitator's), never the
    // thrown error's text: that goes to the log.
    const pendingRow = await impatient.ctx.db.execute<{ error: string | null }>(
      sql`select error from payments where id = ${paymentId}`,
    );
    expect(pendingRow.rows[0]?.error).toMatch(/^[a-z][a-z0-9_]*$/);
    // The job that will decide it was queued with the pending record.
    const { rows } = await impatient.ctx.db.execute<{ n: number }>(
      sql`select count(*)::int as n from graphile_worker.jobs where key = ${`resolve_payment:${paymentId}`}`,
    );
    expect(rows[0]?.n).toBe(1);

    expect(await resolvePayment(impatient.ctx, paymentId)).toBe("settled");
    expect(await resolvePayment(impatient.ctx, paymentId)).toBe("already_resolved");
    const report = await reconcilePayments(impatient.ctx, "test");
    expect(report.resolved).toEqual([]);
    expect(report).toMatchObject({ ok: true, difference: "0", chainTotal: "8000000" });
    expect(await balanceOf(impatient, key)).toBe(1000);
    const listed = await impatient.request("GET", "/v1/payments", { token: key });
    expect(listed.body.data[0]).toMatchObject({ id: paymentId, status: "settled" });
    await expectMoneyInvariants(impatient.ctx);
  });

  it("reconciles ledger and chain to zero difference on both networks after all of it", async () => {
    for (const network of ["test", "live"] as const) {
      const report = await reconcilePayments(app.ctx, network, { settlingGraceMs: 0 });
      expect(report.unrecordedTransfers).toEqual([]);
      expect(report.missingTransfers).toEqual([]);
      expect(report.mintMismatches).toEqual([]);
      expect(report.difference).toBe("0");
      expect(BigInt(report.chainTotal)).toBeGreaterThan(0n);
      expect(report.ok).toBe(true);
    }
    await expectMoneyInvariants(app.ctx);
  });
});

describe("a facilitator that is down", () => {
  let down: TestApp;
  beforeAll(async () => {
    down = await startTestApp({
      env: {
        X402_TEST_RPC_URL: testChain.rpcUrl,
        X402_TEST_PAY_TO: treasury,
        X402_TEST_FACILITATOR_URL: "http://127.0.0.1:9",
      },
    });
  });
  afterAll(async () => {
    await down?.close();
  });

  it("answers 503 with a clear code, charging and minting nothing", async () => {
    const { key } = await createAccountWithKey(down.ctx, "test");
    const payer = await newPayer();
    const unpaid = await down.request("POST", "/v1/credits/packs/starter", { token: key });
    expect(unpaid.status).toBe(503);
    expect(unpaid.body.error.code).toBe("payments_unavailable");
    // A payment signed against a working deployment's requirement, sent here anyway.
    const payment = await signPayment(
      payer,
      "test",
      await requirementFor(app, (await createAccountWithKey(app.ctx, "test")).key),
    );
    const paid = await buy(down, key, payment);
    expect(paid.status).toBe(503);
    expect(paid.body.error.code).toBe("payments_unavailable");
    const pay = await down.request("POST", "/v1/generate", {
      json: { prompt: "x", models: ["z-image-turbo"] },
    });
    expect(pay.status).toBe(503);
    expect(await balanceOf(down, key)).toBe(0);
    expect(await usdcBalance(testChain, payer.address)).toBe(50_000_000n);
    const { rows } = await down.ctx.db.execute<{ n: number }>(
      sql`select count(*)::int as n from payments`,
    );
    expect(rows[0]?.n).toBe(0);
  });
});

describe("recording a settled payment", () => {
  it("keeps the credits when the paid work cannot start, and never mints twice", async () => {
    const { account, key } = await createAccountWithKey(app.ctx, "test");
    const hex = (bytes: number) => `0x${randomBytes(bytes).toString("hex")}`;
    const payment = await claimPayment(app.ctx, {
      network: "test",
      accountId: account.id,
      payer: getAddress(hex(20)),
      // Not the treasury: this payment is not on chain, and reconciliation must not see it.
      payTo: getAddress(hex(20)),
      asset: USDC.test.address,
      nonce: hex(32),
      amount: 120_000n,
      credits: creditUnits(12n),
      purpose: "generation",
      validBefore: new Date(Date.now() + 60_000),
    });
    const settled = { paymentId: payment.id, transaction: hex(32) };
    // The work fails inside the payment's transaction: nothing of it stays, the payment included.
    await expect(
      applySettledPayment(app.ctx, settled, async () => {
        throw new Error("the work could not start");
      }),
    ).rejects.toThrow("the work could not start");
    expect((await getPayment(app.ctx, payment.id))?.status).toBe("settling");
    expect(await balanceOf(app, key)).toBe(0);
    // What the request then does: record the payment alone, so the payer keeps the credits.
    expect(await applySettledPayment(app.ctx, settled)).toBeDefined();
    expect(await applySettledPayment(app.ctx, settled)).toBeUndefined();
    expect((await getPayment(app.ctx, payment.id))?.status).toBe("settled");
    expect(await balanceOf(app, key)).toBe(12);
    await expectMoneyInvariants(app.ctx);
  });
});
