/**
 * What paying per call with x402 adds to a generation submit, beside the same submit with an
 * API key, in one run: one embedded PostgreSQL, one anvil chain (automine), the API and the
 * in-process facilitator in this process, the official x402 fetch client paying from anvil's
 * test wallet #1. Each paid request's server time is split into verify (facilitator: signature
 * and simulation), settle (broadcast and receipt) and our own work (the rest: quote, offers,
 * the nonce claim, the record, mint, hold and enqueue).
 *
 *   npx tsx scripts/bench/payments.ts [--calls 100] [--smoke] [--pg-port 54397]
 */
import { ExactEvmScheme } from "@x402/evm/exact/client";
import { wrapFetchWithPaymentFromConfig } from "@x402/fetch";
import {
  anvilAccount,
  LOCAL_ROLES,
  localPaymentConfig,
  startLocalChain,
} from "../../src/chain/local-chain.js";
import { startHttpServer } from "../../src/http/server.js";
import { benchOptions, percentile, requestSignal, runBench } from "./harness.js";
import { startBench } from "./setup.js";

const options = benchOptions(
  { calls: { full: 100, smoke: 10 }, warmup: { full: 10, smoke: 2 } },
  54_397,
);
const CALLS = options.calls;
const pct = (values: number[], p: number) =>
  percentile(
    [...values].sort((a, b) => a - b),
    p,
  );

await runBench(async (bench) => {
  const chain = await bench.phase("chain", 120_000, () => startLocalChain({ network: "test" }));
  bench.defer("stop the chain", () => chain.stop());
  const local = localPaymentConfig(chain.rpcUrl, "test");
  const { ctx, key } = await startBench(bench, {
    port: options.pgPort,
    // Every call is a generate call, from two accounts; no worker runs, so every submit stays
    // in flight: one account holds at most warmup + calls of them.
    rateLimits: "off",
    maxInFlightGenerations: options.warmup + CALLS,
    env: {
      X402_TEST_RPC_URL: chain.rpcUrl,
      X402_TEST_PAY_TO: local.payTo,
      X402_TEST_FACILITATOR_KEY:
        "privateKey" in local.facilitator ? local.facilitator.privateKey : "",
    },
    wallet: anvilAccount(2).address,
    credits: 10n ** 9n,
  });

  // Time the facilitator's two steps inside each paid request.
  const timings = { verify: [] as number[], settle: [] as number[] };
  const gateway = ctx.payments;
  const verify = gateway.verify.bind(gateway);
  const settle = gateway.settle.bind(gateway);
  gateway.verify = async (...args) => {
    const t = performance.now();
    try {
      return await verify(...args);
    } finally {
      timings.verify.push(performance.now() - t);
    }
  };
  gateway.settle = async (...args) => {
    const t = performance.now();
    try {
      return await settle(...args);
    } finally {
      timings.settle.push(performance.now() - t);
    }
  };

  const http = await bench.phase("http", 30_000, () => startHttpServer(ctx));
  bench.defer("close the HTTP server", () => http.close());
  const url = `${http.url}/v1/generate`;
  const body = JSON.stringify({ prompt: "bench", models: ["z-image-turbo"] });
  const paidRequests: number[] = [];
  const challenges: number[] = [];
  // The fetch under the x402 client: times the 402 and the paid request separately.
  const timedFetch: typeof fetch = async (input, init) => {
    const t = performance.now();
    const res = await fetch(input, init);
    await res.clone().arrayBuffer();
    const paid = new Headers(init?.headers ?? (input as Request).headers).has("payment-signature");
    (paid ? paidRequests : challenges).push(performance.now() - t);
    return res;
  };
  const pay = wrapFetchWithPaymentFromConfig(timedFetch, {
    schemes: [
      {
        network: "eip155:84532",
        client: new ExactEvmScheme(anvilAccount(LOCAL_ROLES.demoPayer)),
      },
    ],
    spendControls: { maxAmountPerPayment: "$5" },
  });
  const keyCall = async (signal: AbortSignal) => {
    const res = await fetch(url, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body,
      signal: requestSignal(signal),
    });
    await res.arrayBuffer();
    return res.status;
  };
  const paidCall = async (signal: AbortSignal) => {
    const res = await pay(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
      signal: requestSignal(signal, 30_000),
    });
    await res.arrayBuffer();
    return res.status;
  };

  await bench.phase("warm-up", 120_000, async (signal) => {
    for (let i = 0; i < options.warmup; i++) {
      const a = await keyCall(signal);
      if (a !== 202) throw new Error(`key call answered ${a}`);
      const b = await paidCall(signal);
      if (b !== 202) throw new Error(`paid call answered ${b}`);
    }
  });
  paidRequests.length = 0;
  challenges.length = 0;
  timings.verify.length = 0;
  timings.settle.length = 0;

  const keyed: number[] = [];
  const paidTotal: number[] = [];
  const errors = { keyed: 0, paid: 0 };
  // Alternated, so both see the same database and chain state. Up to 1 s a call pair, at least.
  await bench.phase("calls", 60_000 + CALLS * 1_000, async (signal) => {
    for (let i = 0; i < CALLS && !signal.aborted; i++) {
      let t = performance.now();
      const a = await keyCall(signal).catch(() => 0);
      keyed.push(performance.now() - t);
      if (a !== 202) errors.keyed++;
      t = performance.now();
      const b = await paidCall(signal).catch(() => 0);
      paidTotal.push(performance.now() - t);
      if (b !== 202) errors.paid++;
    }
  });
  bench.check("calls with an API key", { ops: keyed.length, errors: errors.keyed });
  bench.check("paid calls", { ops: paidTotal.length, errors: errors.paid });

  const own = paidRequests.map(
    (total, i) => total - (timings.verify[i] ?? 0) - (timings.settle[i] ?? 0),
  );
  const rows: Array<[string, number[], number | string]> = [
    ["POST /v1/generate with an API key (baseline)", keyed, errors.keyed],
    ["paid: the unpaid request and its 402", challenges, "—"],
    ["paid: the request carrying the payment", paidRequests, "—"],
    ["  of which verify (facilitator)", timings.verify, "—"],
    ["  of which settle (broadcast + receipt)", timings.settle, "—"],
    ["  of which our own work", own, "—"],
    ["paid, whole client flow (402, sign, pay)", paidTotal, errors.paid],
  ];
  const base = pct(keyed, 0.5);
  console.log(`${CALLS} calls each, alternating; anvil automine; one model (z-image-turbo).\n`);
  console.log("| what | p50 ms | p99 ms | p50 vs baseline | errors |");
  console.log("|---|---|---|---|---|");
  for (const [what, values, errorCount] of rows) {
    console.log(
      `| ${what} | ${pct(values, 0.5).toFixed(2)} | ${pct(values, 0.99).toFixed(2)} | ${(pct(values, 0.5) / base).toFixed(2)} | ${errorCount} |`,
    );
  }
  console.log(
    `\nOur own work added over the key call, p50: ${(pct(own, 0.5) - base).toFixed(2)} ms`,
  );
});
