import { decodePaymentRequiredHeader, decodePaymentResponseHeader } from "@x402/core/http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LocalChain } from "../../src/chain/local-chain.js";
import { USDC } from "../../src/chain/networks.js";
import { systemLedgerAccount, userLedgerAccount } from "../../src/domains/ledger/accounts.js";
import { transfer } from "../../src/domains/ledger/service.js";
import { checkPaymentInvariants } from "../../src/domains/payments/invariants.js";
import { createAccountWithKey, startTestApp, type TestApp } from "../helpers/app.js";
import {
  fundedPayer,
  payingFetch,
  paymentEnv,
  startTestChain,
  treasury,
  usdcBalance,
} from "../helpers/chain.js";

let chain: LocalChain;
let app: TestApp;

beforeAll(async () => {
  chain = await startTestChain("test");
  app = await startTestApp({ env: paymentEnv([chain]) });
});

afterAll(async () => {
  await app?.close();
  await chain?.stop();
});

const newPayer = (usdc = 100n * 10n ** 6n) => fundedPayer(chain, usdc);

describe("credit packs over x402", () => {
  it("answers 402 with the pack's exact price on the key's network", async () => {
    const { key } = await createAccountWithKey(app.ctx, "test");
    const res = await app.call("buyCreditPack", { params: { pack: "creator" }, token: key });
    expect(res.status).toBe(402);
    expect(res.body.error.code).toBe("payment_required");
    // A key was sent: the message does not ask for one.
    expect(res.body.error.message).not.toContain("API key");
    expect(res.body.error.message).toContain("this key's account");
    const required = decodePaymentRequiredHeader(res.headers.get("payment-required") as string);
    expect(required.x402Version).toBe(2);
    expect(required.accepts).toHaveLength(1);
    expect(required.accepts[0]).toMatchObject({
      scheme: "exact",
      network: "eip155:84532",
      asset: USDC.test.address,
      amount: "24000000",
      payTo: treasury,
      extra: { name: "USDC", version: "2" },
    });
  });

  it("an unknown pack is a 400 before any 402", async () => {
    const res = await app.call("buyCreditPack", { params: { pack: "mega" } });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("invalid_request");
    expect(res.body.error.message).toBe(
      "Invalid request: pack: Unknown pack; the packs are starter, creator, pro.",
    );
    // Without a key the 402 says a key is the other way to pay.
    const keyless = await app.call("buyCreditPack", { params: { pack: "starter" } });
    expect(keyless.status).toBe(402);
    expect(keyless.body.error.message).toContain("or send an API key");
  });

  it("buys a pack with an API key: USDC moves once, credits and tier follow the pack", async () => {
    const { key, account } = await createAccountWithKey(app.ctx, "test");
    const payer = await newPayer();
    const before = await usdcBalance(chain, treasury);
    const res = await payingFetch(payer, "test")(`${app.url}/v1/credits/packs/pro`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}` },
    });
    // biome-ignore lint/suspicious/noExplicitAny: read field by field
    const body: any = await res.json();
    expect(res.status).toBe(201);
    expect(body).toMatchObject({
      pack: "pro",
      credits: 6000,
      creditBalance: 6000,
      membershipTier: "pro",
      accountId: account.id,
      payment: { status: "settled", network: "test", payer: payer.address },
    });
    expect(body.apiKey).toBeUndefined();
    const settlement = decodePaymentResponseHeader(res.headers.get("payment-response") as string);
    expect(settlement.success).toBe(true);
    expect(settlement.transaction).toBe(body.payment.transaction);
    expect((await usdcBalance(chain, treasury)) - before).toBe(40_000_000n);
    expect(await usdcBalance(chain, payer.address)).toBe(60_000_000n);

    const balance = await app.call("getBalance", { token: key });
    expect(balance.body).toMatchObject({ creditBalance: 6000, membershipTier: "pro" });
    const listed = await app.call("listPayments", { token: key });
    expect(listed.body.data).toEqual([
      expect.objectContaining({
        id: body.payment.id,
        amountUsdc: "40.000000",
        credits: 6000,
        purpose: "pack",
        pack: "pro",
        status: "settled",
        transaction: body.payment.transaction,
      }),
    ]);
  });

  it("buys a pack with only a wallet: the wallet's account gets the credits and a new key", async () => {
    const payer = await newPayer();
    const res = await payingFetch(payer, "test")(`${app.url}/v1/credits/packs/starter`, {
      method: "POST",
    });
    // biome-ignore lint/suspicious/noExplicitAny: read field by field
    const body: any = await res.json();
    expect(res.status).toBe(201);
    expect(body.apiKey).toMatch(/^sk_test_/);
    expect(body).toMatchObject({ credits: 1000, creditBalance: 1000, membershipTier: "free" });
    const balance = await app.call("getBalance", { token: body.apiKey });
    expect(balance.status).toBe(200);
    expect(balance.body.creditBalance).toBe(1000);
    const account = await app.call("getAccount", { token: body.apiKey });
    expect(account.body.walletAddress).toBe(payer.address);

    // A second purchase by the same wallet lands on the same account.
    const again = await payingFetch(payer, "test")(`${app.url}/v1/credits/packs/creator`, {
      method: "POST",
    });
    // biome-ignore lint/suspicious/noExplicitAny: read field by field
    const second: any = await again.json();
    expect(second.accountId).toBe(body.accountId);
    expect(second).toMatchObject({ creditBalance: 4000, membershipTier: "creator" });

    // Both payments, newest first, one page at a time.
    const first = await app.request("GET", "/v1/payments?limit=1", { token: body.apiKey });
    expect(first.body.data.map((p: { pack: string }) => p.pack)).toEqual(["creator"]);
    expect(first.body.nextCursor).toBe(second.payment.id);
    const next = await app.request("GET", `/v1/payments?limit=1&cursor=${first.body.nextCursor}`, {
      token: body.apiKey,
    });
    expect(next.body.data.map((p: { pack: string }) => p.pack)).toEqual(["starter"]);
    expect(next.body.nextCursor).toBeNull();
    const bad = await app.call("listPayments", { query: { cursor: "nope" }, token: body.apiKey });
    expect(bad.status).toBe(400);
  });

  it("a wallet without enough USDC gets 402 and nothing is minted", async () => {
    const payer = await newPayer(1_000_000n);
    const { key, account } = await createAccountWithKey(app.ctx, "test");
    const res = await payingFetch(payer, "test")(`${app.url}/v1/credits/packs/starter`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}` },
    });
    // biome-ignore lint/suspicious/noExplicitAny: read field by field
    const body: any = await res.json();
    expect(res.status).toBe(402);
    expect(body.error.reason).toBe("invalid_exact_evm_insufficient_balance");
    expect(await usdcBalance(chain, payer.address)).toBe(1_000_000n);
    const balance = await app.call("getBalance", { token: key });
    expect(balance.body.creditBalance).toBe(0);
    expect(account.id).toBeTruthy();
  });

  it("ledger check finds credits minted from USDC without a settled payment", async () => {
    expect(await checkPaymentInvariants(app.ctx)).toEqual([]);
    const { account } = await createAccountWithKey(app.ctx, "test");
    await transfer(app.ctx, {
      id: "forged-mint",
      network: "test",
      debit: systemLedgerAccount("test", "issuance"),
      credit: userLedgerAccount(account.id, "test"),
      amount: 1_000n,
      kind: "pack_purchase",
      metadata: { pack: "pro" },
    });
    expect(await checkPaymentInvariants(app.ctx)).toEqual([
      "transfer forged-mint mints USDC credits without a settled payment",
    ]);
  });
});
