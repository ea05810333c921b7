import type { Runner } from "graphile-worker";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LocalChain } from "../../src/chain/local-chain.js";
import { startWorker } from "../../src/jobs/worker.js";
import { startMetricsServer } from "../../src/metrics/server.js";
import {
  createFundedCaller,
  startTestApp,
  type TestApp,
  waitForGeneration,
} from "../helpers/app.js";
import { fundedPayer, payingFetch, paymentEnv, startTestChain } from "../helpers/chain.js";
import { type Simulator, startSimulator } from "../simulator/upstream.js";

/**
 * /metrics after real traffic: generations completed on the sandbox and failed upstream, a
 * failover from a failing channel whose circuit opens, a pay-per-call payment on anvil, jobs
 * waiting in graphile-worker's queue and a pending reservation. Every series is read back from
 * the text format and checked against what that traffic must have produced.
 */
const TOKEN = "metrics-token-for-tests-0123456789";
const auth = { authorization: `Bearer ${TOKEN}` };

let chain: LocalChain;
let primary: Simulator;
let backup: Simulator;
let app: TestApp;
let worker: Runner;

beforeAll(async () => {
  [chain, primary, backup] = await Promise.all([
    startTestChain("test"),
    startSimulator(),
    startSimulator(),
  ]);
  primary.always = "error500";
  app = await startTestApp({
    env: {
      ...paymentEnv([chain]),
      // Refused scrapes are logged at warn: the token must not be in those lines.
      LOG_LEVEL: "warn",
      METRICS_TOKEN: TOKEN,
      ROUTING_MAX_RETRIES: "0",
      CIRCUIT_FAILURE_THRESHOLD: "2",
      CHANNELS: JSON.stringify([
        {
          id: "openai-primary",
          provider: "openai",
          baseUrl: `${primary.url}/openai`,
          apiKey: "sk-sim",
          networks: ["test"],
          models: { "gpt-image-2": "gpt-image-1", "qwen-image-2.0": "gpt-image-1" },
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
          id: "sandbox",
          provider: "sandbox",
          networks: ["test"],
          models: { "z-image-turbo": "z-image-turbo" },
          priority: 2,
        },
      ]),
    },
  });
  worker = await startWorker(app.ctx);
});

afterAll(async () => {
  await worker?.stop();
  await app?.close();
  await Promise.all([primary?.close(), backup?.close(), chain?.stop()]);
});

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Prometheus' text format, sample lines only. */
function parse(text: string): Sample[] {
  return text
    .split("\n")
    .filter((line) => line && !line.startsWith("#"))
    .map((line) => {
      const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (!match) throw new Error(`not a sample line: ${line}`);
      const labels = Object.fromEntries(
        [...(match[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]),
      );
      return { name: match[1] as string, labels, value: Number(match[3]) };
    });
}

async function scrape(): Promise<Sample[]> {
  const res = await app.request("GET", "/metrics", { headers: auth });
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
  return parse(res.body as string);
}

/** The value of the one series of `name` with exactly these labels (0 if it does not exist). */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.filter(
    (s) =>
      s.name === name &&
      Object.keys(s.labels).length === Object.keys(labels).length &&
      Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  if (found.length > 1) throw new Error(`${name} ${JSON.stringify(labels)} is not one series`);
  return found[0]?.value ?? 0;
}

/** Scrapes until `ready` holds: work that a worker finishes on its own time. */
async function scrapeUntil(ready: (samples: Sample[]) => boolean, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const samples = await scrape();
    if (ready(samples)) return samples;
    if (Date.now() > deadline) throw new Error("metrics never reached the expected state");
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function generate(key: string, model: string) {
  const res = await app.request("POST", "/v1/generate", {
    token: key,
    json: { prompt: "a lighthouse at dusk", models: [model] },
  });
  expect(res.status).toBe(202);
  return waitForGeneration(app, key, res.body.generationId);
}

describe("GET /metrics", () => {
  it("reflects generations, failover, circuits, payments, the job queue and holds", async () => {
    const { key } = await createFundedCaller(app.ctx, 1_000n);
    // A job that became runnable 30 s ago (an unknown result id, so running it does nothing):
    // its start lag is at least 30 s.
    await app.ctx.pool.query(
      `select graphile_worker.add_job('run_generation', json_build_object('resultId', 'res_none'),
                                      run_at => now() - interval '30 seconds')`,
    );
    // Jobs of a task no worker here runs: two runnable (one for 90 s already), one scheduled.
    await app.ctx.pool.query(`
      select graphile_worker.add_job('metrics_probe', '{}'::json, run_at => now() - interval '90 seconds'),
             graphile_worker.add_job('metrics_probe', '{}'::json),
             graphile_worker.add_job('metrics_probe', '{}'::json, run_at => now() + interval '1 hour')`);

    // Routes are labelled by their pattern, never the URL; unmatched ones share one label.
    expect(
      (await app.request("GET", "/v1/videos/jobs/gen_01arz3ndektsv4rrffq69g5fav", { token: key }))
        .status,
    ).toBe(404);
    expect((await app.request("GET", "/no/such/gen_path")).status).toBe(404);

    expect((await generate(key, "z-image-turbo")).results[0]).toMatchObject({
      status: "completed",
      routing: { upstream: "sandbox" },
    });
    // The primary answers 500: the backup serves it. That is the primary's first failure.
    expect((await generate(key, "gpt-image-2")).results[0].routing).toMatchObject({
      upstream: "openai-backup",
      failover: true,
    });
    // Only the primary serves qwen: it fails, and its second failure opens the circuit.
    expect((await generate(key, "qwen-image-2.0")).status).toBe("failed");

    // A header that is no payment is refused before anything else happens.
    const garbage = await app.request("POST", "/v1/generate", {
      json: { prompt: "x", models: ["z-image-turbo"] },
      headers: { "payment-signature": "bm90IGEgcGF5bWVudA==" },
    });
    expect(garbage.status).toBe(402);
    // Paid per call on anvil through the x402 client: a 402, then the paid 202.
    const payer = await fundedPayer(chain, 10n ** 6n);
    const paid = await payingFetch(payer, "test")(`${app.url}/v1/generate`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ prompt: "paid", models: ["z-image-turbo"] }),
    });
    expect(paid.status).toBe(202);
    const { generationId, accessToken } = (await paid.json()) as Record<string, string>;
    expect(
      (await waitForGeneration(app, accessToken as string, generationId as string)).status,
    ).toBe("completed");

    const reserved = await app.request("POST", "/v1/studio/reserve", {
      token: key,
      json: { credits: 200 },
    });
    expect(reserved.status).toBe(201);

    const lag = "polyforge_job_start_lag_seconds";
    const samples = await scrapeUntil(
      (s) => value(s, `${lag}_count`, { task: "run_generation" }) === 5,
    );

    // Per model result: status and the channel that served it.
    const results = "polyforge_generation_results_total";
    expect(
      value(samples, results, { model: "z-image-turbo", status: "completed", channel: "sandbox" }),
    ).toBe(2);
    expect(
      value(samples, results, {
        model: "gpt-image-2",
        status: "completed",
        channel: "openai-backup",
      }),
    ).toBe(1);
    expect(
      value(samples, results, { model: "qwen-image-2.0", status: "failed", channel: "none" }),
    ).toBe(1);
    expect(samples.filter((s) => s.name === results)).toHaveLength(3);

    const failovers = "polyforge_routing_failovers_total";
    expect(
      value(samples, failovers, {
        model: "gpt-image-2",
        from: "openai-primary",
        to: "openai-backup",
      }),
    ).toBe(1);
    expect(samples.filter((s) => s.name === failovers)).toHaveLength(1);

    // Circuits, read from PostgreSQL: one row per configured channel and state.
    const circuit = "polyforge_channel_circuit_state";
    expect(value(samples, circuit, { channel: "openai-primary", state: "open" })).toBe(1);
    expect(value(samples, circuit, { channel: "openai-primary", state: "closed" })).toBe(0);
    expect(value(samples, circuit, { channel: "openai-backup", state: "closed" })).toBe(1);
    expect(value(samples, circuit, { channel: "sandbox", state: "closed" })).toBe(1);
    expect(samples.filter((s) => s.name === circuit)).toHaveLength(9);

    // Payments: one settled on anvil, one refused before any network was known.
    const payments = "polyforge_payments_total";
    expect(
      value(samples, payments, { network: "test", purpose: "generation", outcome: "settled" }),
    ).toBe(1);
    expect(
      value(samples, payments, { network: "unknown", purpose: "generation", outcome: "refused" }),
    ).toBe(1);
    expect(samples.filter((s) => s.name === payments)).toHaveLength(2);
    const settle = "polyforge_payment_settle_duration_seconds";
    expect(value(samples, `${settle}_count`, { network: "test", outcome: "settled" })).toBe(1);
    expect(
      value(samples, `${settle}_sum`, { network: "test", outcome: "settled" }),
    ).toBeGreaterThan(0);

    // Job start lag: five run_generation jobs started, one of them 30 s or more after its run_at.
    const le10 = value(samples, `${lag}_bucket`, { task: "run_generation", le: "10" });
    expect(5 - le10).toBeGreaterThanOrEqual(1);
    expect(value(samples, `${lag}_sum`, { task: "run_generation" })).toBeGreaterThanOrEqual(30);
    // The queue, from graphile_worker.jobs.
    expect(value(samples, "polyforge_jobs", { task: "metrics_probe", state: "runnable" })).toBe(2);
    expect(value(samples, "polyforge_jobs", { task: "metrics_probe", state: "scheduled" })).toBe(1);
    expect(value(samples, "polyforge_jobs", { task: "run_generation", state: "runnable" })).toBe(0);
    const oldest = value(samples, "polyforge_job_oldest_runnable_age_seconds");
    expect(oldest).toBeGreaterThanOrEqual(90);
    expect(oldest).toBeLessThan(3600);

    // Holds: every generation's hold is resolved; the reservation's 200 credits are held.
    expect(value(samples, "polyforge_ledger_open_holds", { network: "test" })).toBe(1);
    expect(value(samples, "polyforge_ledger_held_credits", { network: "test" })).toBe(200);
    expect(value(samples, "polyforge_ledger_open_holds", { network: "live" })).toBe(0);
    expect(value(samples, "polyforge_ledger_held_credits", { network: "live" })).toBe(0);

    // HTTP: by route pattern, method and status.
    const http = "polyforge_http_request_duration_seconds_count";
    expect(value(samples, http, { method: "POST", route: "/v1/generate", status: "202" })).toBe(4);
    expect(value(samples, http, { method: "POST", route: "/v1/generate", status: "402" })).toBe(2);
    expect(
      value(samples, http, { method: "GET", route: "/v1/videos/jobs/:id", status: "404" }),
    ).toBe(1);
    expect(value(samples, http, { method: "GET", route: "unmatched", status: "404" })).toBe(1);
    const routes = new Set(samples.filter((s) => s.name === http).map((s) => s.labels.route));
    expect([...routes].filter((r) => r?.includes("gen_"))).toEqual([]);

    // Process metrics under their standard names.
    expect(value(samples, "process_cpu_user_seconds_total")).toBeGreaterThan(0);
    expect(value(samples, "nodejs_heap_size_used_bytes")).toBeGreaterThan(0);
  });

  it("takes only the METRICS_TOKEN when one is set", async () => {
    const none = await app.request("GET", "/metrics");
    expect(none.status).toBe(401);
    expect(none.body.error).toMatchObject({
      code: "missing_api_key",
      requestId: expect.any(String),
    });
    const wrong = await app.request("GET", "/metrics", {
      headers: { authorization: `Bearer ${TOKEN}x` },
    });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.code).toBe("invalid_api_key");
    expect(JSON.stringify(wrong.body)).not.toContain(TOKEN);
    expect(app.logs.join("")).not.toContain(TOKEN);
  });

  // The same registry as the API's: it sees the traffic of the first test.
  it("is served by the worker's own listener, with the same token", async () => {
    const listener = await startMetricsServer(app.ctx, 0);
    try {
      const refused = await fetch(`${listener.url}/metrics`);
      expect(refused.status).toBe(401);
      expect(((await refused.json()) as { error: { code: string } }).error.code).toBe(
        "missing_api_key",
      );
      const res = await fetch(`${listener.url}/metrics`, { headers: auth });
      expect(res.status).toBe(200);
      const samples = parse(await res.text());
      expect(
        value(samples, "polyforge_job_start_lag_seconds_count", { task: "run_generation" }),
      ).toBe(5);
      expect(value(samples, "polyforge_jobs", { task: "metrics_probe", state: "runnable" })).toBe(
        2,
      );
      expect((await fetch(`${listener.url}/v1/models`)).status).toBe(404);
    } finally {
      await listener.close();
    }
  });
});
