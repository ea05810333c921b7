import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createFundedCaller, startTestApp, type TestApp } from "../helpers/app.js";
import { expectMoneyInvariants } from "../helpers/ledger.js";
import { groupsOfMany } from "../helpers/metrics.js";

// Concurrent submits with no transaction of their own share one statement and one commit
// (generation_submit through GroupCommit). No worker runs here: every accepted generation
// stays held, so what was held is exactly what was accepted.
const CONCURRENT = 200;
const COST = 3; // z-image-turbo on the sandbox

let app: TestApp;

beforeAll(async () => {
  app = await startTestApp({ env: { MAX_IN_FLIGHT_GENERATIONS: "1000" } });
});
afterAll(() => app?.close());

const submit = (key: string) =>
  app.request("POST", "/v1/generate", {
    token: key,
    json: { prompt: "a lighthouse at dusk", models: ["z-image-turbo"] },
  });
const balance = async (key: string) => (await app.call("getBalance", { token: key })).body;

describe("group-committed submits", () => {
  it(`never overdraw: ${CONCURRENT} at once on credits for 50 accept exactly 50`, async () => {
    const { key } = await createFundedCaller(app.ctx, BigInt(50 * COST));
    const before = await groupsOfMany(app.ctx, "generation_submit");
    const answers = await Promise.all(Array.from({ length: CONCURRENT }, () => submit(key)));
    const accepted = answers.filter((a) => a.status === 202);
    const refused = answers.filter((a) => a.status === 402);
    expect(accepted).toHaveLength(50);
    expect(refused).toHaveLength(CONCURRENT - 50);
    for (const r of refused)
      expect(r.body.error).toMatchObject({ code: "insufficient_credits", need: COST });
    // Every id is its own generation, and the account holds exactly what it was charged for.
    expect(new Set(accepted.map((a) => a.body.generationId)).size).toBe(50);
    expect(await balance(key)).toMatchObject({ creditBalance: 0, heldCredits: 50 * COST });
    // They did go together: some statements carried several submits.
    expect(await groupsOfMany(app.ctx, "generation_submit")).toBeGreaterThan(before);
    await expectMoneyInvariants(app.ctx);
  });

  it("keeps each account to its own credits when two accounts' submits share statements", async () => {
    const a = await createFundedCaller(app.ctx, BigInt(30 * COST));
    const b = await createFundedCaller(app.ctx, BigInt(70 * COST));
    const answers = await Promise.all(
      Array.from({ length: CONCURRENT }, (_, i) =>
        submit(i % 2 ? a.key : b.key).then((r) => ({ i, r })),
      ),
    );
    const acceptedFor = (odd: number) =>
      answers.filter(({ i, r }) => i % 2 === odd && r.status === 202).length;
    expect(acceptedFor(1)).toBe(30);
    expect(acceptedFor(0)).toBe(70);
    expect(answers.every(({ r }) => r.status === 202 || r.status === 402)).toBe(true);
    expect(await balance(a.key)).toMatchObject({ creditBalance: 0, heldCredits: 30 * COST });
    expect(await balance(b.key)).toMatchObject({ creditBalance: 0, heldCredits: 70 * COST });
    await expectMoneyInvariants(app.ctx);
  });
});

describe("group-committed submits under the in-flight cap", () => {
  let capped: TestApp;
  beforeAll(async () => {
    capped = await startTestApp({ env: { MAX_IN_FLIGHT_GENERATIONS: "30" } });
  });
  afterAll(() => capped?.close());

  it("count the submits before them in the same statement: exactly the cap is accepted", async () => {
    const { key } = await createFundedCaller(capped.ctx, 10_000n);
    const answers = await Promise.all(
      Array.from({ length: CONCURRENT }, () =>
        capped.request("POST", "/v1/generate", {
          token: key,
          json: { prompt: "a lighthouse at dusk", models: ["z-image-turbo"] },
        }),
      ),
    );
    expect(answers.filter((a) => a.status === 202)).toHaveLength(30);
    const refused = answers.filter((a) => a.status === 429);
    expect(refused).toHaveLength(CONCURRENT - 30);
    expect(refused[0]?.body.error).toMatchObject({ code: "too_many_in_flight", max: 30 });
    expect(refused[0]?.headers.get("retry-after")).toBe("5");
    const held = (await capped.call("getBalance", { token: key })).body;
    expect(held).toMatchObject({ creditBalance: 10_000 - 30 * COST, heldCredits: 30 * COST });
    await expectMoneyInvariants(capped.ctx);
  });
});
