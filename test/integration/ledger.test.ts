import { drizzle } from "drizzle-orm/node-postgres";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { findOrCreateWalletAccount } from "../../src/domains/accounts/service.js";
import { systemLedgerAccount, userLedgerAccount } from "../../src/domains/ledger/accounts.js";
import { TransferBatcher } from "../../src/domains/ledger/batcher.js";
import { checkLedgerInvariants } from "../../src/domains/ledger/invariants.js";
import {
  expireHolds,
  getBalance,
  getHold,
  grantCredits,
  placeHold,
  postHold,
  transfer,
  voidHold,
} from "../../src/domains/ledger/service.js";
import { AppError } from "../../src/errors.js";
import { newId } from "../../src/lib/ids.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { expectMoneyInvariants } from "../helpers/ledger.js";

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(() => app.close());
afterEach(() => expectMoneyInvariants(app.ctx));

async function fundedOwner(credits: bigint, network: "test" | "live" = "test") {
  const owner = await findOrCreateWalletAccount(
    app.ctx,
    privateKeyToAccount(generatePrivateKey()).address,
  );
  if (credits > 0n) {
    await grantCredits(app.ctx, {
      id: newId("grant"),
      ownerId: owner.id,
      network,
      amount: credits,
      reason: "test",
    });
  }
  return owner.id;
}

const grant = (ownerId: string, credits: bigint) =>
  grantCredits(app.ctx, {
    id: newId("grant"),
    ownerId,
    network: "test",
    amount: credits,
    reason: "test",
  });

const balanceOf = async (ownerId: string, network: "test" | "live" = "test") =>
  (await getBalance(app.ctx, ownerId, network)).creditBalance;

const spend = (ownerId: string, amount: bigint, id = newId("grant")) =>
  transfer(app.ctx, {
    id,
    network: "test",
    debit: userLedgerAccount(ownerId, "test"),
    credit: systemLedgerAccount("test", "revenue"),
    amount,
    kind: "spend",
  });

const later = (seconds: number) => new Date(app.clock.now().getTime() + seconds * 1000);

describe("transfers", () => {
  it("are idempotent by id: same fields replay, other fields conflict", async () => {
    const owner = await fundedOwner(100n);
    const first = await spend(owner, 30n, "spend-1");
    expect(first.replayed).toBe(false);
    expect(first.debitBalanceAfter).toBe(70n);
    const again = await spend(owner, 30n, "spend-1");
    expect(again.replayed).toBe(true);
    expect(again.seq).toBe(first.seq);
    expect(await balanceOf(owner)).toBe(70n);
    await expect(spend(owner, 31n, "spend-1")).rejects.toMatchObject({
      code: "idempotency_conflict",
      status: 409,
    });
    expect(await balanceOf(owner)).toBe(70n);
  });

  it("refuse an overdraft with insufficient_credits, need and have, and change nothing", async () => {
    const owner = await fundedOwner(12n);
    const err = await spend(owner, 24n).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect(err).toMatchObject({
      code: "insufficient_credits",
      status: 402,
      // Amounts here are ledger units; errors speak credits (1 unit = 0.0001 credit).
      details: { need: 0.0024, have: 0.0012 },
    });
    expect((err as AppError).message).toBe("Insufficient credits. Need 0.0024, have 0.0012.");
    expect(await balanceOf(owner)).toBe(12n);
  });

  it("refuse zero, negative and cross-network transfers", async () => {
    const owner = await fundedOwner(10n);
    await expect(spend(owner, 0n)).rejects.toMatchObject({ code: "invalid_request" });
    await expect(spend(owner, -5n)).rejects.toMatchObject({ code: "invalid_request" });
    // Through the service, naming a live account on a test transfer…
    await expect(
      transfer(app.ctx, {
        id: newId("grant"),
        network: "test",
        debit: userLedgerAccount(owner, "test"),
        credit: systemLedgerAccount("live", "revenue"),
        amount: 1n,
        kind: "spend",
      }),
    ).rejects.toMatchObject({ code: "invalid_request" });
    // …and straight in SQL: the database itself refuses.
    await expect(
      app.ctx.pool.query(
        `insert into ledger_transfers (id, network, debit_account_id, credit_account_id, amount, kind)
         values ('x-net', 'live', $1, 'revenue:live', 1, 'spend')`,
        [userLedgerAccount(owner, "test")],
      ),
    ).rejects.toMatchObject({ code: "23503" });
    await expect(
      app.ctx.pool.query(
        `insert into ledger_transfers (id, network, debit_account_id, credit_account_id, amount, kind)
         values ('neg', 'test', 'issuance:test', $1, -5, 'grant')`,
        [userLedgerAccount(owner, "test")],
      ),
    ).rejects.toMatchObject({ code: "23514" });
    expect(await balanceOf(owner)).toBe(10n);
  });

  it("are append-only, and balances move only through transfers — enforced by PostgreSQL", async () => {
    const owner = await fundedOwner(10n);
    const account = userLedgerAccount(owner, "test");
    await expect(
      app.ctx.pool.query("update ledger_transfers set amount = 1 where credit_account_id = $1", [
        account,
      ]),
    ).rejects.toMatchObject({ code: "23001" });
    await expect(
      app.ctx.pool.query("delete from ledger_transfers where credit_account_id = $1", [account]),
    ).rejects.toMatchObject({ code: "23001" });
    await expect(app.ctx.pool.query("truncate ledger_transfers cascade")).rejects.toMatchObject({
      code: "23001",
    });
    await expect(
      app.ctx.pool.query("update ledger_accounts set balance = 1000000 where id = $1", [account]),
    ).rejects.toMatchObject({ code: "23001" });
    await expect(
      app.ctx.pool.query("delete from ledger_accounts where id = $1", [account]),
    ).rejects.toMatchObject({ code: "23001" });
    // Even a trigger-free path cannot push a user balance below zero.
    await expect(
      app.ctx.pool.query(
        `insert into ledger_transfers (id, network, debit_account_id, credit_account_id, amount, kind)
         values ('raw-overdraft', 'test', $1, 'revenue:test', 11, 'spend')`,
        [account],
      ),
    ).rejects.toMatchObject({ code: "23514" });
    expect(await balanceOf(owner)).toBe(10n);
  });

  it("hold under 200 concurrent debits of random size: never negative, successes add up exactly", async () => {
    const owner = await fundedOwner(5_000n);
    // Deterministic sizes 1–59 adding up to more than the 5,000 available.
    const amounts = Array.from({ length: 200 }, (_, i) => BigInt(1 + ((i * 37) % 59)));
    expect(amounts.reduce((a, b) => a + b, 0n)).toBeGreaterThan(5_000n);
    const results = await Promise.allSettled(
      amounts.map((amount) => spend(owner, amount, newId("grant"))),
    );
    let spent = 0n;
    results.forEach((r, i) => {
      if (r.status === "fulfilled") spent += amounts[i] as bigint;
      else expect(r.reason).toMatchObject({ code: "insufficient_credits" });
    });
    const refused = results.filter((r) => r.status === "rejected").length;
    expect(refused).toBeGreaterThan(0); // the draw asked for more than there was
    expect(await balanceOf(owner)).toBe(5_000n - spent);
    expect(spent).toBeLessThanOrEqual(5_000n);
    // Every success left a consistent running balance.
    const { rows } = await app.ctx.pool.query(
      "select amount, debit_balance_after from ledger_transfers where debit_account_id = $1 order by seq",
      [userLedgerAccount(owner, "test")],
    );
    let running = 5_000n;
    for (const row of rows) {
      running -= BigInt(row.amount);
      expect(BigInt(row.debit_balance_after)).toBe(running);
      expect(running).toBeGreaterThanOrEqual(0n);
    }
  });
});

describe("transfers under concurrency", () => {
  it("report a retry of a transfer another transaction was committing as a replay, not a shortfall", async () => {
    const owner = await fundedOwner(100n);
    const input = {
      id: newId("grant"),
      network: "test" as const,
      debit: userLedgerAccount(owner, "test"),
      credit: systemLedgerAccount("test", "revenue"),
      amount: 60n,
      kind: "spend" as const,
    };
    const client = await app.ctx.pool.connect();
    try {
      await client.query("begin");
      await transfer({ ...app.ctx, db: drizzle(client) as never }, input);
      const retry = transfer(app.ctx, input); // blocks on the account row until the first commits
      await new Promise((r) => setTimeout(r, 100));
      await client.query("commit");
      expect((await retry).replayed).toBe(true);
    } finally {
      client.release();
    }
    expect(await balanceOf(owner)).toBe(40n);
  });

  it("create a new account once when several first transfers race for it", async () => {
    const owners = await Promise.all(Array.from({ length: 30 }, () => fundedOwner(0n)));
    const results = await Promise.allSettled(
      owners.flatMap((owner) => [1, 2, 3].map(() => grant(owner, 5n))),
    );
    expect(
      results
        .filter((r) => r.status === "rejected")
        .map((r) => String((r as PromiseRejectedResult).reason)),
    ).toEqual([]);
    for (const owner of owners) expect(await balanceOf(owner)).toBe(15n);
  });

  it("refuse balance edits and hand-made accounts, even with the guard's old switch set", async () => {
    const owner = await fundedOwner(10n);
    const client = await app.ctx.pool.connect();
    try {
      await client.query("select set_config('polyforge.ledger_applying', 'on', false)");
      await expect(
        client.query("update ledger_accounts set balance = 999 where id = $1", [
          userLedgerAccount(owner, "test"),
        ]),
      ).rejects.toMatchObject({ code: "23001" });
    } finally {
      await client.query("reset all");
      client.release();
    }
    const other = await fundedOwner(0n);
    await expect(
      app.ctx.pool.query(
        "insert into ledger_accounts (id, network, kind, owner_id, balance) values ($1, 'test', 'credits', $2, 1000000)",
        [`credits:test:${other}x`, other],
      ),
    ).rejects.toMatchObject({ code: "23514" });
    await expect(
      app.ctx.pool.query(
        "insert into ledger_accounts (id, network, kind, owner_id, balance) values ($1, 'live', 'credits', $2, 0)",
        [`credits:test:${other}`, other],
      ),
    ).rejects.toMatchObject({ code: "23514" });
  });
});

describe("batched transfers (group commit)", () => {
  it("run two batchers over the same accounts at once without deadlock", async () => {
    const owners = await Promise.all(Array.from({ length: 5 }, () => fundedOwner(1_000n)));
    const batchers = [new TransferBatcher(app.ctx), new TransferBatcher(app.ctx)];
    const results = await Promise.allSettled(
      Array.from({ length: 400 }, (_, i) =>
        (batchers[i % 2] as TransferBatcher).submit({
          id: newId("grant"),
          network: "test",
          debit: userLedgerAccount(owners[(i * 7) % 5] as string, "test"),
          credit: userLedgerAccount(owners[(i * 3 + 1) % 5] as string, "test"),
          amount: 1n,
          kind: "transfer",
        }),
      ),
    );
    const ok = results.filter((r) => r.status === "fulfilled").length;
    const same = Array.from({ length: 400 }, (_, i) => (i * 7) % 5 === (i * 3 + 1) % 5).filter(
      Boolean,
    ).length;
    expect(ok).toBe(400 - same); // a transfer to itself is refused; every other one went through
  });

  it("hold under 200 concurrent debits through the batcher, each succeeding or failing alone", async () => {
    const owner = await fundedOwner(3_000n);
    const batcher = new TransferBatcher(app.ctx);
    const amounts = Array.from({ length: 200 }, (_, i) => BigInt(1 + ((i * 7) % 39)));
    const results = await Promise.allSettled(
      amounts.map((amount) =>
        batcher.submit({
          id: newId("grant"),
          network: "test",
          debit: userLedgerAccount(owner, "test"),
          credit: systemLedgerAccount("test", "revenue"),
          amount,
          kind: "spend",
        }),
      ),
    );
    let spent = 0n;
    results.forEach((r, i) => {
      if (r.status === "fulfilled") spent += amounts[i] as bigint;
      else expect(r.reason).toMatchObject({ code: "insufficient_credits" });
    });
    expect(results.some((r) => r.status === "rejected")).toBe(true);
    expect(await balanceOf(owner)).toBe(3_000n - spent);
  });

  it("does not let one broken transfer fail its batch-mates, and replays duplicate ids", async () => {
    const owner = await fundedOwner(100n);
    const batcher = new TransferBatcher(app.ctx, { maxBatch: 50, maxInFlight: 1 });
    const good = (id: string, amount = 5n) =>
      batcher.submit({
        id,
        network: "test",
        debit: userLedgerAccount(owner, "test"),
        credit: systemLedgerAccount("test", "revenue"),
        amount,
        kind: "spend",
      });
    const results = await Promise.allSettled([
      good("batch-a"),
      batcher.submit({
        id: "batch-bad",
        network: "test",
        debit: "credits:test:acc_nobody",
        credit: "revenue:test",
        amount: 1n,
        kind: "spend",
      }),
      good("batch-b"),
      good("batch-a"),
      good("batch-a", 6n),
      good("batch-c", 0n),
    ]);
    expect(results.map((r) => r.status)).toEqual([
      "fulfilled",
      "rejected",
      "fulfilled",
      "fulfilled",
      "rejected",
      "rejected",
    ]);
    expect((results[3] as PromiseFulfilledResult<{ replayed: boolean }>).value.replayed).toBe(true);
    expect((results[4] as PromiseRejectedResult).reason).toMatchObject({
      code: "idempotency_conflict",
    });
    expect((results[5] as PromiseRejectedResult).reason).toMatchObject({ code: "invalid_request" });
    expect(await balanceOf(owner)).toBe(90n);
  });
});

describe("holds", () => {
  it("post part, release the rest, exactly once; a replay returns the same result", async () => {
    const owner = await fundedOwner(100n);
    const holdId = newId("res");
    const { hold } = await placeHold(app.ctx, {
      id: holdId,
      network: "test",
      ownerId: owner,
      amount: 40n,
      expiresAt: later(60),
      kind: "generation",
    });
    expect(hold).toMatchObject({ status: "pending", amount: 40n, available: 40n, apiKeyId: null });
    // The same hold said to be placed by a key is not a replay: it would count against none.
    await expect(
      placeHold(app.ctx, {
        id: holdId,
        network: "test",
        ownerId: owner,
        amount: 40n,
        expiresAt: hold.expiresAt,
        kind: "generation",
        apiKeyId: "key_other",
      }),
    ).rejects.toMatchObject({ code: "idempotency_conflict" });
    // Nor can the key it counts against be changed afterwards.
    await expect(
      app.ctx.pool.query("update ledger_holds set api_key_id = 'key_other' where id = $1", [
        holdId,
      ]),
    ).rejects.toMatchObject({ code: "23001" });
    expect(await getBalance(app.ctx, owner, "test")).toMatchObject({
      creditBalance: 60n,
      heldCredits: 40n,
    });

    const posted = await postHold(app.ctx, { holdId, id: `${holdId}:post`, amount: 25n });
    expect(posted.hold).toMatchObject({
      status: "posted",
      posted: 25n,
      released: 15n,
      available: 0n,
    });
    expect(await getBalance(app.ctx, owner, "test")).toMatchObject({
      creditBalance: 75n,
      heldCredits: 0n,
    });

    const replay = await postHold(app.ctx, { holdId, id: `${holdId}:post`, amount: 25n });
    expect(replay.replayed).toBe(true);
    await expect(voidHold(app.ctx, { holdId, id: `${holdId}:void` })).rejects.toMatchObject({
      code: "hold_already_resolved",
    });
    await expect(
      postHold(app.ctx, { holdId, id: `${holdId}:other`, amount: 1n }),
    ).rejects.toMatchObject({ code: "hold_already_resolved" });
    // A replay that names another destination is not the same operation.
    await expect(
      postHold(app.ctx, {
        holdId,
        id: `${holdId}:post`,
        amount: 25n,
        to: systemLedgerAccount("test", "royalties"),
      }),
    ).rejects.toMatchObject({ code: "idempotency_conflict" });
    expect(await balanceOf(owner)).toBe(75n);
  });

  it("cannot post more than is held", async () => {
    const owner = await fundedOwner(100n);
    const holdId = newId("res");
    await placeHold(app.ctx, {
      id: holdId,
      network: "test",
      ownerId: owner,
      amount: 10n,
      expiresAt: later(60),
      kind: "generation",
    });
    await expect(
      postHold(app.ctx, { holdId, id: `${holdId}:post`, amount: 11n }),
    ).rejects.toMatchObject({ code: "invalid_request" });
    expect((await getHold(app.ctx, holdId))?.status).toBe("pending");
    await voidHold(app.ctx, { holdId, id: `${holdId}:void` });
    expect(await balanceOf(owner)).toBe(100n);
  });

  it("resolve exactly once when ten resolutions race", async () => {
    const owner = await fundedOwner(100n);
    const holdId = newId("res");
    await placeHold(app.ctx, {
      id: holdId,
      network: "test",
      ownerId: owner,
      amount: 50n,
      expiresAt: later(60),
      kind: "generation",
    });
    const attempts = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) =>
        i % 2
          ? voidHold(app.ctx, { holdId, id: `void-${i}` })
          : postHold(app.ctx, { holdId, id: `post-${i}`, amount: 50n }),
      ),
    );
    expect(attempts.filter((a) => a.status === "fulfilled")).toHaveLength(1);
    for (const a of attempts.filter((a) => a.status === "rejected")) {
      expect(a.reason).toMatchObject({ code: "hold_already_resolved" });
    }
    const hold = await getHold(app.ctx, holdId);
    expect(hold?.status === "posted" ? 50n : 100n).toBe(await balanceOf(owner));
  });

  it("refuse a hold larger than the balance, and a conflicting replay", async () => {
    const owner = await fundedOwner(10n);
    const holdId = newId("res");
    await expect(
      placeHold(app.ctx, {
        id: holdId,
        network: "test",
        ownerId: owner,
        amount: 11n,
        expiresAt: later(60),
        kind: "generation",
      }),
    ).rejects.toMatchObject({
      code: "insufficient_credits",
      details: { need: 0.0011, have: 0.001 },
    });
    expect(await getHold(app.ctx, holdId)).toBeUndefined();
    const input = {
      id: holdId,
      network: "test" as const,
      ownerId: owner,
      amount: 5n,
      expiresAt: later(60),
      kind: "generation",
    };
    await placeHold(app.ctx, input);
    expect((await placeHold(app.ctx, input)).replayed).toBe(true);
    await expect(placeHold(app.ctx, { ...input, amount: 6n })).rejects.toMatchObject({
      code: "idempotency_conflict",
    });
    expect(await getBalance(app.ctx, owner, "test")).toMatchObject({
      creditBalance: 5n,
      heldCredits: 5n,
    });
    await voidHold(app.ctx, { holdId, id: `${holdId}:void` });
  });

  it("expire: the sweeper voids what outlived its expiry and nothing else", async () => {
    const owner = await fundedOwner(100n);
    const shortId = newId("res");
    const longId = newId("res");
    await placeHold(app.ctx, {
      id: shortId,
      network: "test",
      ownerId: owner,
      amount: 30n,
      expiresAt: later(60),
      kind: "generation",
    });
    await placeHold(app.ctx, {
      id: longId,
      network: "test",
      ownerId: owner,
      amount: 20n,
      expiresAt: later(3600),
      kind: "generation",
    });
    app.clock.advance(120_000);
    try {
      expect(await expireHolds(app.ctx)).toBe(1);
      expect(await expireHolds(app.ctx)).toBe(0);
    } finally {
      app.clock.advance(-120_000);
    }
    expect((await getHold(app.ctx, shortId))?.status).toBe("expired");
    expect((await getHold(app.ctx, longId))?.status).toBe("pending");
    expect(await getBalance(app.ctx, owner, "test")).toMatchObject({
      creditBalance: 80n,
      heldCredits: 20n,
    });
    // The job that owned the expired hold can no longer post it.
    await expect(
      postHold(app.ctx, { holdId: shortId, id: "late-post", amount: 30n }),
    ).rejects.toMatchObject({ code: "hold_already_resolved" });
    await voidHold(app.ctx, { holdId: longId, id: `${longId}:void` });
  });

  it("leave no trace when the caller's transaction fails halfway", async () => {
    const owner = await fundedOwner(100n);
    const holdId = newId("res");
    await expect(
      app.ctx.db.transaction(async (tx) => {
        await placeHold(
          { ...app.ctx, db: tx },
          {
            id: holdId,
            network: "test",
            ownerId: owner,
            amount: 40n,
            expiresAt: later(60),
            kind: "generation",
          },
        );
        throw new Error("the generation row failed to insert");
      }),
    ).rejects.toThrow("the generation row failed to insert");
    expect(await getHold(app.ctx, holdId)).toBeUndefined();
    expect(await getBalance(app.ctx, owner, "test")).toMatchObject({
      creditBalance: 100n,
      heldCredits: 0n,
    });
    const { rowCount } = await app.ctx.pool.query(
      "select 1 from ledger_transfers where hold_id = $1 or id = $1",
      [holdId],
    );
    expect(rowCount).toBe(0);
  });

  it("draw from a reservation, refund to the balance, and settle the rest", async () => {
    const owner = await fundedOwner(100n);
    const reservation = newId("res");
    await placeHold(app.ctx, {
      id: reservation,
      network: "test",
      ownerId: owner,
      amount: 50n,
      expiresAt: later(3600),
      kind: "reservation",
    });
    const a = `${reservation}:a`;
    const b = `${reservation}:b`;
    await placeHold(app.ctx, {
      id: a,
      network: "test",
      ownerId: owner,
      amount: 20n,
      expiresAt: later(60),
      kind: "generation",
      parentHoldId: reservation,
    });
    await placeHold(app.ctx, {
      id: b,
      network: "test",
      ownerId: owner,
      amount: 20n,
      expiresAt: later(60),
      kind: "generation",
      parentHoldId: reservation,
    });
    await expect(
      placeHold(app.ctx, {
        id: `${reservation}:c`,
        network: "test",
        ownerId: owner,
        amount: 11n,
        expiresAt: later(60),
        kind: "generation",
        parentHoldId: reservation,
      }),
    ).rejects.toMatchObject({
      code: "insufficient_credits",
      details: { need: 0.0011, have: 0.001 },
    });
    expect(await getBalance(app.ctx, owner, "test")).toMatchObject({
      creditBalance: 50n,
      heldCredits: 50n,
    });

    await postHold(app.ctx, { holdId: a, id: `${a}:post`, amount: 15n }); // 5 back to the balance
    await voidHold(app.ctx, { holdId: b, id: `${b}:void` }); // 20 back to the balance
    expect(await getBalance(app.ctx, owner, "test")).toMatchObject({
      creditBalance: 75n,
      heldCredits: 10n,
    });

    const settled = await voidHold(app.ctx, { holdId: reservation, id: `${reservation}:settle` });
    expect(settled.hold).toMatchObject({ status: "voided", drawn: 40n, released: 10n });
    expect(await getBalance(app.ctx, owner, "test")).toMatchObject({
      creditBalance: 85n,
      heldCredits: 0n,
    });
    await expect(
      placeHold(app.ctx, {
        id: `${reservation}:d`,
        network: "test",
        ownerId: owner,
        amount: 1n,
        expiresAt: later(60),
        kind: "generation",
        parentHoldId: reservation,
      }),
    ).rejects.toMatchObject({ code: "reservation_closed" });
  });

  it("cannot draw from another owner's or another network's reservation", async () => {
    const owner = await fundedOwner(100n);
    const stranger = await fundedOwner(100n);
    const reservation = newId("res");
    await placeHold(app.ctx, {
      id: reservation,
      network: "test",
      ownerId: owner,
      amount: 50n,
      expiresAt: later(3600),
      kind: "reservation",
    });
    await expect(
      placeHold(app.ctx, {
        id: newId("res"),
        network: "test",
        ownerId: stranger,
        amount: 1n,
        expiresAt: later(60),
        kind: "generation",
        parentHoldId: reservation,
      }),
    ).rejects.toMatchObject({ code: "not_found" });
    await fundedOwner(0n);
    await expect(
      placeHold(app.ctx, {
        id: newId("res"),
        network: "live",
        ownerId: owner,
        amount: 1n,
        expiresAt: later(60),
        kind: "generation",
        parentHoldId: reservation,
      }),
    ).rejects.toMatchObject({ code: "not_found" });
    // Only a reservation can be drawn from, not an ordinary hold.
    const plain = newId("res");
    await placeHold(app.ctx, {
      id: plain,
      network: "test",
      ownerId: owner,
      amount: 10n,
      expiresAt: later(3600),
      kind: "generation",
    });
    await expect(
      placeHold(app.ctx, {
        id: newId("res"),
        network: "test",
        ownerId: owner,
        amount: 1n,
        expiresAt: later(60),
        kind: "generation",
        parentHoldId: plain,
      }),
    ).rejects.toMatchObject({ code: "not_found" });
    await voidHold(app.ctx, { holdId: plain, id: `${plain}:void` });
    await voidHold(app.ctx, { holdId: reservation, id: `${reservation}:settle` });
  });
});

describe("invariant check", () => {
  it("detects a corrupted ledger", async () => {
    const owner = await fundedOwner(10n);
    const account = userLedgerAccount(owner, "test");
    const client = await app.ctx.pool.connect();
    try {
      await client.query("begin");
      // Bypass the guards as a superuser could, inside a transaction rolled back below.
      await client.query("alter table ledger_accounts disable trigger ledger_accounts_guard");
      await client.query("update ledger_accounts set balance = balance + 5 where id = $1", [
        account,
      ]);
      const violations = await checkLedgerInvariants({
        ...app.ctx,
        db: (await import("drizzle-orm/node-postgres")).drizzle(client) as never,
      });
      expect(violations).toContainEqual(
        expect.stringContaining(`account ${account}: stored balance 15 but transfers sum to 10`),
      );
    } finally {
      await client.query("rollback");
      client.release();
    }
  });
});

describe("the expiry sweeper under trouble", () => {
  it("keeps expiring the other holds when one cannot be resolved", async () => {
    const owner = await fundedOwner(100n);
    const poisoned = newId("res");
    const fine = newId("res");
    const past = new Date(app.clock.now().getTime() - 60_000);
    await placeHold(app.ctx, {
      id: poisoned,
      network: "test",
      ownerId: owner,
      amount: 10n,
      expiresAt: new Date(past.getTime() - 1000),
      kind: "generation",
    });
    await placeHold(app.ctx, {
      id: fine,
      network: "test",
      ownerId: owner,
      amount: 10n,
      expiresAt: past,
      kind: "generation",
    });
    await app.ctx.pool.query(`
      create function poison_hold() returns trigger language plpgsql as $$
      begin if new.id = '${poisoned}' then raise exception 'injected failure'; end if; return new; end $$;
      create trigger poison_hold before update on ledger_holds for each row execute function poison_hold();`);
    try {
      expect(await expireHolds(app.ctx)).toBe(1);
      expect((await getHold(app.ctx, fine))?.status).toBe("expired");
      expect((await getHold(app.ctx, poisoned))?.status).toBe("pending");
    } finally {
      await app.ctx.pool.query(
        "drop trigger poison_hold on ledger_holds; drop function poison_hold();",
      );
    }
    expect(await expireHolds(app.ctx)).toBe(1);
    expect(await getBalance(app.ctx, owner, "test")).toMatchObject({
      creditBalance: 100n,
      heldCredits: 0n,
    });
  });

  it("lets exactly one of a settle and an expiry win a reservation", async () => {
    for (let round = 0; round < 5; round++) {
      const owner = await fundedOwner(100n);
      const reservation = newId("res");
      await placeHold(app.ctx, {
        id: reservation,
        network: "test",
        ownerId: owner,
        amount: 40n,
        expiresAt: new Date(app.clock.now().getTime() - 1),
        kind: "reservation",
      });
      const [settle, sweep] = await Promise.allSettled([
        voidHold(app.ctx, { holdId: reservation, id: `${reservation}:settle` }),
        expireHolds(app.ctx),
      ]);
      const status = (await getHold(app.ctx, reservation))?.status;
      if (status === "voided") expect(settle.status).toBe("fulfilled");
      else {
        expect(status).toBe("expired");
        expect(settle.status === "rejected" && (settle.reason as AppError).code).toBe(
          "hold_already_resolved",
        );
      }
      expect(sweep.status).toBe("fulfilled");
      expect(await balanceOf(owner)).toBe(100n);
    }
  });
});
