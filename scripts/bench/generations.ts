/**
 * The generation pipeline's speed, each figure beside its baseline in the same run, on one
 * fresh embedded PostgreSQL (default durability) with the API in this process:
 *   1. submits/s and latency through HTTP (auth, validation, holds, rows, enqueue, 202) vs the
 *      same service call without HTTP;
 *   2. status polls/s vs a trivial authenticated route (GET /v1/account);
 *   3. submit → job start latency at light load and at ~60% of the measured submit capacity,
 *      vs graphile-worker's own floor (add_job of a task that does nothing).
 *
 *   npx tsx scripts/bench/generations.ts [--seconds 5]
 */
import { execFile, spawnSync } from "node:child_process";
import { cpus } from "node:os";
import { promisify } from "node:util";
import { run } from "graphile-worker";
import { findOrCreateWalletAccount } from "../../src/domains/accounts/service.js";
import { generateRequest } from "../../src/domains/generations/request.js";
import { submitGeneration } from "../../src/domains/generations/submit.js";
import { createApiKey } from "../../src/domains/keys/service.js";
import { grantCredits } from "../../src/domains/ledger/service.js";
import { defaultChannels } from "../../src/domains/routing/channels.js";
import { startHttpServer } from "../../src/http/server.js";
import { startWorker } from "../../src/jobs/worker.js";
import { startSimulator } from "../../test/simulator/upstream.js";
import { benchLogger, startBench } from "./setup.js";

const SECONDS = Number(process.argv[process.argv.indexOf("--seconds") + 1]) || 5;
const rows: string[] = [];
let gatewayAdded: number | undefined;
const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;

async function load(clients: number, op: (client: number) => Promise<unknown>) {
  const latencies: number[] = [];
  let errors = 0;
  const end = performance.now() + SECONDS * 1000;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async (_, client) => {
      while (performance.now() < end) {
        const t = performance.now();
        try {
          await op(client);
        } catch {
          errors++;
        }
        latencies.push(performance.now() - t);
      }
    }),
  );
  latencies.sort((a, b) => a - b);
  return {
    perSecond: latencies.length / ((performance.now() - start) / 1000),
    p50: pct(latencies, 0.5),
    p99: pct(latencies, 0.99),
    errors,
  };
}

const row = (
  table: string,
  what: string,
  r: { perSecond: number; p50: number; p99: number; errors: number },
  baseline?: { perSecond: number },
) =>
  rows.push(
    `| ${table} | ${what} | ${r.perSecond.toFixed(0)} | ${baseline ? (r.perSecond / baseline.perSecond).toFixed(2) : "1.00"} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.errors} |`,
  );

async function main() {
  // A simulated OpenAI-format upstream serves gpt-image-2, for the gateway-overhead rows.
  const sim = await startSimulator();
  const channels = [
    ...defaultChannels,
    {
      id: "sim",
      provider: "openai",
      baseUrl: `${sim.url}/openai`,
      apiKey: "k",
      networks: ["test"],
      models: { "gpt-image-2": "gpt-image-1" },
      priority: 0,
      weight: 1,
    },
  ];
  const bench = await startBench({
    port: 54_398,
    poolMax: 20,
    env: { CHANNELS: JSON.stringify(channels) },
    wallet: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    credits: 10n ** 12n,
  });
  const { ctx, account, key } = bench;
  // Sixteen more accounts, one per client, for the same load spread over accounts.
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
      credits: 10n ** 9n,
      reason: "bench",
    });
    const created = await createApiKey(
      ctx,
      { accountId: other.id },
      { name: "bench", network: "test" },
    );
    spread.push({ key: created.key, scope: { accountId: other.id, network: "test" } });
  }
  const http = await startHttpServer(ctx);
  const headers = { authorization: `Bearer ${key}`, "content-type": "application/json" };
  const body = JSON.stringify({ prompt: "bench", models: ["z-image-turbo"] });
  const request = generateRequest.parse(JSON.parse(body));
  const scope = { accountId: account.id, network: "test" as const };
  try {
    // 1. Accepted submits (no worker running: this measures the accept path only).
    for (const clients of [4, 16]) {
      const direct = await load(clients, () => submitGeneration(ctx, scope, request));
      const viaHttp = await load(clients, async () => {
        const res = await fetch(`${http.url}/v1/generate`, { method: "POST", headers, body });
        await res.arrayBuffer();
        if (res.status !== 202) throw new Error(String(res.status));
      });
      row("submit", `service call, ${clients} clients, one account (baseline)`, direct);
      row("submit", `POST /v1/generate, ${clients} clients, one account`, viaHttp, direct);
    }
    const spreadDirect = await load(16, (c) =>
      submitGeneration(ctx, (spread[c] as (typeof spread)[number]).scope, request),
    );
    const spreadHttp = await load(16, async (c) => {
      const res = await fetch(`${http.url}/v1/generate`, {
        method: "POST",
        headers: {
          ...headers,
          authorization: `Bearer ${(spread[c] as (typeof spread)[number]).key}`,
        },
        body,
      });
      await res.arrayBuffer();
      if (res.status !== 202) throw new Error(String(res.status));
    });
    row("submit", "service call, 16 clients, 16 accounts (baseline)", spreadDirect);
    row("submit", "POST /v1/generate, 16 clients, 16 accounts", spreadHttp, spreadDirect);
    const { rows: some } = await ctx.pool.query("select id from generations limit 50");
    const ids = some.map((r) => r.id).join(",");
    for (const clients of [4, 16]) {
      const trivial = await load(clients, async () => {
        const res = await fetch(`${http.url}/v1/account`, { headers });
        await res.arrayBuffer();
      });
      const one = await load(clients, async () => {
        const res = await fetch(`${http.url}/v1/generate/status?ids=${some[0]?.id}`, { headers });
        await res.arrayBuffer();
        if (res.status !== 200) throw new Error(String(res.status));
      });
      const fifty = await load(clients, async () => {
        const res = await fetch(`${http.url}/v1/generate/status?ids=${ids}`, { headers });
        await res.arrayBuffer();
      });
      row("poll", `GET /v1/account, ${clients} clients (baseline)`, trivial);
      row("poll", `status of 1 generation, ${clients} clients`, one, trivial);
      row("poll", `status of 50 generations, ${clients} clients`, fifty, trivial);
    }
    // The same two polls driven by wrk from its own process, when wrk is installed (Debian: wrk):
    // the in-process client above costs the server CPU it would otherwise have.
    if (spawnSync("wrk", ["--version"]).status !== null) {
      // Asynchronously: the API being measured runs on this process's event loop.
      const wrk = async (url: string) => {
        const { stdout: out } = await promisify(execFile)("wrk", [
          "-t1",
          "-c16",
          `-d${SECONDS}s`,
          "--latency",
          "-H",
          `Authorization: Bearer ${key}`,
          url,
        ]);
        const ms = (label: string) => {
          const m = new RegExp(`${label}\\s+([\\d.]+)(us|ms|s)`).exec(out);
          if (!m) return Number.NaN;
          return Number(m[1]) * (m[2] === "us" ? 0.001 : m[2] === "s" ? 1000 : 1);
        };
        return {
          perSecond: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0),
          p50: ms("50%"),
          p99: ms("99%"),
          errors: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
        };
      };
      const trivial = await wrk(`${http.url}/v1/account`);
      row("poll", "GET /v1/account, wrk 16 connections (baseline)", trivial);
      row(
        "poll",
        "status of 1 generation, wrk 16 connections",
        await wrk(`${http.url}/v1/generate/status?ids=${some[0]?.id}`),
        trivial,
      );
    }
    await ctx.pool.query("delete from graphile_worker._private_jobs");

    // 3. Submit → job start. The task records when it started and does no work.
    const started = new Map<string, number>();
    const runner = await run({
      pgPool: ctx.pool,
      concurrency: 4,
      noHandleSignals: true,
      logger: (await import("../../src/jobs/logger.js")).graphileLogger(benchLogger),
      taskList: {
        run_generation: async (payload) => {
          started.set((payload as { resultId: string }).resultId, performance.now());
        },
        noop: async (payload) => {
          started.set((payload as { id: string }).id, performance.now());
        },
      },
    });
    const measureStart = async (rate: number, submit: (i: number) => Promise<string>) => {
      const submitted = new Map<string, number>();
      const began = performance.now();
      const interval = 1000 / rate;
      const total = Math.round(rate * SECONDS);
      for (let i = 0; i < total; i++) {
        const t = performance.now();
        const id = await submit(i);
        submitted.set(id, t);
        const wait = interval - (performance.now() - t);
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      const elapsed = (performance.now() - began) / 1000;
      await new Promise((r) => setTimeout(r, 1000));
      const lags = [...submitted]
        .filter(([id]) => started.has(id))
        .map(([id, t]) => (started.get(id) as number) - t)
        .sort((a, b) => a - b);
      // perSecond is the rate actually reached: one client submits one after another.
      return {
        perSecond: lags.length / elapsed,
        p50: pct(lags, 0.5),
        p99: pct(lags, 0.99),
        errors: submitted.size - lags.length,
      };
    };
    for (const [label, rate] of [
      ["light (20/s)", 20],
      ["one client back to back", 1000],
    ] as const) {
      const floor = await measureStart(rate, async (i) => {
        const id = `noop-${rate}-${i}`;
        await ctx.pool.query(
          "select graphile_worker.add_job('noop', json_build_object('id', $1::text))",
          [id],
        );
        return id;
      });
      const ours = await measureStart(rate, async () => {
        const res = await fetch(`${http.url}/v1/generate`, { method: "POST", headers, body });
        const json = (await res.json()) as { generationId: string };
        return `${json.generationId}.0`;
      });
      row("job start", `add_job → start, ${label} (baseline)`, floor);
      row("job start", `POST /v1/generate → start, ${label}`, ours, floor);
    }
    await runner.stop();

    // 4. Gateway overhead: one synchronous image through Polyforge (submit, job, routing, the
    // upstream call, storage, settlement, wake-up, answer) vs the same upstream called directly.
    const worker = await startWorker(ctx);
    const upstreamBody = JSON.stringify({
      model: "gpt-image-1",
      prompt: "overhead",
      n: 1,
      size: "1024x1024",
    });
    const sequential = async (n: number, op: () => Promise<void>) => {
      const latencies: number[] = [];
      for (let i = 0; i < n; i++) {
        const t = performance.now();
        await op();
        latencies.push(performance.now() - t);
      }
      latencies.sort((a, b) => a - b);
      const total = latencies.reduce((a, b) => a + b, 0) / 1000;
      return {
        perSecond: n / total,
        p50: pct(latencies, 0.5),
        p99: pct(latencies, 0.99),
        errors: 0,
      };
    };
    const direct = await sequential(100, async () => {
      const res = await fetch(`${sim.url}/openai/v1/images/generations`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: "Bearer k" },
        body: upstreamBody,
      });
      await res.json();
    });
    const gateway = await sequential(100, async () => {
      const res = await fetch(`${http.url}/v1/images/generations`, {
        method: "POST",
        headers,
        body: JSON.stringify({
          model: "gpt-image-2",
          prompt: "overhead",
          response_format: "b64_json",
        }),
      });
      if (res.status !== 200) throw new Error(`images answered ${res.status}`);
      await res.json();
    });
    row("gateway", "simulated upstream called directly, 1 in flight (baseline)", direct);
    row("gateway", "POST /v1/images/generations, 1 in flight", gateway, direct);
    gatewayAdded = gateway.p50 - direct.p50;
    await worker.stop();
    await sim.close();
  } finally {
    await http.close();
    await bench.close();
  }
  console.log(
    `Machine: ${cpus().length} cores; ${SECONDS} s per row; client, API and PostgreSQL on one machine.\n`,
  );
  console.log(
    "| table | what | ops/s | vs baseline | p50 ms | p99 ms | errors |\n|---|---|---|---|---|---|---|",
  );
  console.log(rows.join("\n"));
  if (gatewayAdded !== undefined) console.log(`\nGateway p50 added: ${gatewayAdded.toFixed(1)} ms`);
}

await main();
