/**
 * Chat through the gateway against the simulated OpenAI chat upstream called directly, in the
 * same run (issue 20's benchmarks):
 *   1. time to first token, streamed, 1 in flight: from sending the request to reading the
 *      first chunk that carries text;
 *   2. plain chat requests/s at 32 connections.
 * The gateway's share of each is the hold, the routing, the settle and the SSE relay.
 *
 *   npx tsx scripts/bench/chat.ts [--calls 200] [--seconds 5] [--smoke] [--pg-port 54402]
 */

import { findOrCreateWalletAccount } from "../../src/domains/accounts/service.js";
import { createApiKey } from "../../src/domains/keys/service.js";
import { grantCredits } from "../../src/domains/ledger/service.js";
import { startHttpServer } from "../../src/http/server.js";
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
import { startBench } from "./setup.js";

const options = benchOptions(
  { calls: { full: 200, smoke: 20 }, seconds: { full: 5, smoke: 1 } },
  54_402,
);
const MODEL = "gpt-5.4-mini";
const CONNECTIONS = 32;
const messages = [{ role: "user", content: "name three lighthouses on the atlantic coast" }];

type Row = Pick<LoadResult, "perSecond" | "p50" | "p99" | "errors">;
const rows: string[] = [];
const row = (what: string, inFlight: number, r: Row, baseline?: Row) =>
  rows.push(
    `| ${what} | ${inFlight} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.perSecond.toFixed(0)} | ${
      baseline ? (r.perSecond / baseline.perSecond).toFixed(2) : "1.00"
    } | ${r.errors} |`,
  );

/** Milliseconds from the request to the first chunk with text; the rest is read, untimed. */
async function firstToken(
  url: string,
  body: string,
  headers: Record<string, string>,
  signal: AbortSignal,
) {
  const started = performance.now();
  const res = await fetch(url, { method: "POST", headers, body, signal });
  if (res.status !== 200 || !res.body) throw new Error(`answered ${res.status}`);
  const decoder = new TextDecoder();
  let seen = "";
  let at: number | undefined;
  for await (const bytes of res.body) {
    seen += decoder.decode(bytes as Uint8Array, { stream: true });
    if (at === undefined && /"content":"[^"]/.test(seen)) at = performance.now() - started;
  }
  if (at === undefined || !seen.includes("[DONE]")) throw new Error("no text streamed");
  return at;
}

/** `calls` sequential calls of `op`, each timed by what it returns. */
async function sequential(
  bench: Bench,
  name: string,
  op: (signal: AbortSignal) => Promise<number>,
) {
  return bench.phase(name, 120_000, async (signal) => {
    const times: number[] = [];
    let errors = 0;
    const started = performance.now();
    for (let i = 0; i < options.calls && !signal.aborted; i++) {
      try {
        times.push(await op(requestSignal(signal)));
      } catch {
        errors++;
      }
    }
    times.sort((a, b) => a - b);
    const result = {
      ops: times.length + errors,
      errors,
      perSecond: (times.length + errors) / ((performance.now() - started) / 1000),
      p50: percentile(times, 0.5),
      p99: percentile(times, 0.99),
    };
    bench.check(name, result);
    return result;
  });
}

await runBench(async (bench) => {
  const sim = await bench.phase("simulator", 30_000, () => startSimulator());
  bench.defer("close the simulator", () => sim.close());
  const { ctx, key } = await startBench(bench, {
    port: options.pgPort,
    poolMax: 20,
    rateLimits: "off",
    maxInFlightGenerations: 100_000,
    env: {
      CHANNELS: JSON.stringify([
        {
          id: "sim",
          provider: "openai",
          baseUrl: `${sim.url}/openai`,
          apiKey: "k",
          networks: ["test"],
          models: { [MODEL]: MODEL },
        },
      ]),
    },
    wallet: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    credits: 10n ** 12n,
  });
  const http = await bench.phase("http", 30_000, () => startHttpServer(ctx));
  bench.defer("close the HTTP server", () => http.close());
  const direct = {
    url: `${sim.url}/openai/v1/chat/completions`,
    headers: { "content-type": "application/json", authorization: "Bearer k" },
  };
  const gateway = {
    url: `${http.url}/v1/chat/completions`,
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
  };
  const streamed = JSON.stringify({ model: MODEL, messages, max_tokens: 200, stream: true });
  const plain = JSON.stringify({ model: MODEL, messages, max_tokens: 200 });

  const ttftDirect = await sequential(bench, "ttft: upstream directly", (signal) =>
    firstToken(direct.url, streamed, direct.headers, signal),
  );
  const ttftGateway = await sequential(bench, "ttft: POST /v1/chat/completions", (signal) =>
    firstToken(gateway.url, streamed, gateway.headers, signal),
  );

  // One account per connection, as many callers are; and all of them on one account, whose
  // balance every hold and settle then takes in turn.
  const keys = await bench.phase("setup: accounts", 60_000, async () => {
    const made: string[] = [];
    for (let i = 0; i < CONNECTIONS; i++) {
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
      made.push(
        (await createApiKey(ctx, { accountId: other.id }, { name: "bench", network: "test" })).key,
      );
    }
    return made;
  });
  const spread = (client: number) => ({
    url: gateway.url,
    headers: { ...gateway.headers, authorization: `Bearer ${keys[client]}` },
  });

  const throughput = (name: string, target: (client: number) => typeof direct) =>
    bench.phase(name, options.seconds * 1000 + 30_000, async (signal) => {
      const result = await load(
        { clients: CONNECTIONS, seconds: options.seconds, signal },
        async (client, _i, s) => {
          const { url, headers } = target(client);
          const res = await fetch(url, {
            method: "POST",
            headers,
            body: plain,
            signal: requestSignal(s),
          });
          await res.arrayBuffer();
          if (res.status !== 200) throw new Error(`answered ${res.status}`);
        },
      );
      bench.check(name, result);
      return result;
    });
  const rpsDirect = await throughput("throughput: upstream directly", () => direct);
  const rpsGateway = await throughput("throughput: POST /v1/chat/completions", spread);
  const rpsOneAccount = await throughput("throughput: one account", () => gateway);

  rows.push("| what | in flight | p50 ms | p99 ms | req/s | vs direct | errors |");
  rows.push("|---|---|---|---|---|---|---|");
  row("time to first token: simulated upstream directly (baseline)", 1, ttftDirect);
  row("time to first token: POST /v1/chat/completions, streamed", 1, ttftGateway, ttftDirect);
  row("plain chat: simulated upstream directly (baseline)", CONNECTIONS, rpsDirect);
  row(
    "plain chat: POST /v1/chat/completions, an account per connection",
    CONNECTIONS,
    rpsGateway,
    rpsDirect,
  );
  row("plain chat: POST /v1/chat/completions, one account", CONNECTIONS, rpsOneAccount, rpsDirect);
  rows.push(
    "",
    `Time to first token added, p50: ${(ttftGateway.p50 - ttftDirect.p50).toFixed(2)} ms`,
  );
  console.log(rows.join("\n"));
});
