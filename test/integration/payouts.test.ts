import { sql } from "drizzle-orm";
import { runOnce } from "graphile-worker";
import {
  type Address,
  createWalletClient,
  encodeFunctionData,
  erc20Abi,
  type Hash,
  type Hex,
  http,
} from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  anvilAccount,
  LOCAL_ROLES,
  type LocalChain,
  localTreasuryKey,
} from "../../src/chain/local-chain.js";
import { USDC } from "../../src/chain/networks.js";
import { accounts } from "../../src/domains/accounts/schema.js";
import { createApiKey } from "../../src/domains/keys/service.js";
import { systemLedgerAccount, userLedgerAccount } from "../../src/domains/ledger/accounts.js";
import { expireHolds, getHold } from "../../src/domains/ledger/service.js";
import {
  getPayout,
  type Payout,
  payoutTotals,
  reconcilePayouts,
  reservePayout,
} from "../../src/domains/payouts/service.js";
import { nextNonce, treasuryFor } from "../../src/domains/payouts/treasury.js";
import { crontab } from "../../src/jobs/definitions.js";
import { graphileLogger } from "../../src/jobs/logger.js";
import { taskList } from "../../src/jobs/tasks.js";
import { creditUnits } from "../../src/lib/credits.js";
import { newId } from "../../src/lib/ids.js";
import { createAccountWithKey, startTestApp, type TestApp } from "../helpers/app.js";
import {
  chainClients,
  fundUsdc,
  paymentEnv,
  startTestChain,
  treasury,
  usdcBalance,
} from "../helpers/chain.js";
import { earnRoyalties } from "../helpers/creators.js";
import { expectMoneyInvariants } from "../helpers/ledger.js";
import { freePort } from "../helpers/ports.js";

/**
 * Creator payouts on a real anvil chain and a real PostgreSQL: earnings turn into USDC sent from
 * the treasury to the creator's wallet, exactly once, whatever fails on the way.
 */

const UNITS = 10_000n; // USDC base units per credit
const MIN = 100;

let chain: LocalChain;
/** Pays from the local treasury (wallet 8), funded with dev USDC. */
let app: TestApp;

beforeAll(async () => {
  chain = await startTestChain("test");
  app = await startTestApp({
    env: {
      ...paymentEnv([chain]),
      PAYOUT_TEST_KEY: localTreasuryKey(),
      PAYOUT_MIN_CREDITS: String(MIN),
      ROYALTY_PLATFORM_SHARE_BPS: "0",
    },
  });
  // The treasury starts without dev USDC: give it some to pay out.
  await fundUsdc(chain, treasury, 1_000_000n * UNITS);
});

afterAll(async () => {
  await app?.close();
  await chain?.stop();
});

/** A creator with an API key, a wallet, and `credits` of earnings (royalties of real uses). */
async function creator(target: TestApp, credits: bigint) {
  const caller = await createAccountWithKey(target.ctx, "test");
  if (credits > 0n) await earnRoyalties(target, caller.key, credits);
  return { ...caller, address: caller.wallet.address as Address };
}

const requestPayout = (target: TestApp, key: string, body: unknown, idempotencyKey?: string) =>
  target.request("POST", "/v1/profile/payouts", {
    token: key,
    ...(body === undefined ? {} : { json: body }),
    headers: idempotencyKey === undefined ? {} : { "idempotency-key": idempotencyKey },
  });

const earnings = async (target: TestApp, key: string) =>
  (await target.call("getBalance", { token: key })).body.earnings as number;

async function postTransferOf(target: TestApp, payoutId: string) {
  const { rows } = await target.ctx.db.execute<{
    credit_account_id: string;
    amount: string;
    reference: string | null;
    metadata: Record<string, unknown>;
  }>(sql`select credit_account_id, amount, reference, metadata from ledger_transfers
         where hold_id = ${payoutId} and kind = 'hold_post'`);
  return rows;
}

async function payoutRows(target: TestApp, accountId: string) {
  const { rows } = await target.ctx.db.execute<{ id: string }>(
    sql`select id from payouts where account_id = ${accountId}`,
  );
  return rows;
}

describe("POST /v1/profile/payouts", () => {
  it("sends earnings as USDC from the treasury to the creator's wallet, recorded with its transaction", async () => {
    const c = await creator(app, 1500n);
    const [creatorBefore, treasuryBefore] = await Promise.all([
      usdcBalance(chain, c.address),
      usdcBalance(chain, treasury),
    ]);

    const res = await requestPayout(app, c.key, { credits: 1200 }, "first-payout");
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      network: "test",
      status: "paid",
      credits: 1200,
      amountUsdc: "12.000000",
      to: c.address,
      from: treasury,
      failureReason: null,
    });
    expect(res.body.id).toMatch(/^po_/);
    const hash = res.body.transaction as Hash;
    expect(hash).toMatch(/^0x[0-9a-f]{64}$/);

    // On chain: exactly credits × 10,000 base units moved, from the treasury to the creator.
    expect(await usdcBalance(chain, c.address)).toBe(creatorBefore + 1200n * UNITS);
    expect(await usdcBalance(chain, treasury)).toBe(treasuryBefore - 1200n * UNITS);
    const receipt = await chainClients(chain).publicClient.getTransactionReceipt({ hash });
    expect(receipt.status).toBe("success");
    expect(receipt.from.toLowerCase()).toBe(treasury.toLowerCase());
    expect(receipt.to?.toLowerCase()).toBe(USDC.test.address.toLowerCase());

    // In the ledger: the earnings fell; the hold posted to issuance, naming the transaction.
    expect(await earnings(app, c.key)).toBe(300);
    const hold = await getHold(app.ctx, res.body.id);
    expect(hold).toMatchObject({
      status: "posted",
      posted: creditUnits(1200n), // the ledger counts 1/10,000 credit: one USDC base unit
      kind: "payout",
      accountId: userLedgerAccount(c.account.id, "test", "earnings"),
    });
    const [post] = await postTransferOf(app, res.body.id);
    expect(post).toMatchObject({
      credit_account_id: systemLedgerAccount("test", "issuance"),
      amount: creditUnits(1200n).toString(),
      reference: hash,
    });
    expect(post?.metadata).toMatchObject({ transaction: hash, payoutId: res.body.id });
    expect(await payoutTotals(app.ctx, { accountId: c.account.id, network: "test" })).toEqual({
      paidOut: creditUnits(1200n),
      pending: 0n,
    });
    // The creator's earnings page: earned from the passes' uses, what is left, what was sent.
    const profile = await app.call("getEarnings", { token: c.key });
    expect(profile.body).toMatchObject({
      totalEarned: 1500,
      available: 300,
      pendingPayout: 0,
      paidOut: 1200,
    });

    const listed = await app.call("listPayouts", { token: c.key });
    expect(listed.status).toBe(200);
    expect(listed.body.data).toEqual([res.body]);
    expect(listed.body.nextCursor).toBeNull();
    await expectMoneyInvariants(app.ctx);
  });

  it("replays the same payout for the same Idempotency-Key, paying nothing more; another body is 422", async () => {
    const c = await creator(app, 1000n);
    const first = await requestPayout(app, c.key, { credits: 400 }, "replay-me");
    expect(first.status).toBe(201);
    const paid = await usdcBalance(chain, c.address);
    expect(paid).toBe(400n * UNITS);

    const again = await requestPayout(app, c.key, { credits: 400 }, "replay-me");
    expect(again.status).toBe(201);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.body).toEqual(first.body);
    expect(await usdcBalance(chain, c.address)).toBe(paid);
    expect(await earnings(app, c.key)).toBe(600);

    const other = await requestPayout(app, c.key, { credits: 500 }, "replay-me");
    expect(other.status).toBe(422);
    expect(other.body.error.code).toBe("idempotency_key_reused");
    const all = await requestPayout(app, c.key, undefined, "replay-me");
    expect(all.status).toBe(422);

    // The same key from another account is that account's own.
    const d = await creator(app, 400n);
    const theirs = await requestPayout(app, d.key, { credits: 400 }, "replay-me");
    expect(theirs.status).toBe(201);
    expect(theirs.body.id).not.toBe(first.body.id);

    expect(await usdcBalance(chain, c.address)).toBe(paid);
    expect((await payoutRows(app, c.account.id)).length).toBe(1);
    await expectMoneyInvariants(app.ctx);
  });

  it("pays out everything available when no amount is given", async () => {
    const c = await creator(app, 777n);
    const res = await requestPayout(app, c.key, undefined, "all-of-it");
    expect(res.status).toBe(201);
    expect(res.body.credits).toBe(777);
    expect(await usdcBalance(chain, c.address)).toBe(777n * UNITS);
    expect(await earnings(app, c.key)).toBe(0);
    // Nothing left: below the minimum.
    const none = await requestPayout(app, c.key, {}, "nothing-left");
    expect(none.status).toBe(422);
    expect(none.body.error).toMatchObject({ code: "payout_below_minimum", requested: 0 });
    await expectMoneyInvariants(app.ctx);
  });

  it("refuses bad input, amounts below the minimum and beyond the earnings, moving nothing", async () => {
    const c = await creator(app, 500n);
    const refused = async (body: unknown, status: number, code: string, key = newId("req")) => {
      const res = await requestPayout(app, c.key, body, key);
      expect(res.status, JSON.stringify(body)).toBe(status);
      expect(res.body.error.code, JSON.stringify(body)).toBe(code);
      return res.body.error;
    };
    expect(await refused({ credits: MIN - 1 }, 422, "payout_below_minimum")).toMatchObject({
      minimum: MIN,
      requested: MIN - 1,
    });
    expect(await refused({ credits: 600 }, 422, "insufficient_earnings")).toMatchObject({
      need: 600,
      have: 500,
    });
    for (const body of [
      { credits: 0 },
      { credits: -5 },
      { credits: 150.00005 },
      { credits: "150" },
      { credits: 150, to: "0x0000000000000000000000000000000000000001" },
      [150],
    ]) {
      await refused(body, 400, "invalid_request");
    }
    const noKey = await requestPayout(app, c.key, { credits: 150 });
    expect(noKey.status).toBe(400);
    expect(noKey.body.error.code).toBe("idempotency_key_required");
    await refused({ credits: 150 }, 400, "invalid_request", "has spaces in it");
    expect((await app.call("createPayout", { json: {} })).status).toBe(401);

    // A live key: this deployment has no treasury on live.
    const live = await createAccountWithKey(app.ctx, "live");
    const noTreasury = await requestPayout(app, live.key, {}, "live-1");
    expect(noTreasury.status).toBe(503);
    expect(noTreasury.body.error).toMatchObject({ code: "payouts_unavailable", network: "live" });

    // An account with no wallet has nowhere to be paid.
    const walletless = newId("acc");
    await app.ctx.db.insert(accounts).values({ id: walletless, createdAt: new Date() });
    const { key } = await createApiKey(
      app.ctx,
      { accountId: walletless },
      { name: "no wallet", network: "test" },
    );
    await earnRoyalties(app, key, 500n);
    const nowhere = await requestPayout(app, key, { credits: 200 }, "walletless");
    expect(nowhere.status).toBe(409);
    expect(nowhere.body.error.code).toBe("payout_wallet_missing");

    expect(await payoutRows(app, c.account.id)).toEqual([]);
    expect(await payoutRows(app, walletless)).toEqual([]);
    expect(await earnings(app, c.key)).toBe(500);
    expect(await usdcBalance(chain, c.address)).toBe(0n);
    await expectMoneyInvariants(app.ctx);
  });

  it("never overdraws under concurrent payouts of the same earnings", async () => {
    const c = await creator(app, 1000n);
    // Five payouts of 400 at once: two fit.
    const results = await Promise.all(
      Array.from({ length: 5 }, (_, i) => requestPayout(app, c.key, { credits: 400 }, `c-${i}`)),
    );
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([201, 201, 422, 422, 422]);
    for (const r of results.filter((r) => r.status === 422)) {
      expect(r.body.error.code).toBe("insufficient_earnings");
    }
    expect(await usdcBalance(chain, c.address)).toBe(800n * UNITS);
    expect(await earnings(app, c.key)).toBe(200);

    // Three payouts of "everything" at once: one takes the 200, the others find nothing.
    const all = await Promise.all(
      Array.from({ length: 3 }, (_, i) => requestPayout(app, c.key, undefined, `all-${i}`)),
    );
    expect(all.map((r) => r.status).sort()).toEqual([201, 422, 422]);
    expect(all.find((r) => r.status === 201)?.body.credits).toBe(200);
    expect(await usdcBalance(chain, c.address)).toBe(1000n * UNITS);

    // One key sent three times at once: one payout.
    const d = await creator(app, 300n);
    const same = await Promise.all(
      Array.from({ length: 3 }, () => requestPayout(app, d.key, { credits: 300 }, "same-key")),
    );
    expect(new Set(same.map((r) => r.body.id)).size).toBe(1);
    expect(same.every((r) => r.status === 201)).toBe(true);
    expect(await usdcBalance(chain, d.address)).toBe(300n * UNITS);

    expect(await earnings(app, c.key)).toBe(0);
    expect(await payoutTotals(app.ctx, { accountId: c.account.id, network: "test" })).toEqual({
      paidOut: creditUnits(1000n),
      pending: 0n,
    });
    await expectMoneyInvariants(app.ctx);
  });

  it("lists the caller's payouts newest first, a page at a time", async () => {
    const c = await creator(app, 900n);
    const ids: string[] = [];
    for (const i of [1, 2, 3]) {
      const res = await requestPayout(app, c.key, { credits: 300 }, `page-${i}`);
      expect(res.status).toBe(201);
      ids.push(res.body.id);
    }
    const first = await app.call("listPayouts", { query: { limit: 2 }, token: c.key });
    expect(first.body.data.map((p: { id: string }) => p.id)).toEqual([ids[2], ids[1]]);
    const next = await app.request(
      "GET",
      `/v1/profile/payouts?limit=2&cursor=${first.body.nextCursor}`,
      { token: c.key },
    );
    expect(next.body.data.map((p: { id: string }) => p.id)).toEqual([ids[0]]);
    expect(next.body.nextCursor).toBeNull();
    const bad = await app.call("listPayouts", { query: { cursor: "nope" }, token: c.key });
    expect(bad.status).toBe(400);
    // Someone else sees none of them.
    const other = await creator(app, 0n);
    const theirs = await app.call("listPayouts", { token: other.key });
    expect(theirs.body.data).toEqual([]);
  });
});

describe("a payout that cannot be made", () => {
  /** Same chain, its own treasury: a fresh wallet with no USDC (and no ETH) yet. */
  let poor: TestApp;
  const poorKey = generatePrivateKey();
  const poorTreasury = privateKeyToAccount(poorKey);
  /** An RPC that nothing listens on. */
  let unreachable: TestApp;

  beforeAll(async () => {
    poor = await startTestApp({
      env: {
        ...paymentEnv([chain]),
        PAYOUT_TEST_KEY: poorKey,
        PAYOUT_MIN_CREDITS: String(MIN),
        ROYALTY_PLATFORM_SHARE_BPS: "0",
      },
    });
    unreachable = await startTestApp({
      env: {
        ...paymentEnv([chain]),
        X402_TEST_RPC_URL: `http://127.0.0.1:${await freePort()}`,
        PAYOUT_TEST_KEY: localTreasuryKey(),
        PAYOUT_MIN_CREDITS: String(MIN),
        ROYALTY_PLATFORM_SHARE_BPS: "0",
      },
    });
  });

  afterAll(async () => {
    await poor?.close();
    await unreachable?.close();
  });

  it("fails when the treasury cannot cover it, leaves the earnings available, and a later payout succeeds", async () => {
    const c = await creator(poor, 300n);
    const res = await requestPayout(poor, c.key, { credits: 300 }, "too-soon");
    expect(res.status).toBe(502);
    expect(res.body.error.code).toBe("payout_failed");
    const payoutId = res.body.error.payoutId as string;
    expect(payoutId).toMatch(/^po_/);

    const listed = await poor.request("GET", "/v1/profile/payouts", { token: c.key });
    expect(listed.body.data[0]).toMatchObject({ id: payoutId, status: "failed", credits: 300 });
    expect(listed.body.data[0].failureReason).toBe(
      "the transfer would revert: the treasury cannot cover it",
    );
    expect(await earnings(poor, c.key)).toBe(300);
    expect(await usdcBalance(chain, c.address)).toBe(0n);
    expect((await getHold(poor.ctx, payoutId))?.status).toBe("voided");
    expect(await payoutTotals(poor.ctx, { accountId: c.account.id, network: "test" })).toEqual({
      paidOut: 0n,
      pending: 0n,
    });
    await expectMoneyInvariants(poor.ctx);

    // The same key is the same (failed) payout; it is not tried again.
    const again = await requestPayout(poor, c.key, { credits: 300 }, "too-soon");
    expect(again.status).toBe(502);
    expect(again.body.error.payoutId).toBe(payoutId);

    // The treasury gets USDC (and gas); a new request pays.
    await fundUsdc(chain, poorTreasury.address, 10_000n * UNITS);
    await chainClients(chain).testClient.setBalance({
      address: poorTreasury.address,
      value: 10n ** 18n,
    });
    const later = await requestPayout(poor, c.key, { credits: 300 }, "later");
    expect(later.status).toBe(201);
    expect(await usdcBalance(chain, c.address)).toBe(300n * UNITS);
    expect(await earnings(poor, c.key)).toBe(0);
    await expectMoneyInvariants(poor.ctx);
  });

  it("fails before anything is signed when the chain cannot be reached, leaving the earnings available", async () => {
    const c = await creator(unreachable, 500n);
    const res = await requestPayout(unreachable, c.key, { credits: 500 }, "offline");
    expect(res.status).toBe(502);
    expect(res.body.error.code).toBe("payout_failed");
    const payout = await getPayout(unreachable.ctx, res.body.error.payoutId);
    expect(payout).toMatchObject({
      status: "failed",
      txHash: null,
      failureReason: "the chain could not be reached",
    });
    // The RPC's address stays in the log.
    expect(res.body.error.message).not.toContain("127.0.0.1");
    expect(await earnings(unreachable, c.key)).toBe(500);
    expect(await usdcBalance(chain, c.address)).toBe(0n);
    await expectMoneyInvariants(unreachable.ctx);
  });

  it("never writes a treasury key to the logs", () => {
    for (const [target, key] of [
      [app, localTreasuryKey()],
      [poor, poorKey],
      [unreachable, localTreasuryKey()],
    ] as const) {
      const logs = target.logs.join("\n").toLowerCase();
      expect(logs).toContain("payout");
      expect(logs).not.toContain(key.slice(2).toLowerCase());
    }
  });
});

describe("reconciliation finishes payouts a crash left behind", () => {
  /** The treasury's key, used directly: what another program holding it could send. */
  const treasuryWallet = () =>
    createWalletClient({
      account: anvilAccount(LOCAL_ROLES.treasury),
      transport: http(chain.rpcUrl),
    });

  /** A reserved payout (hold placed, nothing signed), as a crash right after step 1 leaves it. */
  async function reserved(credits: bigint) {
    const c = await creator(app, credits);
    const { payout } = await reservePayout(
      app.ctx,
      { accountId: c.account.id, network: "test" },
      { credits: creditUnits(credits), idempotency: { key: newId("req"), hash: "test" } },
    );
    expect(payout.status).toBe("pending");
    return { c, payout };
  }

  /** Signs the payout's transfer and stores it as `broadcast`, as step 2 does, without sending. */
  async function signedNotSent(payout: Payout) {
    const t = treasuryFor(app.ctx.config, "test");
    const nonce = await nextNonce(t);
    const signed = await t.signTransfer({
      to: payout.toAddress as Address,
      amount: payout.usdcAmount,
      nonce,
    });
    await markBroadcast(payout.id, signed.hash, nonce, signed.raw);
    return { ...signed, nonce };
  }

  async function markBroadcast(id: string, hash: Hash, nonce: number, raw: Hex) {
    await app.ctx.db.execute(sql`
      update payouts set status = 'broadcast', tx_hash = ${hash}, nonce = ${nonce},
             raw_transaction = ${raw}, broadcast_at = now(),
             -- a moment ago: the database's microseconds never land after the process's
             -- millisecond clock that reconciliation compares them with
             updated_at = now() - interval '1 second'
      where id = ${id}`);
  }

  const reconcile = () => reconcilePayouts(app.ctx, { olderThanMs: 0 });

  it("pays a payout whose transaction was sent and mined before the crash", async () => {
    const { c, payout } = await reserved(250n);
    const signed = await signedNotSent(payout);
    const { publicClient } = chainClients(chain);
    const hash = await publicClient.sendRawTransaction({ serializedTransaction: signed.raw });
    // Mined before the "crash": wait for its receipt rather than assume the node mined it at once.
    await publicClient.waitForTransactionReceipt({ hash, timeout: 20_000 });
    expect(await usdcBalance(chain, c.address)).toBe(250n * UNITS);
    expect(await earnings(app, c.key)).toBe(0);

    const results = await reconcile();
    expect(results).toContainEqual({ payoutId: payout.id, status: "paid" });
    const [post] = await postTransferOf(app, payout.id);
    expect(post?.reference).toBe(signed.hash);
    // Paid once: reconciling again changes nothing.
    await reconcile();
    expect(await usdcBalance(chain, c.address)).toBe(250n * UNITS);
    expect(await earnings(app, c.key)).toBe(0);
    await expectMoneyInvariants(app.ctx);
  });

  it("sends the very same signed transaction when the crash came between storing and sending it", async () => {
    const { c, payout } = await reserved(260n);
    const signed = await signedNotSent(payout);
    expect(await usdcBalance(chain, c.address)).toBe(0n);

    await reconcile();
    const after = await getPayout(app.ctx, payout.id);
    expect(after).toMatchObject({ status: "paid", txHash: signed.hash });
    expect(await usdcBalance(chain, c.address)).toBe(260n * UNITS);
    await expectMoneyInvariants(app.ctx);
  });

  it("signs and sends a payout the crash left before signing", async () => {
    const { c, payout } = await reserved(270n);
    await reconcile();
    expect((await getPayout(app.ctx, payout.id))?.status).toBe("paid");
    expect(await usdcBalance(chain, c.address)).toBe(270n * UNITS);
    await expectMoneyInvariants(app.ctx);
  });

  it("fails a payout whose nonce another transaction took, returning the earnings and sending nothing", async () => {
    const { c, payout } = await reserved(280n);
    const signed = await signedNotSent(payout);
    // Something else is mined at that nonce first: the payout's transaction can never be.
    const other = await treasuryWallet().sendTransaction({
      to: treasury,
      value: 0n,
      nonce: signed.nonce,
      chain: null,
    });
    await chainClients(chain).publicClient.waitForTransactionReceipt({ hash: other });

    await reconcile();
    const after = await getPayout(app.ctx, payout.id);
    expect(after?.status).toBe("failed");
    expect(after?.failureReason).toBe(
      `its nonce (${signed.nonce}) was used by another transaction`,
    );
    expect(await usdcBalance(chain, c.address)).toBe(0n);
    expect(await earnings(app, c.key)).toBe(280);
    await expectMoneyInvariants(app.ctx);
  });

  it("fails a payout whose transaction reverted on chain, returning the earnings", async () => {
    const { c, payout } = await reserved(290n);
    // A transfer of more USDC than the treasury has, with its gas set so nothing refuses it
    // before it is mined: it reverts on chain.
    const t = treasuryFor(app.ctx.config, "test");
    const nonce = await nextNonce(t);
    const { publicClient } = chainClients(chain);
    const wallet = treasuryWallet();
    const request = await wallet.prepareTransactionRequest({
      chain: null,
      to: USDC.test.address,
      data: encodeFunctionData({
        abi: erc20Abi,
        functionName: "transfer",
        args: [c.address, 10n ** 30n],
      }),
      gas: 100_000n,
      nonce,
    });
    const raw = await wallet.signTransaction({ ...request, chain: null });
    const hash = await publicClient.sendRawTransaction({ serializedTransaction: raw });
    expect((await publicClient.waitForTransactionReceipt({ hash })).status).toBe("reverted");
    await markBroadcast(payout.id, hash, nonce, raw);

    await reconcile();
    const after = await getPayout(app.ctx, payout.id);
    expect(after?.status).toBe("failed");
    expect(after?.failureReason).toMatch(/reverted/);
    expect(await earnings(app, c.key)).toBe(290);
    expect(await usdcBalance(chain, c.address)).toBe(0n);
    await expectMoneyInvariants(app.ctx);
  });

  it("fails a payout whose transaction the node refuses when it is sent again, returning the earnings", async () => {
    const { c, payout } = await reserved(295n);
    await signedNotSent(payout);
    // The treasury has no ETH left for gas when reconciliation sends the stored transaction.
    const { publicClient, testClient } = chainClients(chain);
    const gas = await publicClient.getBalance({ address: treasury });
    await testClient.setBalance({ address: treasury, value: 0n });
    try {
      await reconcile();
    } finally {
      await testClient.setBalance({ address: treasury, value: gas });
    }
    const after = await getPayout(app.ctx, payout.id);
    expect(after).toMatchObject({
      status: "failed",
      failureReason: "the chain refused the transaction",
    });
    expect(await earnings(app, c.key)).toBe(295);
    expect(await usdcBalance(chain, c.address)).toBe(0n);
    // Never sent again: reconciliation leaves failed payouts alone.
    await reconcile();
    expect(await usdcBalance(chain, c.address)).toBe(0n);
    await expectMoneyInvariants(app.ctx);
  });

  it("leaves a payout broadcast while the chain cannot say what became of it", async () => {
    const { c, payout } = await reserved(296n);
    const signed = await signedNotSent(payout);
    // Reconciliation in a process whose RPC is down decides nothing.
    const offline = {
      ...app.ctx,
      config: {
        ...app.ctx.config,
        payments: {
          ...app.ctx.config.payments,
          networks: {
            test: {
              ...(app.ctx.config.payments.networks.test as NonNullable<
                typeof app.ctx.config.payments.networks.test
              >),
              rpcUrl: `http://127.0.0.1:${await freePort()}`,
            },
          },
        },
      },
    };
    await reconcilePayouts(offline, { olderThanMs: 0 });
    expect(await getPayout(app.ctx, payout.id)).toMatchObject({
      status: "broadcast",
      txHash: signed.hash,
    });
    expect((await getHold(app.ctx, payout.id))?.status).toBe("pending");
    expect(await earnings(app, c.key)).toBe(0);
    // Once the chain answers, the same transaction is sent and paid.
    await reconcile();
    expect((await getPayout(app.ctx, payout.id))?.status).toBe("paid");
    expect(await usdcBalance(chain, c.address)).toBe(296n * UNITS);
    await expectMoneyInvariants(app.ctx);
  });

  it("never lets the hold sweeper void a payout hold, however old", async () => {
    const { c, payout } = await reserved(300n);
    await signedNotSent(payout);
    app.clock.advance(2 * 365 * 24 * 3600_000);
    try {
      await expireHolds(app.ctx);
      expect((await getHold(app.ctx, payout.id))?.status).toBe("pending");
      expect(await earnings(app, c.key)).toBe(0);
      expect(await payoutTotals(app.ctx, { accountId: c.account.id, network: "test" })).toEqual({
        paidOut: 0n,
        pending: creditUnits(300n),
      });
      await reconcile();
      expect((await getPayout(app.ctx, payout.id))?.status).toBe("paid");
      expect(await usdcBalance(chain, c.address)).toBe(300n * UNITS);
    } finally {
      app.clock.advance(-2 * 365 * 24 * 3600_000);
    }
    await expectMoneyInvariants(app.ctx);
  });

  it("runs as the payouts_reconcile task of the worker's crontab", async () => {
    expect(crontab).toContain("payouts_reconcile");
    const { c, payout } = await reserved(320n);
    // A minute later, nobody is handling it any more.
    app.clock.advance(2 * 60_000);
    try {
      await app.ctx.pool.query("select graphile_worker.add_job('payouts_reconcile', '{}'::json)");
      await runOnce({
        pgPool: app.ctx.pool,
        taskList: taskList(app.ctx),
        logger: graphileLogger(app.ctx.logger),
      });
    } finally {
      app.clock.advance(-2 * 60_000);
    }
    expect((await getPayout(app.ctx, payout.id))?.status).toBe("paid");
    expect(await usdcBalance(chain, c.address)).toBe(320n * UNITS);
    await expectMoneyInvariants(app.ctx);
  });

  it("leaves payouts another request is still handling to that request", async () => {
    const { payout } = await reserved(310n);
    const results = await reconcilePayouts(app.ctx);
    expect(results.map((r) => r.payoutId)).not.toContain(payout.id);
    expect((await getPayout(app.ctx, payout.id))?.status).toBe("pending");
    await reconcile();
    expect((await getPayout(app.ctx, payout.id))?.status).toBe("paid");
    await expectMoneyInvariants(app.ctx);
  });
});
