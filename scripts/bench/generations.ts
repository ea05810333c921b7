/**
 * The generation pipeline's speed, each figure beside its baseline in the same run, on one
 * fresh embedded PostgreSQL (default durability) with the API in this process:
 *   1. submits/s and latency through HTTP (auth, validation, holds, rows, enqueue, 202) vs the
 *      same service call without HTTP;
 *   2. status polls/s vs a trivial authenticated route (GET /v1/account);
 *   3. submit → job start latency at light load and at ~60% of the measured submit capacity,
 *      vs graphile-worker's own floor (add_job of a task that does nothing);
 *   4. one synchronous image through the gateway vs the simulated upstream called directly.
 *
 *   npx tsx scripts/bench/generations.ts [--seconds 5] [--gateway-calls 100] [--smoke]
 *                                        [--pg-port 54398]
 */

import { execFile, spawnSync } from "node:child_process";
import { cpus } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { run } from "graphile-worker";
import { findOrCreateWalletAccount } from "../../src/domains/accounts/service.js";
import { generateRequest } from "../../src/domains/generations/request.js";
import { submitGeneration } from "../../src/domains/generations/submit.js";
import { createApiKey } from "../../src/domains/keys/service.js";
import { grantCredits } from "../../src/domains/ledger/service.js";
import { startHttpServer } from "../../src/http/server.js";
import { graphileLogger } from "../../src/jobs/logger.js";
import { startWorker } from "../../src/jobs/worker.js";
import { creditUnits } from "../../src/lib/credits.js";
import { startSimulator } from "../../test/simulator/upstream.js";
import {
  type Bench,
  benchOptions,
  type LoadResult,
  load,
  percentile,
  requestSignal,
  runBench,
} from "./harness.js";
import { benchLogger, startBench, withSimulatedOpenAi } from "./setup.js";

const options = benchOptions(
  { seconds: { full: 5, smoke: 1 }, "gateway-calls": { full: 100, smoke: 20 } },
  54_398,
);
const SECONDS = options.seconds;
const GATEWAY_CALLS = options["gateway-calls"];
/** A load phase's deadline: its SECONDS, and time to spare for the slowest request to end. */
const LOAD_MS = SECONDS * 1000 + 30_000;
/** How long a synchronous image request may wait for its image (IMAGES_WAIT_MS). */
const IMAGES_WAIT_MS = 10_000;
const rows: string[] = [];

type Row = Pick<LoadResult, "perSecond" | "p50" | "p99" | "errors">;
const row = (table: string, what: string, r: Row, baseline?: { perSecond: number }) =>
  rows.push(
    `| ${table} | ${what} | ${r.perSecond.toFixed(0)} | ${baseline ? (r.perSecond / baseline.perSecond).toFixed(2) : "1.00"} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.errors} |`,
  );

/** One row's load as its own phase, with its errors counted against it. */
async function measure(
  bench: Bench,
  name: string,
  clients: number,
  op: (client: number, signal: AbortSignal) => Promise<unknown>,
) {
  const result = await bench.phase(name, LOAD_MS, (signal) =>
    load({ clients, seconds: SECONDS, signal }, (client, _i, s) => op(client, s)),
  );
  bench.check(name, result);
  return result;
}

/** Fails the call unless the answer has `status`; the body is read either way. */
async function expect(res: Response, status: number) {
  await res.arrayBuffer();
  if (res.status !== status) throw new Error(`answered ${res.status}`);
}

await runBench(async (bench) => {
  try {
    await main(bench);
  } finally {
    // What was measured before a failure still prints.
    console.log(
      `Machine: ${cpus().length} cores; ${SECONDS} s per row; client, API and PostgreSQL on one machine.\n`,
    );
    console.log(
      "| table | what | ops/s | vs baseline | p50 ms | p99 ms | errors |\n|---|---|---|---|---|---|---|",
    );
    console.log(rows.join("\n"));
  }
});

async function main(bench: Bench) {
  // A simulated OpenAI-format upstream serves gpt-image-2, for the gateway-overhead rows.
  const sim = await bench.phase("simulator", 30_000, () => startSimulator());
  bench.defer("close the simulator", () => sim.close());
  const channels = withSimulatedOpenAi(sim.url);
  const { ctx, account, key } = await startBench(bench, {
    port: options.pgPort,
    poolMax: 20,
    // Submits run back to back from up to 16 clients with no worker (until the gateway rows),
    // so every one stays in flight: one account gathers thousands. The setting's maximum.
    rateLimits: "off",
    maxInFlightGenerations: 100_000,
    env: { CHANNELS: JSON.stringify(channels), IMAGES_WAIT_MS: String(IMAGES_WAIT_MS) },
    wallet: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    credits: 10n ** 12n,
  });
  // Sixteen more accounts, one per client, for the same load spread over accounts.
  const spread = await bench.phase("setup: 16 accounts", 60_000, async () => {
    const spread: Array<{ key: string; scope: { accountId: string; network: "test" } }> = [];
    for (let i = 0; i < 16; i++) {
      const other = await findOrCreateWalletAccount(
        ctx,
        `0x${(i + 1).toString(16).padStart(40, "0")}`,
      );
      await grantCredits(ctx, {
        id: `bench-${i}`,
        ownerId: other.id,
        network: "test",
        amount: creditUnits(10n ** 9n),
        reason: "bench",
      });
      const created = await createApiKey(
        ctx,
        { accountId: other.id },
        { name: "bench", network: "test" },
      );
      spread.push({ key: created.key, scope: { accountId: other.id, network: "test" } });
    }
    return spread;
  });
  const http = await bench.phase("http", 30_000, () => startHttpServer(ctx));
  bench.defer("close the HTTP server", () => http.close());
  const headers = { authorization: `Bearer ${key}`, "content-type": "application/json" };
  const body = JSON.stringify({ prompt: "bench", models: ["z-image-turbo"] });
  const request = generateRequest.parse(JSON.parse(body));
  const scope = { accountId: account.id, network: "test" as const };
  const post = (signal: AbortSignal, authorization = headers.authorization) =>
    fetch(`${http.url}/v1/generate`, {
      method: "POST",
      headers: { ...headers, authorization },
      body,
      signal: requestSignal(signal),
    });
  const spreadOf = (c: number) => spread[c] as (typeof spread)[number];

  // 1. Accepted submits (no worker running: this measures the accept path only).
  for (const clients of [4, 16]) {
    const direct = await measure(bench, `submit: service call, ${clients} clients`, clients, () =>
      submitGeneration(ctx, scope, request),
    );
    const viaHttp = await measure(
      bench,
      `submit: POST /v1/generate, ${clients} clients`,
      clients,
      async (_c, signal) => expect(await post(signal), 202),
    );
    row("submit", `service call, ${clients} clients, one account (baseline)`, direct);
    row("submit", `POST /v1/generate, ${clients} clients, one account`, viaHttp, direct);
  }
  const spreadDirect = await measure(bench, "submit: service call, 16 accounts", 16, (c) =>
    submitGeneration(ctx, spreadOf(c).scope, request),
  );
  const spreadHttp = await measure(
    bench,
    "submit: POST /v1/generate, 16 accounts",
    16,
    async (c, signal) => expect(await post(signal, `Bearer ${spreadOf(c).key}`), 202),
  );
  row("submit", "service call, 16 clients, 16 accounts (baseline)", spreadDirect);
  row("submit", "POST /v1/generate, 16 clients, 16 accounts", spreadHttp, spreadDirect);

  // 2. Status polls.
  const some = await bench.phase("poll: pick generations", 30_000, async () => {
    const { rows: found } = await ctx.pool.query<{ id: string }>(
      "select id from generations limit 50",
    );
    if (found.length === 0) throw new Error("no generation to poll: every submit failed");
    return found;
  });
  const ids = some.map((r) => r.id).join(",");
  const get = async (path: string, signal: AbortSignal) =>
    expect(await fetch(`${http.url}${path}`, { headers, signal: requestSignal(signal) }), 200);
  for (const clients of [4, 16]) {
    const trivial = await measure(
      bench,
      `poll: GET /v1/account, ${clients} clients`,
      clients,
      (_c, s) => get("/v1/account", s),
    );
    const one = await measure(bench, `poll: status of 1, ${clients} clients`, clients, (_c, s) =>
      get(`/v1/generate/status?ids=${some[0]?.id}`, s),
    );
    const fifty = await measure(bench, `poll: status of 50, ${clients} clients`, clients, (_c, s) =>
      get(`/v1/generate/status?ids=${ids}`, s),
    );
    row("poll", `GET /v1/account, ${clients} clients (baseline)`, trivial);
    row("poll", `status of 1 generation, ${clients} clients`, one, trivial);
    row("poll", `status of 50 generations, ${clients} clients`, fifty, trivial);
  }
  // The same two polls driven by wrk from its own process, when wrk is installed (Debian: wrk):
  // the in-process client above costs the server CPU it would otherwise have.
  if (spawnSync("wrk", ["--version"]).status !== null) {
    // Asynchronously: the API being measured runs on this process's event loop.
    const wrk = (name: string, url: string) =>
      bench.phase(name, LOAD_MS, async (signal) => {
        const { stdout: out } = await promisify(execFile)(
          "wrk",
          [
            "-t1",
            "-c16",
            `-d${Math.max(1, Math.round(SECONDS))}s`,
            "--latency",
            "-H",
            `Authorization: Bearer ${key}`,
            url,
          ],
          { signal },
        );
        const ms = (label: string) => {
          const m = new RegExp(`${label}\\s+([\\d.]+)(us|ms|s)`).exec(out);
          if (!m) return Number.NaN;
          return Number(m[1]) * (m[2] === "us" ? 0.001 : m[2] === "s" ? 1000 : 1);
        };
        const ops = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
        const errors =
          Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0) +
          [...out.matchAll(/(connect|read|write|timeout) (\d+)/g)].reduce(
            (sum, m) => sum + Number(m[2]),
            0,
          );
        const result = {
          ops,
          errors,
          perSecond: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0),
          p50: ms("50%"),
          p99: ms("99%"),
        };
        bench.check(name, result);
        return result;
      });
    const trivial = await wrk("poll: wrk GET /v1/account", `${http.url}/v1/account`);
    row("poll", "GET /v1/account, wrk 16 connections (baseline)", trivial);
    row(
      "poll",
      "status of 1 generation, wrk 16 connections",
      await wrk("poll: wrk status of 1", `${http.url}/v1/generate/status?ids=${some[0]?.id}`),
      trivial,
    );
  }

  // 3. Submit → job start. The task records when it started and does no work.
  await bench.phase("job start: clear the queue", 30_000, () =>
    ctx.pool.query("delete from graphile_worker._private_jobs"),
  );
  const started = new Map<string, number>();
  const runner = await bench.phase("job start: runner", 30_000, () =>
    run({
      pgPool: ctx.pool,
      concurrency: 4,
      noHandleSignals: true,
      logger: graphileLogger(benchLogger),
      taskList: {
        run_generation: async (payload) => {
          started.set((payload as { resultId: string }).resultId, performance.now());
        },
        noop: async (payload) => {
          started.set((payload as { id: string }).id, performance.now());
        },
      },
    }),
  );
  let runnerStopped = false;
  bench.defer("stop the job-start runner", () => runnerStopped || runner.stop());
  const measureStart = (
    name: string,
    rate: number,
    submit: (i: number, signal: AbortSignal) => Promise<string>,
  ) =>
    bench.phase(name, LOAD_MS + 30_000, async (signal) => {
      const submitted = new Map<string, number>();
      let failed = 0;
      const began = performance.now();
      const interval = 1000 / rate;
      const total = Math.round(rate * SECONDS);
      for (let i = 0; i < total && !signal.aborted; i++) {
        const t = performance.now();
        try {
          submitted.set(await submit(i, signal), t);
        } catch {
          failed++;
        }
        const wait = interval - (performance.now() - t);
        if (wait > 0) await sleep(wait);
      }
      const elapsed = (performance.now() - began) / 1000;
      // Up to a second for the last jobs to start.
      const until = performance.now() + 1000;
      while (performance.now() < until && [...submitted.keys()].some((id) => !started.has(id))) {
        await sleep(20);
      }
      const lags = [...submitted]
        .filter(([id]) => started.has(id))
        .map(([id, t]) => (started.get(id) as number) - t)
        .sort((a, b) => a - b);
      // perSecond is the rate actually reached: one client submits one after another. A submit
      // that failed, or whose job did not start within a second of the last submit, is an error.
      const result = {
        ops: submitted.size + failed,
        errors: failed + submitted.size - lags.length,
        perSecond: lags.length / elapsed,
        p50: percentile(lags, 0.5),
        p99: percentile(lags, 0.99),
      };
      bench.check(name, result);
      return result;
    });
  for (const [label, rate] of [
    ["light (20/s)", 20],
    ["one client back to back", 1000],
  ] as const) {
    const floor = await measureStart(`job start: add_job, ${label}`, rate, async (i) => {
      const id = `noop-${rate}-${i}`;
      await ctx.pool.query(
        "select graphile_worker.add_job('noop', json_build_object('id', $1::text))",
        [id],
      );
      return id;
    });
    const ours = await measureStart(
      `job start: POST /v1/generate, ${label}`,
      rate,
      async (_i, s) => {
        const res = await post(s);
        if (res.status !== 202) {
          await res.arrayBuffer();
          throw new Error(`answered ${res.status}`);
        }
        const json = (await res.json()) as { generationId: string };
        return `${json.generationId}.0`;
      },
    );
    row("job start", `add_job → start, ${label} (baseline)`, floor);
    row("job start", `POST /v1/generate → start, ${label}`, ours, floor);
  }
  await bench.phase("job start: stop the runner", 30_000, async () => {
    runnerStopped = true;
    await runner.stop();
  });

  // 4. Gateway overhead: one synchronous image through Polyforge (submit, job, routing, the
  // upstream call, storage, settlement, wake-up, answer) vs the same upstream called directly.
  const worker = await bench.phase("gateway: worker", 30_000, () => startWorker(ctx));
  bench.defer("stop the worker", () => worker.stop());
  const upstreamBody = JSON.stringify({
    model: "gpt-image-1",
    prompt: "overhead",
    n: 1,
    size: "1024x1024",
  });
  const sequential = (
    name: string,
    requestMs: number,
    op: (signal: AbortSignal) => Promise<void>,
  ) =>
    bench.phase(name, 30_000 + GATEWAY_CALLS * requestMs, async (signal) => {
      const latencies: number[] = [];
      let errors = 0;
      for (let i = 0; i < GATEWAY_CALLS && !signal.aborted; i++) {
        const t = performance.now();
        try {
          await op(requestSignal(signal, requestMs));
        } catch {
          errors++;
        }
        latencies.push(performance.now() - t);
      }
      latencies.sort((a, b) => a - b);
      const total = latencies.reduce((a, b) => a + b, 0) / 1000;
      const result = {
        ops: latencies.length,
        errors,
        perSecond: latencies.length / total,
        p50: percentile(latencies, 0.5),
        p99: percentile(latencies, 0.99),
      };
      bench.check(name, result);
      return result;
    });
  const direct = await sequential("gateway: upstream directly", 10_000, async (signal) => {
    const res = await fetch(`${sim.url}/openai/v1/images/generations`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer k" },
      body: upstreamBody,
      signal,
    });
    if (res.status !== 200) throw new Error(`upstream answered ${res.status}`);
    await res.json();
  });
  // An image request waits up to IMAGES_WAIT_MS, then answers 202 (counted as an error here).
  const gateway = await sequential(
    "gateway: POST /v1/images/generations",
    IMAGES_WAIT_MS + 10_000,
    async (signal) => {
      const res = await fetch(`${http.url}/v1/images/generations`, {
        method: "POST",
        headers,
        body: JSON.stringify({
          model: "gpt-image-2",
          prompt: "overhead",
          response_format: "b64_json",
        }),
        signal,
      });
      if (res.status !== 200) {
        await res.arrayBuffer();
        throw new Error(`images answered ${res.status}`);
      }
      await res.json();
    },
  );
  row("gateway", "simulated upstream called directly, 1 in flight (baseline)", direct);
  row("gateway", "POST /v1/images/generations, 1 in flight", gateway, direct);
  rows.push("", `Gateway p50 added: ${(gateway.p50 - direct.p50).toFixed(1)} ms`);
}
