import type { Runner } from "graphile-worker";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { circuitStates } from "../../src/domains/routing/breaker.js";
import { startWorker } from "../../src/jobs/worker.js";
import {
  createFundedCaller,
  startTestApp,
  type TestApp,
  waitForGeneration,
} from "../helpers/app.js";
import { expectMoneyInvariants } from "../helpers/ledger.js";
import { type Simulator, startSimulator } from "../simulator/upstream.js";

/**
 * Routing against local servers that speak the real upstream formats, with injected faults.
 * Channels: for gpt-image-2, OpenAI-format primary and backup simulators; fal and Replicate
 * channels serve two other models; z-image-turbo has only the primary.
 */
let primary: Simulator;
let backup: Simulator;
let app: TestApp;
let worker: Runner;
let env: Record<string, string>;

beforeAll(async () => {
  primary = await startSimulator();
  backup = await startSimulator();
  const channels = [
    {
      id: "openai-primary",
      provider: "openai",
      baseUrl: `${primary.url}/openai`,
      apiKey: "sk-sim",
      networks: ["test"],
      models: { "gpt-image-2": "gpt-image-1", "z-image-turbo": "gpt-image-1" },
      priority: 0,
    },
    {
      id: "openai-backup",
      provider: "openai",
      baseUrl: `${backup.url}/openai`,
      apiKey: "sk-sim",
      networks: ["test"],
      models: { "gpt-image-2": "gpt-image-1" },
      priority: 1,
    },
    {
      id: "fal",
      provider: "fal",
      baseUrl: `${backup.url}/fal`,
      apiKey: "fal-key",
      networks: ["test"],
      models: { "qwen-image-2.0": "fal-ai/qwen-image" },
    },
    {
      id: "replicate",
      provider: "replicate",
      baseUrl: `${backup.url}/replicate`,
      apiKey: "r8-key",
      networks: ["test"],
      models: { "wan2.7-image": "wan-video/wan-2.7-image" },
    },
  ];
  env = {
    LOG_LEVEL: "error",
    CHANNELS: JSON.stringify(channels),
    ROUTING_MAX_RETRIES: "1",
    UPSTREAM_TIMEOUT_MS: "400",
    CIRCUIT_FAILURE_THRESHOLD: "3",
    CIRCUIT_COOLDOWN_SECONDS: "1",
  };
  app = await startTestApp({ env });
  worker = await startWorker(app.ctx);
});
afterAll(async () => {
  await worker.stop();
  await app.close();
  await primary.close();
  await backup.close();
});
beforeEach(async () => {
  for (const sim of [primary, backup]) {
    sim.script = [];
    sim.always = "ok";
    sim.calls.length = 0;
    sim.held = undefined;
  }
  await app.ctx.pool.query("delete from channel_health");
});
afterEach(() => expectMoneyInvariants(app.ctx));

async function generate(models: string[], credits = 100n) {
  const caller = await createFundedCaller(app.ctx, credits, "test");
  const res = await app.request("POST", "/v1/generate", {
    token: caller.key,
    json: { prompt: "a cat", models, resolution: "1K" },
  });
  expect(res.status).toBe(202);
  const done = await waitForGeneration(app, caller.key, res.body.generationId);
  const balance = (await app.request("GET", "/v1/balance", { token: caller.key })).body;
  return { done, balance, key: caller.key };
}

describe("failover", () => {
  it("serves from the backup when the primary answers 500, charging once", async () => {
    primary.always = "error500";
    const { done, balance } = await generate(["gpt-image-2"]);
    expect(done.status).toBe("completed");
    const routing = done.results[0].routing;
    expect(routing).toMatchObject({ upstream: "openai-backup", failover: true });
    expect(
      routing.attempts.map((a: { channel: string; outcome: string }) => [a.channel, a.outcome]),
    ).toEqual([
      ["openai-primary", "upstream_500"],
      ["openai-primary", "upstream_500"],
      ["openai-backup", "ok"],
    ]);
    expect(backup.calls[0]).toMatchObject({ api: "openai", model: "gpt-image-1", prompt: "a cat" });
    expect(balance).toMatchObject({ creditBalance: 97, heldCredits: 0 });
  });

  it("fails over on a hang (timeout), a 429 and a malformed answer", async () => {
    primary.script = ["hang", "rateLimit"];
    const hung = await generate(["gpt-image-2"]);
    expect(
      hung.done.results[0].routing.attempts.map((a: { outcome: string }) => a.outcome),
    ).toEqual(["timeout", "rate_limited", "ok"]);
    expect(hung.done.results[0].routing.attempts[2].channel).toBe("openai-backup");

    await app.ctx.pool.query("delete from channel_health"); // two failures above: start afresh
    primary.script = ["malformed", "ok"];
    const retried = await generate(["gpt-image-2"]);
    expect(retried.done.results[0].routing).toMatchObject({
      upstream: "openai-primary",
      failover: false,
    });
    expect(
      retried.done.results[0].routing.attempts.map((a: { outcome: string }) => a.outcome),
    ).toEqual(["malformed_response", "ok"]);
    expect(retried.balance.creditBalance).toBe(97);
  });

  it("fails over at once from a misconfigured channel, and refuses an answer that is not an image", async () => {
    primary.script = ["unknownModel"];
    const misconfigured = await generate(["gpt-image-2"]);
    expect(
      misconfigured.done.results[0].routing.attempts.map(
        (a: { channel: string; outcome: string }) => [a.channel, a.outcome],
      ),
    ).toEqual([
      ["openai-primary", "upstream_404"],
      ["openai-backup", "ok"],
    ]);
    expect((await circuitStates(app.ctx))[0]).toMatchObject({
      channel_id: "openai-primary",
      consecutive_failures: 1,
    });

    primary.script = ["garbage", "garbage"];
    const garbage = await generate(["gpt-image-2"]);
    expect(
      garbage.done.results[0].routing.attempts.map((a: { outcome: string }) => a.outcome),
    ).toEqual(["malformed_response", "malformed_response", "ok"]);
    expect(garbage.done.results[0].routing.upstream).toBe("openai-backup");
    expect(garbage.balance.creditBalance).toBe(97);
  });

  it("does not echo the upstream's words to the caller", async () => {
    primary.always = "error500";
    backup.always = "error500";
    const { done } = await generate(["gpt-image-2"]);
    expect(done.results[0].error).toEqual({
      code: "upstream_500",
      message: "Every upstream channel for this model failed; the credits were refunded.",
    });
  });

  it("honours Retry-After before retrying the same channel", async () => {
    primary.script = ["rateLimit", "ok"];
    const started = Date.now();
    const { done } = await generate(["z-image-turbo"]);
    expect(done.status).toBe("completed");
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(done.results[0].routing.attempts.map((a: { outcome: string }) => a.outcome)).toEqual([
      "rate_limited",
      "ok",
    ]);
  });

  it("fails and refunds a result whose channels are all down; a mixed generation charges only what succeeded", async () => {
    primary.always = "error500";
    backup.always = "error500";
    const { done, balance } = await generate(["gpt-image-2", "qwen-image-2.0"]);
    // gpt-image-2's channels are down; qwen's fal channel lives on the backup simulator too.
    expect(done.status).toBe("failed");
    expect(balance).toMatchObject({ creditBalance: 100, heldCredits: 0 });

    backup.always = "ok";
    const mixed = await generate(["z-image-turbo", "qwen-image-2.0"]);
    expect(mixed.done.status).toBe("completed");
    expect(
      mixed.done.results.map((r: { model: string; status: string }) => [r.model, r.status]),
    ).toEqual([
      ["z-image-turbo", "failed"],
      ["qwen-image-2.0", "completed"],
    ]);
    expect(mixed.done.cost).toEqual({ quoted: 9, charged: 6, refunded: 3 });
    expect(mixed.done.results[0].error.code).toBe("upstream_500");
    expect(mixed.balance).toMatchObject({ creditBalance: 94, heldCredits: 0 });
  });

  it("ends at once on the caller's own error: no failover, no count against the channel, refund", async () => {
    primary.always = "contentPolicy";
    const { done, balance } = await generate(["gpt-image-2"]);
    expect(done.status).toBe("failed");
    expect(done.results[0].error.code).toBe("content_policy");
    expect(done.results[0].routing.attempts).toHaveLength(1);
    expect(backup.calls).toHaveLength(0);
    expect(await circuitStates(app.ctx)).toEqual([]);
    expect(balance.creditBalance).toBe(100);
  });
});

describe("circuit breaker", () => {
  it("opens after the threshold, skips the channel for everyone, and closes after a good probe", async () => {
    primary.always = "error500";
    await generate(["gpt-image-2"]); // 2 failures
    await generate(["gpt-image-2"]); // 3rd failure opens the circuit
    expect(await circuitStates(app.ctx)).toEqual([
      { channel_id: "openai-primary", state: "open", consecutive_failures: 3 },
    ]);

    const callsBefore = primary.calls.length;
    const skipped = await generate(["gpt-image-2"]);
    expect(primary.calls.length).toBe(callsBefore); // nobody calls an open channel
    expect(skipped.done.results[0].routing.attempts[0]).toEqual({
      channel: "openai-primary",
      outcome: "circuit_open",
      ms: 0,
    });
    expect(skipped.done.results[0].routing.upstream).toBe("openai-backup");

    primary.always = "ok";
    await new Promise((r) => setTimeout(r, 1100)); // the cooldown
    const probed = await generate(["gpt-image-2"]);
    expect(probed.done.results[0].routing).toMatchObject({
      upstream: "openai-primary",
      failover: false,
    });
    expect(await circuitStates(app.ctx)).toEqual([
      { channel_id: "openai-primary", state: "closed", consecutive_failures: 0 },
    ]);
  });

  it("reopens when the probe fails", async () => {
    primary.always = "error500";
    await generate(["gpt-image-2"]);
    await generate(["gpt-image-2"]);
    await new Promise((r) => setTimeout(r, 1100));
    const callsBefore = primary.calls.length;
    const probe = await generate(["gpt-image-2"]);
    expect(primary.calls.length).toBe(callsBefore + 1); // one probe, no retries
    expect(probe.done.results[0].routing.upstream).toBe("openai-backup");
    expect((await circuitStates(app.ctx))[0]).toMatchObject({ state: "open" });
  });
});

/** Polls `check` until it holds; fails the test with `what` after a generous deadline. */
async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Queues a generation without waiting for it. */
async function startGeneration(app: TestApp, models: string[]) {
  const caller = await createFundedCaller(app.ctx, 100n, "test");
  const res = await app.request("POST", "/v1/generate", {
    token: caller.key,
    json: { prompt: "a cat", models, resolution: "1K" },
  });
  expect(res.status).toBe(202);
  return { key: caller.key, id: res.body.generationId as string };
}

async function resultStatus(
  app: TestApp,
  started: { key: string; id: string },
): Promise<string | undefined> {
  const res = await app.request("GET", `/v1/generate/status?ids=${started.id}`, {
    token: started.key,
  });
  return res.body?.generations?.[started.id]?.results?.[0]?.status;
}

/** Waits for each generation, with its caller's balance and each result's hold as posted. */
async function finish(app: TestApp, list: Array<{ key: string; id: string }>) {
  return Promise.all(
    list.map(async ({ key, id }) => {
      const done = await waitForGeneration(app, key, id);
      const balance = (await app.request("GET", "/v1/balance", { token: key })).body;
      const { rows } = await app.ctx.pool.query<{ posted: string; cost: string }>(
        `select h.posted::text, r.cost::text from generation_results r
         join ledger_holds h on h.id = r.hold_id where r.generation_id = $1`,
        [id],
      );
      return { done, balance, holds: rows };
    }),
  );
}

/** The circuit as three failures leave it, its cooldown already over: the next caller probes. */
async function openPastCooldown(app: TestApp, channelId: string) {
  await app.ctx.pool.query(
    `insert into channel_health (channel_id, state, consecutive_failures, opened_at, updated_at)
     values ($1, 'open', 3, now() - interval '1 hour', now() - interval '1 hour')`,
    [channelId],
  );
}

/** Holds the primary's next upstream call in flight; returns what lets it answer. */
function holdPrimary(): () => void {
  let release = () => {};
  primary.held = new Promise<void>((resolve) => {
    release = resolve;
  });
  return release;
}

const outcomes = (done: {
  results: Array<{ routing: { attempts: Array<{ outcome: string }> } }>;
}) => done.results[0]?.routing.attempts.map((a) => a.outcome);

describe("half-open probe with concurrent traffic", () => {
  // An app of its own: the probe is held in flight longer than the other tests' 400 ms upstream
  // time limit allows, and a probe and the results waiting on it run at once.
  let probing: TestApp;
  let probingWorker: Runner;
  beforeAll(async () => {
    probing = await startTestApp({
      env: { ...env, UPSTREAM_TIMEOUT_MS: "30000", WORKER_CONCURRENCY: "8" },
    });
    probingWorker = await startWorker(probing.ctx);
  });
  afterAll(async () => {
    await probingWorker.stop();
    await probing.close();
  });
  beforeEach(() => probing.ctx.pool.query("delete from channel_health"));
  afterEach(() => expectMoneyInvariants(probing.ctx));

  it("lets results arriving during a good probe wait for it, not fail: each completes, charged once", async () => {
    // z-image-turbo has only the primary channel: nothing to fail over to.
    await openPastCooldown(probing, "openai-primary");
    const release = holdPrimary();
    const probe = await startGeneration(probing, ["z-image-turbo"]);
    await until("the probe's upstream call", () => primary.calls.length === 1);
    expect((await circuitStates(probing.ctx))[0]).toMatchObject({ state: "half_open" });

    const waiting = await Promise.all(
      Array.from({ length: 5 }, () => startGeneration(probing, ["z-image-turbo"])),
    );
    // Every one has started (and, before the fix, would have failed at once).
    await until("the other results to start", async () =>
      (await Promise.all(waiting.map((w) => resultStatus(probing, w)))).every(
        (s) => s !== "pending",
      ),
    );
    expect(primary.calls).toHaveLength(1); // only the probe reached the upstream
    release();

    const finished = await finish(probing, [probe, ...waiting]);
    for (const { done, balance, holds } of finished) {
      expect(done.status).toBe("completed");
      expect(done.results[0].routing.upstream).toBe("openai-primary");
      expect(balance).toMatchObject({ creditBalance: 97, heldCredits: 0 });
      expect(holds).toEqual([{ posted: "30000", cost: "30000" }]); // charged once, the quoted price
    }
    expect(outcomes(finished[0]?.done)).toEqual(["ok"]);
    // The others saw the probe in flight and waited for it.
    expect(finished.slice(1).some(({ done }) => outcomes(done)?.[0] === "probe_in_flight")).toBe(
      true,
    );
    expect(primary.calls).toHaveLength(6); // one call each: nobody called twice
    expect(await circuitStates(probing.ctx)).toEqual([
      { channel_id: "openai-primary", state: "closed", consecutive_failures: 0 },
    ]);
  });

  it("sends results arriving during a probe to the next channel; a bad probe fails over too, charged once", async () => {
    await openPastCooldown(probing, "openai-primary");
    primary.script = ["error500"];
    const release = holdPrimary();
    const probe = await startGeneration(probing, ["gpt-image-2"]);
    await until("the probe's upstream call", () => primary.calls.length === 1);

    const others = await Promise.all(
      Array.from({ length: 4 }, () => startGeneration(probing, ["gpt-image-2"])),
    );
    // They need not wait: the backup serves them while the probe is held.
    const served = await finish(probing, others);
    release();
    const probed = await finish(probing, [probe]);

    for (const { done, balance, holds } of [...served, ...probed]) {
      expect(done?.status).toBe("completed");
      expect(done?.results[0].routing.upstream).toBe("openai-backup");
      expect(balance).toMatchObject({ creditBalance: 97, heldCredits: 0 });
      expect(holds).toEqual([{ posted: "30000", cost: "30000" }]);
    }
    for (const { done } of served) expect(outcomes(done)).toEqual(["probe_in_flight", "ok"]);
    expect(outcomes(probed[0]?.done)).toEqual(["upstream_500", "ok"]);
    expect(primary.calls).toHaveLength(1);
    expect(backup.calls).toHaveLength(5);
    expect((await circuitStates(probing.ctx))[0]).toMatchObject({ state: "open" });
  });

  it("fails and refunds, once, results that waited on a probe that failed with no other channel", async () => {
    await openPastCooldown(probing, "openai-primary");
    primary.always = "error500";
    const release = holdPrimary();
    const probe = await startGeneration(probing, ["z-image-turbo"]);
    await until("the probe's upstream call", () => primary.calls.length === 1);
    const waiting = await Promise.all(
      Array.from({ length: 3 }, () => startGeneration(probing, ["z-image-turbo"])),
    );
    await until("the other results to start", async () =>
      (await Promise.all(waiting.map((w) => resultStatus(probing, w)))).every(
        (s) => s !== "pending",
      ),
    );
    release();

    const finished = await finish(probing, [probe, ...waiting]);
    expect(finished[0]?.done.results[0].error.code).toBe("upstream_500");
    for (const { done, balance, holds } of finished) {
      expect(done?.status).toBe("failed");
      expect(balance).toMatchObject({ creditBalance: 100, heldCredits: 0 });
      expect(holds).toEqual([{ posted: "0", cost: "30000" }]); // refunded, nothing charged
    }
    // The upstream is down: the waiters end as any result does against an open circuit.
    for (const { done } of finished.slice(1)) {
      expect(done?.results[0].error.code).toBe("model_unavailable");
      expect(outcomes(done)?.at(-1)).toBe("circuit_open");
    }
  });
});

describe("recording a channel's health", () => {
  it("does not retry a successful call, nor count it against the channel, when recording the success fails", async () => {
    // One earlier failure, so the success has a count to clear: that write fails, once.
    await app.ctx.pool.query(
      `insert into channel_health (channel_id, state, consecutive_failures, updated_at)
       values ('openai-primary', 'closed', 1, now())`,
    );
    await app.ctx.pool.query(`
      create sequence success_write_failures;
      create function fail_success_write() returns trigger language plpgsql as $$
      begin
        if new.consecutive_failures = 0 and nextval('success_write_failures') = 1 then
          raise exception 'injected: channel_health is unwritable';
        end if;
        return new;
      end $$;
      create trigger fail_success_write before update on channel_health
        for each row execute function fail_success_write();`);
    try {
      const { done, balance } = await generate(["gpt-image-2"]);
      expect(done.status).toBe("completed");
      expect(done.results[0].routing).toMatchObject({
        upstream: "openai-primary",
        failover: false,
      });
      expect(outcomes(done)).toEqual(["ok"]);
      expect(primary.calls).toHaveLength(1); // the billed call is not made again
      expect(backup.calls).toHaveLength(0);
      expect(balance).toMatchObject({ creditBalance: 97, heldCredits: 0 });
      // Neither cleared nor counted against: the failed write changed nothing.
      expect(await circuitStates(app.ctx)).toEqual([
        { channel_id: "openai-primary", state: "closed", consecutive_failures: 1 },
      ]);
      expect(
        (
          await app.ctx.pool.query<{ last_value: string; is_called: boolean }>(
            "select last_value::text, is_called from success_write_failures",
          )
        ).rows[0],
      ).toEqual({ last_value: "1", is_called: true }); // the injected failure did happen
    } finally {
      await app.ctx.pool.query(`
        drop trigger fail_success_write on channel_health;
        drop function fail_success_write;
        drop sequence success_write_failures;`);
    }
  });
});

describe("adapters", () => {
  it("speak fal's queue API and Replicate's predictions API", async () => {
    const { done } = await generate(["qwen-image-2.0", "wan2.7-image"]);
    expect(done.status).toBe("completed");
    expect(done.results.map((r: { routing: { upstream: string } }) => r.routing.upstream)).toEqual([
      "fal",
      "replicate",
    ]);
    expect(backup.calls.map((c) => [c.api, c.model])).toEqual(
      expect.arrayContaining([
        ["fal", "fal-ai/qwen-image"],
        ["replicate", "wan-video/wan-2.7-image"],
      ]),
    );
  });
});
