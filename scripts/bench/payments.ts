/**
 * What paying per call with x402 adds to a generation submit, beside the same submit with an
 * API key, in one run: one embedded PostgreSQL, one anvil chain (automine), the API and the
 * in-process facilitator in this process, the official x402 fetch client paying from anvil's
 * test wallet #1. Each paid request's server time is split into verify (facilitator: signature
 * and simulation), settle (broadcast and receipt) and our own work (the rest: quote, offers,
 * the nonce claim, the record, mint, hold and enqueue).
 *
 *   npx tsx scripts/bench/payments.ts [--calls 100]
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
import { startBench } from "./setup.js";

const CALLS = Number(process.argv[process.argv.indexOf("--calls") + 1]) || 100;
const pct = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;
};

async function main() {
  const chain = await startLocalChain({ network: "test" });
  const local = localPaymentConfig(chain.rpcUrl, "test");
  const bench = await startBench({
    port: 54_397,
    env: {
      X402_TEST_RPC_URL: chain.rpcUrl,
      X402_TEST_PAY_TO: local.payTo,
      X402_TEST_FACILITATOR_KEY:
        "privateKey" in local.facilitator ? local.facilitator.privateKey : "",
    },
    wallet: anvilAccount(2).address,
    credits: 10n ** 9n,
  });
  const { ctx, key } = bench;

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

  const http = await startHttpServer(ctx);
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

  const keyed: number[] = [];
  const paidTotal: number[] = [];
  try {
    for (let i = 0; i < 10; i++) {
      await fetch(url, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body,
      });
      await pay(url, { method: "POST", headers: { "content-type": "application/json" }, body });
    }
    paidRequests.length = 0;
    challenges.length = 0;
    timings.verify.length = 0;
    timings.settle.length = 0;
    // Alternated, so both see the same database and chain state.
    for (let i = 0; i < CALLS; i++) {
      let t = performance.now();
      const a = await fetch(url, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body,
      });
      await a.arrayBuffer();
      keyed.push(performance.now() - t);
      if (a.status !== 202) throw new Error(`key call: ${a.status}`);
      t = performance.now();
      const b = await pay(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      });
      await b.arrayBuffer();
      paidTotal.push(performance.now() - t);
      if (b.status !== 202) throw new Error(`paid call: ${b.status}`);
    }
    const own = paidRequests.map(
      (total, i) => total - (timings.verify[i] ?? 0) - (timings.settle[i] ?? 0),
    );
    const rows: Array<[string, number[]]> = [
      ["POST /v1/generate with an API key (baseline)", keyed],
      ["paid: the unpaid request and its 402", challenges],
      ["paid: the request carrying the payment", paidRequests],
      ["  of which verify (facilitator)", timings.verify],
      ["  of which settle (broadcast + receipt)", timings.settle],
      ["  of which our own work", own],
      ["paid, whole client flow (402, sign, pay)", paidTotal],
    ];
    const base = pct(keyed, 0.5);
    console.log(`${CALLS} calls each, alternating; anvil automine; one model (z-image-turbo).\n`);
    console.log("| what | p50 ms | p99 ms | p50 vs baseline |");
    console.log("|---|---|---|---|");
    for (const [what, values] of rows) {
      console.log(
        `| ${what} | ${pct(values, 0.5).toFixed(2)} | ${pct(values, 0.99).toFixed(2)} | ${(pct(values, 0.5) / base).toFixed(2)} |`,
      );
    }
    console.log(
      `\nOur own work added over the key call, p50: ${(pct(own, 0.5) - base).toFixed(2)} ms`,
    );
  } finally {
    await http.close();
    await bench.close();
    await chain.stop();
  }
}

await main();
