import { randomBytes } from "node:crypto";
import { sql } from "drizzle-orm";
import { getAddress } from "viem";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { USDC } from "../../src/chain/networks.js";
import { userLedgerAccount } from "../../src/domains/ledger/accounts.js";
import { packs } from "../../src/domains/ledger/packs.js";
import { grantCredits, transfer } from "../../src/domains/ledger/service.js";
import { applySettledPayment, claimPayment } from "../../src/domains/payments/service.js";
import { creditUnits } from "../../src/lib/credits.js";
import { newId } from "../../src/lib/ids.js";
import { createAccountWithKey, startTestApp, type TestApp } from "../helpers/app.js";
import { runCli } from "../helpers/cli.js";
import { earnRoyalties } from "../helpers/creators.js";
import { expectMoneyInvariants } from "../helpers/ledger.js";

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(() => app.close());
afterEach(() => expectMoneyInvariants(app.ctx));

const grant = (ownerId: string, credits: bigint, network: "test" | "live" = "test") =>
  grantCredits(app.ctx, {
    id: newId("grant"),
    ownerId,
    network,
    amount: creditUnits(credits),
    reason: "test grant",
  });

/** A pack bought as the payments domain records one (its chain side is tested elsewhere). */
async function buyPack(
  ownerId: string,
  pack: "starter" | "creator" | "pro",
  credits: bigint,
  network: "test" | "live" = "test",
) {
  const hex = (bytes: number) => `0x${randomBytes(bytes).toString("hex")}`;
  const payment = await claimPayment(app.ctx, {
    network,
    accountId: ownerId,
    payer: getAddress(hex(20)),
    payTo: getAddress(hex(20)),
    asset: USDC[network].address,
    nonce: hex(32),
    amount: packs[pack].priceUsdCents * 10_000n,
    credits: creditUnits(credits),
    purpose: "pack",
    pack,
    validBefore: new Date(Date.now() + 60_000),
  });
  await applySettledPayment(app.ctx, { paymentId: payment.id, transaction: hex(32) });
}

describe("GET /v1/balance", () => {
  it("reports the key's network only, with held credits and the tier from the best pack", async () => {
    const { key, account } = await createAccountWithKey(app.ctx, "test");
    const empty = await app.call("getBalance", { token: key });
    expect(empty.body).toEqual({
      creditBalance: 0,
      heldCredits: 0,
      earnings: 0,
      membershipTier: "free",
      network: "test",
    });

    await buyPack(account.id, "starter", 1000n);
    expect((await app.call("getBalance", { token: key })).body.membershipTier).toBe("free");
    await buyPack(account.id, "pro", 6000n);
    await buyPack(account.id, "creator", 3000n);
    await buyPack(account.id, "pro", 6000n, "live"); // another network's purchase
    const reserved = await app.call("reserveCredits", {
      token: key,
      json: { credits: 500 },
    });
    expect(reserved.status).toBe(201);
    expect((await app.call("getBalance", { token: key })).body).toEqual({
      creditBalance: 9500,
      heldCredits: 500,
      earnings: 0,
      membershipTier: "pro",
      network: "test",
    });

    // The same account seen through a live key: only live.
    const { createApiKey } = await import("../../src/domains/keys/service.js");
    const live = await createApiKey(
      app.ctx,
      { accountId: account.id },
      { name: "live", network: "live" },
    );
    expect((await app.call("getBalance", { token: live.key })).body).toEqual({
      creditBalance: 6000,
      heldCredits: 0,
      earnings: 0,
      membershipTier: "pro",
      network: "live",
    });
    await app.call("settleReservation", {
      token: key,
      json: { reservationId: reserved.body.reservationId },
    });
  });

  it("needs an API key", async () => {
    expect((await app.call("getBalance")).body.error.code).toBe("missing_api_key");
  });
});

describe("GET /v1/transactions", () => {
  it("lists the caller's entries newest first, signed, with balance after, paginated by cursor", async () => {
    const { key, account } = await createAccountWithKey(app.ctx, "test");
    for (let i = 1; i <= 5; i++) await grant(account.id, BigInt(i * 10));
    const reserved = await app.call("reserveCredits", {
      token: key,
      json: { credits: 40 },
    });
    await app.call("settleReservation", {
      token: key,
      json: { reservationId: reserved.body.reservationId },
    });

    const all = await app.call("listTransactions", { query: { limit: "100" }, token: key });
    expect(all.status).toBe(200);
    expect(
      all.body.data.map((e: { kind: string; amount: number; balanceAfter: number }) => [
        e.kind,
        e.amount,
        e.balanceAfter,
      ]),
    ).toEqual([
      ["hold_release", 40, 150],
      ["hold", -40, 110],
      ["grant", 50, 150],
      ["grant", 40, 100],
      ["grant", 30, 60],
      ["grant", 20, 30],
      ["grant", 10, 10],
    ]);
    expect(all.body.nextCursor).toBeNull();
    expect(all.body.data[2]).toMatchObject({ account: "credits", reference: "test grant" });

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = `/v1/transactions?limit=3${cursor ? `&cursor=${cursor}` : ""}`;
      const page = await app.request("GET", query, { token: key });
      expect(page.body.data.length).toBeLessThanOrEqual(3);
      seen.push(...page.body.data.map((e: { id: string }) => e.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual(all.body.data.map((e: { id: string }) => e.id));

    const grants = await app.call("listTransactions", { query: "kind=grant&limit=2", token: key });
    expect(grants.body.data.map((e: { amount: number }) => e.amount)).toEqual([50, 40]);
  });

  it("shows nothing of another account or another network", async () => {
    const a = await createAccountWithKey(app.ctx, "test");
    const b = await createAccountWithKey(app.ctx, "test");
    await grant(b.account.id, 10n);
    await grant(a.account.id, 7n, "live");
    expect((await app.call("listTransactions", { token: a.key })).body.data).toEqual([]);
  });

  it("pages through two entries of one transfer (credits to earnings) without losing either", async () => {
    const { key, account } = await createAccountWithKey(app.ctx, "test");
    await grant(account.id, 30n);
    await transfer(app.ctx, {
      id: newId("grant"),
      network: "test",
      debit: userLedgerAccount(account.id, "test", "credits"),
      credit: userLedgerAccount(account.id, "test", "earnings"),
      amount: creditUnits(10n),
      kind: "transfer",
    });
    const seen: Array<[string, number]> = [];
    let cursor: string | null = null;
    do {
      const page = await app.request(
        "GET",
        `/v1/transactions?limit=1${cursor ? `&cursor=${cursor}` : ""}`,
        { token: key },
      );
      seen.push(
        ...page.body.data.map(
          (e: { account: string; amount: number }) => [e.account, e.amount] as [string, number],
        ),
      );
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual([
      ["earnings", 10],
      ["credits", -10],
      ["credits", 30],
    ]);
  });

  it("rejects a bad cursor, limit or kind with 400", async () => {
    const { key } = await createAccountWithKey(app.ctx, "test");
    const huge = Buffer.from(`s${"9".repeat(19)}.0`).toString("base64url");
    for (const query of [
      "cursor=nope",
      `cursor=${huge}`,
      "limit=0",
      "limit=101",
      "kind=theft",
      "extra=1",
    ]) {
      const res = await app.call("listTransactions", { query, token: key });
      expect(res.status, query).toBe(400);
      expect(res.body.error.code).toBe("invalid_request");
    }
  });
});

describe("batch studio", () => {
  it("reserves, refuses a short balance with 402 need/have, and settles once", async () => {
    const { key, account } = await createAccountWithKey(app.ctx, "test");
    await grant(account.id, 100n);
    const short = await app.call("reserveCredits", {
      token: key,
      json: { credits: 101 },
    });
    expect(short.status).toBe(402);
    expect(short.body.error).toMatchObject({ code: "insufficient_credits", need: 101, have: 100 });

    const reserved = await app.call("reserveCredits", {
      token: key,
      json: { credits: 60, expiresInSeconds: 600 },
    });
    expect(reserved.status).toBe(201);
    expect(reserved.body).toMatchObject({
      status: "active",
      reservedCredits: 60,
      availableCredits: 60,
      usedCredits: 0,
      network: "test",
    });
    expect(reserved.body.reservationId).toMatch(/^res_/);

    const settled = await app.call("settleReservation", {
      token: key,
      json: { reservationId: reserved.body.reservationId },
    });
    expect(settled.status).toBe(200);
    expect(settled.body).toMatchObject({
      status: "settled",
      returnedCredits: 60,
      availableCredits: 0,
    });
    const again = await app.call("settleReservation", {
      token: key,
      json: { reservationId: reserved.body.reservationId },
    });
    expect(again.body).toEqual(settled.body);
    expect((await app.call("getBalance", { token: key })).body.creditBalance).toBe(100);
  });

  it("reserves once for one Idempotency-Key", async () => {
    const { key, account } = await createAccountWithKey(app.ctx, "test");
    await grant(account.id, 100n);
    const send = () =>
      app.call("reserveCredits", {
        token: key,
        json: { credits: 30 },
        headers: { "idempotency-key": "batch-7" },
      });
    const first = await send();
    const again = await send();
    expect(again.body.reservationId).toBe(first.body.reservationId);
    expect((await app.call("getBalance", { token: key })).body).toMatchObject({
      creditBalance: 70,
      heldCredits: 30,
    });
    await app.call("settleReservation", {
      token: key,
      json: { reservationId: first.body.reservationId },
    });
  });

  it("keeps reservations to their owner and network", async () => {
    const owner = await createAccountWithKey(app.ctx, "test");
    await grant(owner.account.id, 100n);
    const reserved = await app.call("reserveCredits", {
      token: owner.key,
      json: { credits: 10 },
    });
    const stranger = await createAccountWithKey(app.ctx, "test");
    const theirs = await app.call("settleReservation", {
      token: stranger.key,
      json: { reservationId: reserved.body.reservationId },
    });
    expect(theirs.status).toBe(404);
    const { createApiKey } = await import("../../src/domains/keys/service.js");
    const live = await createApiKey(
      app.ctx,
      { accountId: owner.account.id },
      { name: "live", network: "live" },
    );
    const otherWorld = await app.call("settleReservation", {
      token: live.key,
      json: { reservationId: reserved.body.reservationId },
    });
    expect(otherWorld.status).toBe(404);
    await app.call("settleReservation", {
      token: owner.key,
      json: { reservationId: reserved.body.reservationId },
    });
  });

  it("validates its input", async () => {
    const { key } = await createAccountWithKey(app.ctx, "test");
    for (const json of [
      {},
      { credits: 0 },
      { credits: 1.00005 },
      { credits: "10" },
      { credits: 10, expiresInSeconds: 5 },
    ]) {
      const res = await app.call("reserveCredits", { token: key, json });
      expect(res.status, JSON.stringify(json)).toBe(400);
    }
    expect(
      (
        await app.call("settleReservation", {
          token: key,
          json: { reservationId: "res_nope" },
        })
      ).status,
    ).toBe(404);
  });
});

describe("operators", () => {
  it("grant credits from the CLI, once per id, with the reason recorded", async () => {
    const { key, account } = await createAccountWithKey(app.ctx, "test");
    const args = [
      "credits",
      "grant",
      "--account",
      account.id,
      "--network",
      "test",
      "--credits",
      "250",
      "--reason",
      "support ticket 42",
      "--id",
      `ops-${account.id}`,
    ];
    const first = await runCli(args, { DATABASE_URL: app.database.url });
    expect(first.stderr).toBe("");
    expect(JSON.parse(first.stdout)).toMatchObject({
      credits: 250,
      creditBalance: 250,
      replayed: false,
    });
    const again = await runCli(args, { DATABASE_URL: app.database.url });
    expect(JSON.parse(again.stdout)).toMatchObject({ creditBalance: 250, replayed: true });
    const entries = await app.call("listTransactions", { token: key });
    expect(entries.body.data).toEqual([
      expect.objectContaining({ kind: "grant", amount: 250, reference: "support ticket 42" }),
    ]);

    const bad = await runCli(
      [
        "credits",
        "grant",
        "--account",
        account.id,
        "--network",
        "test",
        "--credits",
        "-5",
        "--reason",
        "x",
      ],
      { DATABASE_URL: app.database.url },
    );
    expect(bad.code).toBe(1);
    const check = await runCli(["ledger", "check"], { DATABASE_URL: app.database.url });
    expect(check.code).toBe(0);
    expect(JSON.parse(check.stdout)).toEqual({ ok: true, violations: [] });
  });

  it("ledger check runs the royalty invariants too: a use charged at another fee exits 1", async () => {
    const { key: creatorKey } = await createAccountWithKey(app.ctx, "test");
    await earnRoyalties(app, creatorKey, 40n);
    const ok = await runCli(["ledger", "check"], { DATABASE_URL: app.database.url });
    expect(JSON.parse(ok.stdout)).toEqual({ ok: true, violations: [] });
    // Broken behind the services' back: only the royalty invariants see it.
    const { rows } = await app.ctx.db.execute<{ result_id: string }>(sql`
      update pass_uses set fee = fee + 10000
      where result_id = (select result_id from pass_uses order by created_at desc limit 1)
      returning result_id`);
    expect(rows).toHaveLength(1);
    try {
      const check = await runCli(["ledger", "check"], { DATABASE_URL: app.database.url });
      expect(check.code).toBe(1);
      expect(JSON.parse(check.stdout)).toEqual({
        ok: false,
        violations: [
          expect.stringMatching(/^result .* a use at fee 410000 where 400000 was quoted$/),
        ],
      });
    } finally {
      // Put back, so the file's closing invariants check the rest.
      await app.ctx.db.execute(sql`
        update pass_uses set fee = fee - 10000 where result_id = ${rows[0]?.result_id}`);
    }
  }, 90_000); // two CLI processes, each opening the database
});
