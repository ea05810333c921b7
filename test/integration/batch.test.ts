import type { Runner } from "graphile-worker";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startWorker } from "../../src/jobs/worker.js";
import {
  createFundedCaller,
  startTestApp,
  type TestApp,
  waitForGeneration,
} from "../helpers/app.js";
import { expectMoneyInvariants } from "../helpers/ledger.js";
import { type Simulator, startSimulator } from "../simulator/upstream.js";

let app: TestApp;
let worker: Runner;
let sim: Simulator;

beforeAll(async () => {
  sim = await startSimulator();
  app = await startTestApp({
    env: {
      // gpt-image-2 goes to the simulator only, so a test can make it refuse; the rest to sandbox.
      CHANNELS: JSON.stringify([
        {
          id: "openai",
          provider: "openai",
          baseUrl: `${sim.url}/openai`,
          apiKey: "sk-sim",
          networks: ["test"],
          models: { "gpt-image-2": "gpt-image-1" },
          priority: 0,
        },
        {
          id: "sandbox",
          provider: "sandbox",
          networks: ["test"],
          models: { "z-image-turbo": "z-image-turbo", "qwen-image-2.0": "qwen-image-2.0" },
          priority: 1,
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
});

const cheap = { prompt: "a lighthouse at dusk", models: ["z-image-turbo"] };
const pair = { prompt: "a red kite", models: ["z-image-turbo", "qwen-image-2.0"] };

/** What one request costs on its own, from the single-generation endpoint's quote. */
async function quoteOf(key: string, body: unknown): Promise<number> {
  const res = await app.call("generate", { token: key, json: body });
  expect(res.status).toBe(202);
  await waitForGeneration(app, key, res.body.generationId);
  return res.body.cost;
}

const balanceOf = async (key: string) => (await app.call("getBalance", { token: key })).body;

describe("POST /v1/generate/batch", () => {
  it("takes the whole quote in one hold, gives each generation its own id, and charges each once", async () => {
    const { key } = await createFundedCaller(app.ctx, 1_000n);
    const single = await quoteOf(key, cheap);
    const double = await quoteOf(key, pair);
    const start = (await balanceOf(key)).creditBalance;

    const res = await app.call("generateBatch", {
      token: key,
      json: { requests: [cheap, pair, cheap] },
    });
    expect(res.status).toBe(202);
    expect(res.body.batchId).toMatch(/^bat_[0-9a-z]{26}$/);
    const total = single * 2 + double;
    expect(res.body.cost).toBe(total);
    const generations = res.body.generations as Array<{ generationId: string; cost: number }>;
    expect(generations.map((g) => g.cost)).toEqual([single, double, single]);
    expect(new Set(generations.map((g) => g.generationId)).size).toBe(3);

    // One hold entry on the ledger for the whole batch.
    const entries = (await app.call("listTransactions", { token: key, query: { limit: 5 } })).body
      .data as Array<{ kind: string; amount: number; holdId: string | null }>;
    expect(entries[0]).toMatchObject({ kind: "hold", amount: -total, holdId: res.body.batchId });

    for (const g of generations) {
      const done = await waitForGeneration(app, key, g.generationId);
      expect(done.status).toBe("completed");
      expect(done.cost).toEqual({ quoted: g.cost, charged: g.cost, refunded: 0 });
    }
    expect(await balanceOf(key)).toMatchObject({ creditBalance: start - total, heldCredits: 0 });
    await expectMoneyInvariants(app.ctx);
  });

  it("refunds a generation of the batch that fails, and only that one", async () => {
    const { key } = await createFundedCaller(app.ctx, 1_000n);
    const start = (await balanceOf(key)).creditBalance;
    sim.always = "contentPolicy";
    try {
      const res = await app.request("POST", "/v1/generate/batch", {
        token: key,
        json: { requests: [cheap, { prompt: "refused", models: ["gpt-image-2"] }] },
      });
      expect(res.status).toBe(202);
      const [ok, refused] = res.body.generations;
      expect((await waitForGeneration(app, key, ok.generationId)).status).toBe("completed");
      const failed = await waitForGeneration(app, key, refused.generationId);
      expect(failed.status).toBe("failed");
      expect(failed.cost).toEqual({ quoted: refused.cost, charged: 0, refunded: refused.cost });
      expect(await balanceOf(key)).toMatchObject({
        creditBalance: start - ok.cost,
        heldCredits: 0,
      });
    } finally {
      sim.always = "ok";
    }
    await expectMoneyInvariants(app.ctx);
  });

  it("is accepted whole or refused whole: too few credits for all of it holds nothing", async () => {
    const { key } = await createFundedCaller(app.ctx, 1_000n);
    const cost = await quoteOf(key, cheap);
    const poor = await createFundedCaller(app.ctx, BigInt(cost * 3 - 1));
    const res = await app.call("generateBatch", {
      token: poor.key,
      json: { requests: [cheap, cheap, cheap] },
    });
    expect(res.status).toBe(402);
    expect(res.body.error).toMatchObject({
      code: "insufficient_credits",
      need: cost * 3,
      have: cost * 3 - 1,
    });
    expect(await balanceOf(poor.key)).toMatchObject({
      creditBalance: cost * 3 - 1,
      heldCredits: 0,
    });
    const history = await app.call("listGenerations", { token: poor.key });
    expect(history.body.data).toEqual([]);
    await expectMoneyInvariants(app.ctx);
  });

  it("names the request of the batch that is wrong, and creates none of them", async () => {
    const { key } = await createFundedCaller(app.ctx, 1_000n);
    const res = await app.call("generateBatch", {
      token: key,
      json: { requests: [cheap, { prompt: "x", models: ["no-such-model"] }] },
    });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("invalid_model");
    expect(res.body.error.message).toMatch(/^requests\[1\]: Unknown model no-such-model/);
    expect(res.body.error.field).toBe("requests.1.models");
    const reservation = await app.call("generateBatch", {
      token: key,
      json: { requests: [{ ...cheap, reservationId: "res_x" }] },
    });
    expect(reservation.status).toBe(400);
    expect(reservation.body.error.field).toBe("requests.0.reservationId");
    for (const requests of [[], Array.from({ length: 21 }, () => cheap)]) {
      const bad = await app.call("generateBatch", {
        token: key,
        json: { requests },
      });
      expect(bad.status).toBe(400);
      expect(bad.body.error.code).toBe("invalid_request");
    }
    expect((await app.call("listGenerations", { token: key })).body.data).toEqual([]);
    expect(await balanceOf(key)).toMatchObject({ creditBalance: 1_000, heldCredits: 0 });
  });

  it("with an Idempotency-Key, a repeated batch is the first one, charged once", async () => {
    const { key } = await createFundedCaller(app.ctx, 1_000n);
    const body = { requests: [cheap, cheap] };
    const headers = { "idempotency-key": "batch-once" };
    const first = await app.call("generateBatch", {
      token: key,
      json: body,
      headers,
    });
    const again = await app.call("generateBatch", {
      token: key,
      json: body,
      headers,
    });
    expect(first.status).toBe(202);
    expect(again.status).toBe(202);
    expect(again.body).toEqual(first.body);
    for (const g of first.body.generations) await waitForGeneration(app, key, g.generationId);
    expect((await balanceOf(key)).creditBalance).toBe(1_000 - first.body.cost);
    const other = await app.call("generateBatch", {
      token: key,
      json: { requests: [cheap] },
      headers,
    });
    expect(other.status).toBe(422);
    expect(other.body.error.code).toBe("idempotency_key_reused");
  });

  it("two batches at once on credits for one: one is accepted, the other refused, nothing held twice", async () => {
    const { key } = await createFundedCaller(app.ctx, 1_000n);
    const cost = await quoteOf(key, cheap);
    const caller = await createFundedCaller(app.ctx, BigInt(cost * 2));
    const body = { requests: [cheap, cheap] };
    const [a, b] = await Promise.all([
      app.call("generateBatch", { token: caller.key, json: body }),
      app.call("generateBatch", { token: caller.key, json: body }),
    ]);
    expect([a.status, b.status].sort()).toEqual([202, 402]);
    const accepted = a.status === 202 ? a : b;
    for (const g of accepted.body.generations)
      await waitForGeneration(app, caller.key, g.generationId);
    expect(await balanceOf(caller.key)).toMatchObject({ creditBalance: 0, heldCredits: 0 });
    await expectMoneyInvariants(app.ctx);
  });
});
