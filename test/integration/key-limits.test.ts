import { readFileSync } from "node:fs";
import OpenAI from "openai";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { migrationsFolder } from "../../src/db/migrate.js";
import { runResult } from "../../src/domains/generations/run.js";
import { holdIdOf, resultIdOf } from "../../src/domains/generations/submit.js";
import { voidHold } from "../../src/domains/ledger/service.js";
import { creditsFromJson } from "../../src/lib/credits.js";
import {
  createAccountWithKey,
  createFundedCaller,
  startTestApp,
  type TestApp,
} from "../helpers/app.js";
import { expectMoneyInvariants } from "../helpers/ledger.js";

/**
 * Spend limits per API key over the real HTTP app and database (default sandbox channels): the
 * limit is enforced by the statement that places the hold, so concurrent requests cannot pass
 * it; what a hold gives back (a settle below the hold, a released reservation) frees its share.
 */

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp({ env: { LOG_LEVEL: "error" } });
});
afterAll(async () => {
  await app?.close();
});
afterEach(() => expectMoneyInvariants(app.ctx));

const generation = { prompt: "a lighthouse at dusk", models: ["gpt-image-2"] };

/** A funded account (10,000 credits), and a second key of it created over HTTP with `limits`. */
async function limitedKey(limits: Record<string, number | null>) {
  const owner = await createFundedCaller(app.ctx, 10_000n, "test");
  const created = await app.call("createApiKey", {
    token: owner.key,
    json: { name: "limited", limits },
  });
  expect(created.status).toBe(201);
  return { owner, id: created.body.id as string, key: created.body.key as string };
}

async function listed(token: string, id: string) {
  const res = await app.call("listApiKeys", { token });
  expect(res.status).toBe(200);
  const found = res.body.data.find((k) => k.id === id);
  if (!found) throw new Error(`key ${id} is not listed`);
  return found;
}

async function priceOf(json: unknown) {
  const quote = await app.call("quoteGeneration", {
    token: (await createAccountWithKey(app.ctx, "test")).key,
    json,
  });
  expect(quote.status).toBe(200);
  return quote.body.quote.total as number;
}

async function reserve(token: string, credits: number) {
  const res = await app.call("reserveCredits", { token, json: { credits, expiresInSeconds: 600 } });
  expect(res.status).toBe(201);
  return res.body.reservationId as string;
}

async function balance(token: string) {
  const body = (await app.call("getBalance", { token })).body;
  return creditsFromJson(body.creditBalance) as bigint;
}

describe("API key spend limits", () => {
  it("50 concurrent generations never hold past the key's total limit", async () => {
    const quote = await app.call("quoteGeneration", {
      token: (await createAccountWithKey(app.ctx, "test")).key,
      json: generation,
    });
    expect(quote.status).toBe(200);
    const price = quote.body.quote.total as number;
    const limit = price * 10 + Math.floor(price / 2);
    const { owner, id, key } = await limitedKey({ total: limit });

    const answers = await Promise.all(
      Array.from({ length: 50 }, () => app.call("generate", { token: key, json: generation })),
    );
    const accepted = answers.filter((a) => a.status === 202);
    const refused = answers.filter((a) => a.status === 402);
    expect(accepted.length + refused.length).toBe(50);
    const held = accepted.reduce((sum, a) => sum + (a.body.cost as number), 0);
    expect(held).toBeLessThanOrEqual(limit);
    expect(accepted.length).toBe(10);
    for (const r of refused) {
      expect(r.body.error).toMatchObject({
        code: "key_limit_exceeded",
        limit: "total",
        max: limit,
      });
      expect(r.body.error.remaining).toBe(limit - (r.body.error.spent as number));
      expect(r.body.error.remaining).toBeLessThan(price);
    }
    // The account could pay for far more: the key's limit is what bound.
    expect(await balance(owner.key)).toBe(10_000n * 10_000n - BigInt(held) * 10_000n);

    const shown = await listed(owner.key, id);
    expect(shown.limits).toEqual({ total: limit, perDay: null });
    expect(shown.spent).toEqual({ total: held, today: held });
    // The other key of the account has no limit and spent nothing.
    expect((await listed(owner.key, owner.apiKey.id)).spent).toEqual({ total: 0, today: 0 });

    // Raising, then removing, the limit lets the key's requests through again.
    const patched = await app.call("updateApiKey", {
      token: owner.key,
      params: { id },
      json: { limits: { total: held + price } },
    });
    expect(patched.status).toBe(200);
    expect(patched.body.limits).toEqual({ total: held + price, perDay: null });
    expect((await app.call("generate", { token: key, json: generation })).status).toBe(202);
    expect((await app.call("generate", { token: key, json: generation })).status).toBe(402);
    const removed = await app.call("updateApiKey", {
      token: owner.key,
      params: { id },
      json: { limits: { total: null } },
    });
    expect(removed.body.limits).toEqual({ total: null, perDay: null });
    expect((await app.call("generate", { token: key, json: generation })).status).toBe(202);
    expect((await listed(owner.key, id)).spent.total).toBe(held + 2 * price);
  });

  it("a per-day limit counts the UTC day's holds and starts again the next day", async () => {
    const { owner, id, key } = await limitedKey({ perDay: 10 });
    const reserve = (credits: number) =>
      app.call("reserveCredits", { token: key, json: { credits, expiresInSeconds: 600 } });
    expect((await reserve(6)).status).toBe(201);
    const over = await reserve(5);
    expect(over.status).toBe(402);
    expect(over.body.error).toMatchObject({
      code: "key_limit_exceeded",
      limit: "perDay",
      max: 10,
      spent: 6,
      remaining: 4,
      need: 5,
    });
    expect((await reserve(4)).status).toBe(201);
    app.clock.advance(24 * 3600 * 1000);
    expect((await listed(owner.key, id)).spent).toEqual({ total: 10, today: 0 });
    expect((await reserve(10)).status).toBe(201);
    expect((await listed(owner.key, id)).spent).toEqual({ total: 20, today: 10 });
  });

  it("a released reservation and a chat settled below its hold give their share back", async () => {
    const { owner, id, key } = await limitedKey({ total: 50 });
    const reserved = await app.call("reserveCredits", {
      token: key,
      json: { credits: 50, expiresInSeconds: 600 },
    });
    expect(reserved.status).toBe(201);
    const openai = new OpenAI({ apiKey: key, baseURL: `${app.url}/v1`, maxRetries: 0 });
    const chat = (max_tokens: number) =>
      openai.chat.completions.create({
        model: "gpt-oss-120b",
        messages: [{ role: "user", content: "name three lighthouses" }],
        max_tokens,
      });
    // The reservation holds the whole limit: a chat is refused with what remains.
    const refused = await chat(200).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(OpenAI.APIError);
    expect((refused as InstanceType<typeof OpenAI.APIError>).status).toBe(402);
    expect((refused as InstanceType<typeof OpenAI.APIError>).error).toMatchObject({
      code: "key_limit_exceeded",
      remaining: 0,
    });

    const settled = await app.call("settleReservation", {
      token: key,
      json: { reservationId: reserved.body.reservationId },
    });
    expect(settled.status).toBe(200);
    expect((await listed(owner.key, id)).spent.total).toBe(0);

    // A chat holds for its longest reply and is charged for the one it got: only that counts.
    const reply = await chat(200);
    expect(reply.choices[0]?.message.content).toBeTruthy();
    const spent = (await listed(owner.key, id)).spent.total as number;
    expect(spent).toBeGreaterThan(0);
    const before = await balance(owner.key);
    expect(BigInt(Math.round(spent * 10_000))).toBe(10_000n * 10_000n - before);

    // A chat whose hold would pass the limit is refused before any upstream call.
    await app.call("updateApiKey", {
      token: owner.key,
      params: { id },
      json: { limits: { total: 0 } },
    });
    const zero = await chat(200).catch((err: unknown) => err);
    expect((zero as InstanceType<typeof OpenAI.APIError>).status).toBe(402);
    expect(await balance(owner.key)).toBe(before);
  });

  it("a draw from another key's reservation counts against the drawing key", async () => {
    const price = await priceOf(generation);
    const { owner, id, key } = await limitedKey({ total: price + Math.floor(price / 2) });
    const start = await balance(owner.key);
    // The account's unlimited key reserves; the limited key draws from it.
    const reservationId = await reserve(owner.key, price * 4);
    const draw = () => app.call("generate", { token: key, json: { ...generation, reservationId } });
    const first = await draw();
    expect(first.status).toBe(202);
    expect((await listed(owner.key, id)).spent.total).toBe(price);
    const over = await draw();
    expect(over.status).toBe(402);
    expect(over.body.error).toMatchObject({
      code: "key_limit_exceeded",
      limit: "total",
      spent: price,
    });
    // The reservation's maker counted it whole, once.
    expect((await listed(owner.key, owner.apiKey.id)).spent.total).toBe(price * 4);

    // Charged: stays counted. Refunded: given back to the drawing key and to the reservation's.
    await runResult(app.ctx, app.ctx.generations, resultIdOf(first.body.generationId, 0));
    await app.call("updateApiKey", {
      token: owner.key,
      params: { id },
      json: { limits: { total: price * 2 } },
    });
    const second = await draw();
    expect(second.status).toBe(202);
    expect((await listed(owner.key, id)).spent.total).toBe(price * 2);
    const secondHold = holdIdOf(resultIdOf(second.body.generationId, 0));
    await voidHold(app.ctx, { holdId: secondHold, id: `void:${secondHold}` });
    expect((await listed(owner.key, id)).spent).toEqual({ total: price, today: price });
    expect((await listed(owner.key, owner.apiKey.id)).spent.total).toBe(price * 3);
    const settled = await app.call("settleReservation", {
      token: owner.key,
      json: { reservationId },
    });
    expect(settled.status).toBe(200);
    expect((await listed(owner.key, owner.apiKey.id)).spent).toEqual({
      total: price,
      today: price,
    });
    expect((await listed(owner.key, id)).spent.total).toBe(price);
    expect(await balance(owner.key)).toBe(start - BigInt(price * 10_000));
  });

  it("a key drawing from its own reservation is counted once", async () => {
    const price = await priceOf(generation);
    // Counted twice, the draw would pass the limit.
    const { owner, id, key } = await limitedKey({ total: price * 2 });
    const reservationId = await reserve(key, price * 2);
    const drawn = await app.call("generate", {
      token: key,
      json: { ...generation, reservationId },
    });
    expect(drawn.status).toBe(202);
    expect((await listed(owner.key, id)).spent.total).toBe(price * 2);
    await runResult(app.ctx, app.ctx.generations, resultIdOf(drawn.body.generationId, 0));
    await app.call("settleReservation", { token: key, json: { reservationId } });
    expect((await listed(owner.key, id)).spent).toEqual({ total: price, today: price });
  });

  it("migration 0019's recount of every key's counters from the holds agrees with the triggers", async () => {
    const recount = readFileSync(`${migrationsFolder}/0019_key_draws.sql`, "utf8")
      .split("--> statement-breakpoint")
      .at(-1) as string;
    const counters = async () =>
      (
        await app.ctx.pool.query(
          "select id, spent_total, spent_day, spent_day_date from api_keys order by id",
        )
      ).rows;
    const kept = await counters();
    expect(kept.some((k) => k.spent_total !== "0")).toBe(true);
    await app.ctx.pool.query(recount);
    expect(await counters()).toEqual(kept);
    await app.ctx.pool.query("update api_keys set spent_total = 0, spent_day = 0");
    await app.ctx.pool.query(recount);
    expect(await counters()).toEqual(kept);
  });

  it("refuses bad limits and unknown keys", async () => {
    const owner = await createAccountWithKey(app.ctx, "test");
    for (const limits of [{ total: -1 }, { perDay: 1.5 }, { daily: 3 }]) {
      const res = await app.call("createApiKey", {
        token: owner.key,
        json: { name: "bad", limits },
      });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe("invalid_request");
    }
    const negative = await app.call("updateApiKey", {
      token: owner.key,
      params: { id: owner.apiKey.id },
      json: { limits: { perDay: -5 } },
    });
    expect(negative.status).toBe(400);
    const unknown = await app.call("updateApiKey", {
      token: owner.key,
      params: { id: "key_unknown" },
      json: { limits: { total: 5 } },
    });
    expect(unknown.status).toBe(404);

    // A limited key can neither lift its own limit nor make itself an unlimited key.
    const { key } = await limitedKey({ total: 5 });
    const own = (await app.call("listApiKeys", { token: key })).body.data.find(
      (k) => k.limits.total === 5,
    );
    const lift = await app.call("updateApiKey", {
      token: key,
      params: { id: own?.id ?? "" },
      json: { limits: { total: null } },
    });
    expect(lift.status).toBe(403);
    expect(lift.body.error.code).toBe("limited_key_forbidden");
    const unlimited = await app.call("createApiKey", { token: key, json: { name: "free" } });
    expect(unlimited.status).toBe(403);
  });
});
