import fc from "fast-check";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, expect, it } from "vitest";
import { findOrCreateWalletAccount } from "../../src/domains/accounts/service.js";
import { systemLedgerAccount, userLedgerAccount } from "../../src/domains/ledger/accounts.js";
import { checkLedgerInvariants } from "../../src/domains/ledger/invariants.js";
import {
  expireHolds,
  getBalance,
  getHold,
  placeHold,
  resolveHold,
  type TransferInput,
  transfer,
} from "../../src/domains/ledger/service.js";
import { AppError } from "../../src/errors.js";
import { startTestApp, type TestApp } from "../helpers/app.js";

/**
 * Thousands of random ledger operations, each compared at once with an in-memory model of what
 * it must do. The seed is fixed and logged; LEDGER_MODEL_SEED / LEDGER_MODEL_OPS / LEDGER_MODEL_RUNS
 * run other or larger sequences.
 */
const SEED = Number(process.env.LEDGER_MODEL_SEED ?? 20261121);
const OPS = Number(process.env.LEDGER_MODEL_OPS ?? 1500);
const RUNS = Number(process.env.LEDGER_MODEL_RUNS ?? 2);
const OWNERS = 4;

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp({ env: { LOG_LEVEL: "warn" } });
});
afterAll(() => app.close());

type Op =
  | { t: "grant"; owner: number; amount: number }
  | { t: "spend"; owner: number; amount: number }
  | { t: "move"; from: number; to: number; amount: number }
  | { t: "hold"; owner: number; amount: number; ttl: number; reservation: boolean }
  | { t: "draw"; parent: number; amount: number; ttl: number }
  | { t: "post"; hold: number; share: number }
  | { t: "void"; hold: number }
  | { t: "replayTransfer"; which: number; alter: boolean }
  | { t: "replayResolution"; hold: number }
  | { t: "expire"; seconds: number };

const owner = fc.integer({ min: 0, max: OWNERS - 1 });
const amount = fc.integer({ min: 1, max: 120 });
const pick = fc.nat({ max: 10_000 });
const ttl = fc.constantFrom(30, 300, 3600);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ t: fc.constant("grant" as const), owner, amount }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant("spend" as const), owner, amount }) },
  {
    weight: 2,
    arbitrary: fc.record({ t: fc.constant("move" as const), from: owner, to: owner, amount }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant("hold" as const),
      owner,
      amount,
      ttl,
      reservation: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant("draw" as const),
      parent: pick,
      amount: fc.integer({ min: 1, max: 40 }),
      ttl,
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant("post" as const),
      hold: pick,
      share: fc.double({ min: 0, max: 1, noNaN: true }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("void" as const), hold: pick }) },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant("replayTransfer" as const),
      which: pick,
      alter: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("replayResolution" as const), hold: pick }) },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant("expire" as const),
      seconds: fc.constantFrom(10, 60, 400, 4000),
    }),
  },
);

interface ModelHold {
  id: string;
  owner: number;
  amount: bigint;
  available: bigint;
  drawn: bigint;
  posted: bigint;
  released: bigint;
  status: "pending" | "posted" | "voided" | "expired";
  reservation: boolean;
  parent: string | null;
  expiresAt: number;
  resolution?: { id: string; status: "posted" | "voided"; amount: bigint };
}

/** How often each operation met each outcome, logged so a run shows what it exercised. */
const tally = new Map<string, number>();
let currentOp = "";

async function codeOf(promise: Promise<unknown>): Promise<string> {
  let code = "ok";
  try {
    await promise;
  } catch (err) {
    if (!(err instanceof AppError)) throw err;
    code = err.code;
  }
  const key = `${currentOp}:${code}`;
  tally.set(key, (tally.get(key) ?? 0) + 1);
  return code;
}

/** Mostly a pending hold (the interesting case), sometimes any, so resolved ones are retried too. */
function choose(candidates: ModelHold[], pick: number): ModelHold | undefined {
  const pending = candidates.filter((h) => h.status === "pending");
  const pool = pick % 4 !== 0 && pending.length ? pending : candidates;
  return pool[Math.floor(pick / 4) % Math.max(1, pool.length)];
}

async function runSequence(ops: Op[], run: number) {
  const ctx = app.ctx;
  const prefix = `m${run}-${Date.now()}`;
  const owners: string[] = [];
  for (let i = 0; i < OWNERS; i++) {
    owners.push(
      (await findOrCreateWalletAccount(ctx, privateKeyToAccount(generatePrivateKey()).address)).id,
    );
  }
  const balance = new Array<bigint>(OWNERS).fill(0n);
  const holds: ModelHold[] = [];
  const transfers: TransferInput[] = [];
  const credits = (i: number) => userLedgerAccount(owners[i] as string, "test");
  const revenue = systemLedgerAccount("test", "revenue");
  let n = 0;
  const nextId = () => `${prefix}-${n++}`;
  const resolutionEffects = (h: ModelHold, postAmount: bigint) => {
    h.posted = postAmount;
    h.released = h.available - postAmount;
    balance[h.owner] = (balance[h.owner] as bigint) + h.released;
    h.available = 0n;
  };

  for (const [step, op] of ops.entries()) {
    const now = app.clock.now().getTime();
    const context = () => `step ${step} of run ${run}: ${JSON.stringify(op)}`;
    currentOp = op.t;
    switch (op.t) {
      case "grant": {
        const input: TransferInput = {
          id: nextId(),
          network: "test",
          debit: systemLedgerAccount("test", "issuance"),
          credit: credits(op.owner),
          amount: BigInt(op.amount),
          kind: "grant",
          reference: "model",
        };
        await transfer(ctx, input);
        transfers.push(input);
        balance[op.owner] = (balance[op.owner] as bigint) + input.amount;
        break;
      }
      case "spend":
      case "move": {
        const from = op.t === "spend" ? op.owner : op.from;
        if (op.t === "move" && op.from === op.to) break;
        const input: TransferInput = {
          id: nextId(),
          network: "test",
          debit: credits(from),
          credit: op.t === "spend" ? revenue : credits(op.to),
          amount: BigInt(op.amount),
          kind: op.t === "spend" ? "spend" : "transfer",
        };
        const enough = (balance[from] as bigint) >= input.amount;
        expect(await codeOf(transfer(ctx, input)), context()).toBe(
          enough ? "ok" : "insufficient_credits",
        );
        if (enough) {
          transfers.push(input);
          balance[from] = (balance[from] as bigint) - input.amount;
          if (op.t === "move") balance[op.to] = (balance[op.to] as bigint) + input.amount;
        }
        break;
      }
      case "hold": {
        const id = nextId();
        const want = BigInt(op.amount);
        const enough = (balance[op.owner] as bigint) >= want;
        const result = await codeOf(
          placeHold(ctx, {
            id,
            network: "test",
            ownerId: owners[op.owner] as string,
            amount: want,
            expiresAt: new Date(now + op.ttl * 1000),
            kind: op.reservation ? "reservation" : "generation",
          }),
        );
        expect(result, context()).toBe(enough ? "ok" : "insufficient_credits");
        if (enough) {
          balance[op.owner] = (balance[op.owner] as bigint) - want;
          holds.push({
            id,
            owner: op.owner,
            amount: want,
            available: want,
            drawn: 0n,
            posted: 0n,
            released: 0n,
            status: "pending",
            reservation: op.reservation,
            parent: null,
            expiresAt: now + op.ttl * 1000,
          });
        }
        break;
      }
      case "draw": {
        const parent = choose(
          holds.filter((h) => h.reservation),
          op.parent,
        );
        if (!parent) break;
        const id = nextId();
        const want = BigInt(op.amount);
        const open = parent.status === "pending" && parent.expiresAt > now;
        const expected = !open
          ? "reservation_closed"
          : parent.available >= want
            ? "ok"
            : "insufficient_credits";
        const result = await codeOf(
          placeHold(ctx, {
            id,
            network: "test",
            ownerId: owners[parent.owner] as string,
            amount: want,
            expiresAt: new Date(now + op.ttl * 1000),
            kind: "generation",
            parentHoldId: parent.id,
          }),
        );
        expect(result, context()).toBe(expected);
        if (expected === "ok") {
          parent.available -= want;
          parent.drawn += want;
          holds.push({
            id,
            owner: parent.owner,
            amount: want,
            available: want,
            drawn: 0n,
            posted: 0n,
            released: 0n,
            status: "pending",
            reservation: false,
            parent: parent.id,
            expiresAt: now + op.ttl * 1000,
          });
        }
        break;
      }
      case "post":
      case "void": {
        const h = choose(holds, op.hold);
        if (!h) break;
        const postAmount =
          op.t === "post" ? BigInt(Math.floor(Number(h.available) * op.share)) : 0n;
        const status = op.t === "post" ? "posted" : "voided";
        const id = nextId();
        const result = await codeOf(
          resolveHold(ctx, { holdId: h.id, id, amount: postAmount, status }),
        );
        expect(result, context()).toBe(h.status === "pending" ? "ok" : "hold_already_resolved");
        if (h.status === "pending") {
          resolutionEffects(h, postAmount);
          h.status = status;
          h.resolution = { id, status, amount: postAmount };
        }
        break;
      }
      case "replayTransfer": {
        const original = transfers[op.which % Math.max(1, transfers.length)];
        if (!original) break;
        const replay = op.alter ? { ...original, amount: original.amount + 1n } : original;
        expect(await codeOf(transfer(ctx, replay)), context()).toBe(
          op.alter ? "idempotency_conflict" : "ok",
        );
        break;
      }
      case "replayResolution": {
        const resolved = holds.filter((h) => h.resolution);
        const h = resolved[op.hold % Math.max(1, resolved.length)];
        if (!h?.resolution) break;
        const { id, status, amount: posted } = h.resolution;
        const replay = await resolveHold(ctx, { holdId: h.id, id, amount: posted, status });
        expect(replay.replayed, context()).toBe(true);
        break;
      }
      case "expire": {
        app.clock.advance(op.seconds * 1000);
        const after = app.clock.now().getTime();
        const due = holds.filter((h) => h.status === "pending" && h.expiresAt <= after);
        expect(await expireHolds(ctx), context()).toBe(due.length);
        for (const h of due) {
          resolutionEffects(h, 0n);
          h.status = "expired";
        }
        break;
      }
    }

    // After every step: each owner's balance and held credits agree with the model.
    for (let i = 0; i < OWNERS; i++) {
      const actual = await getBalance(ctx, owners[i] as string, "test");
      const held = holds
        .filter((h) => h.owner === i && h.status === "pending")
        .reduce((s, h) => s + h.available, 0n);
      expect(
        { credit: actual.creditBalance, held: actual.heldCredits },
        `owner ${i} after ${context()}`,
      ).toEqual({
        credit: balance[i],
        held,
      });
    }
    if (step % 250 === 249) expect(await checkLedgerInvariants(ctx), context()).toEqual([]);
  }

  // Leave nothing pending for the next run's sweeps: void what is left, as the model says.
  for (const h of holds.filter((h) => h.status === "pending")) {
    await resolveHold(ctx, { holdId: h.id, id: nextId(), amount: 0n, status: "voided" });
    resolutionEffects(h, 0n);
    h.status = "voided";
  }
  for (let i = 0; i < OWNERS; i++) {
    expect((await getBalance(ctx, owners[i] as string, "test")).creditBalance).toBe(balance[i]);
  }
  for (const h of holds) {
    const actual = await getHold(ctx, h.id);
    expect(actual, h.id).toMatchObject({
      status: h.status,
      available: h.available,
      drawn: h.drawn,
      posted: h.posted,
      released: h.released,
    });
  }
  expect(await checkLedgerInvariants(ctx)).toEqual([]);
  return holds.length;
}

it(`matches an in-memory model over ${RUNS} runs of ${OPS} random operations (seed ${SEED})`, async () => {
  console.log(`ledger model test: seed=${SEED} ops=${OPS} runs=${RUNS}`);
  let run = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { minLength: OPS, maxLength: OPS }), async (ops) => {
      await runSequence(ops, run++);
    }),
    { seed: SEED, numRuns: RUNS, endOnFailure: true },
  );
  console.log("outcomes:", Object.fromEntries([...tally].sort()));
}, 600_000);
