/**
 * Requests dropped during a rolling restart of two `polyforge serve` processes under load.
 * One embedded PostgreSQL, two real `serve` child processes, and clients that act as a load
 * balancer: each request goes to an instance marked up, over kept-alive connections. An
 * instance is restarted by marking it down and signalling it at the same moment (as an
 * orchestrator does), waiting for it to exit, starting it again and marking it up once it
 * listens; then the other. The load mixes reads (GET /v1/balance) with OpenAI-images requests
 * that wait for their images (no worker runs, so they wait IMAGES_WAIT_MS and answer 202):
 * those are the ones a shutdown could cut. A request is dropped when it gets no answer (a reset
 * or a hang-up) or a 5xx. The baseline, in the same run, restarts with SIGKILL instead of
 * SIGTERM: what a restart without a graceful drain costs.
 *
 *   npx tsx scripts/bench/rolling-restart.ts [--clients 16] [--rounds 2]
 */
import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { startBench } from "./setup.js";

const arg = (name: string, fallback: number) =>
  Number(process.argv[process.argv.indexOf(`--${name}`) + 1]) || fallback;
const CLIENTS = arg("clients", 16);
const ROUNDS = arg("rounds", 2);
const bin = path.resolve(import.meta.dirname, "../../bin/polyforge.js");

interface Instance {
  port: number;
  up: boolean;
  child?: ChildProcess;
}

async function startServe(instance: Instance, databaseUrl: string, storageDir: string) {
  const child = spawn(process.execPath, [bin, "serve"], {
    env: {
      PATH: process.env.PATH,
      DATABASE_URL: databaseUrl,
      PORT: String(instance.port),
      HOST: "127.0.0.1",
      PUBLIC_URL: `http://127.0.0.1:${instance.port}`,
      STORAGE_DIR: storageDir,
      RATE_LIMITS: "off",
      MAX_IN_FLIGHT_GENERATIONS: "100000",
      IMAGES_WAIT_MS: "20000",
      SHUTDOWN_TIMEOUT_MS: "10000",
      LOG_LEVEL: "warn",
    },
    stdio: "ignore",
  });
  instance.child = child;
  const deadline = Date.now() + 60_000;
  for (;;) {
    const ok = await fetch(`http://127.0.0.1:${instance.port}/readyz`)
      .then((r) => r.ok)
      .catch(() => false);
    if (ok) break;
    if (Date.now() > deadline || child.exitCode !== null) throw new Error("serve did not start");
    await sleep(100);
  }
  instance.up = true;
}

async function run(signal: "SIGTERM" | "SIGKILL", bench: Awaited<ReturnType<typeof startBench>>) {
  const databaseUrl = bench.ctx.config.database.url as string;
  const storageDir = bench.ctx.config.storageDir;
  const instances: Instance[] = [
    { port: 54_411, up: false },
    { port: 54_412, up: false },
  ];
  for (const i of instances) await startServe(i, databaseUrl, storageDir);
  const counts = { sent: 0, ok: 0, accepted: 0, dropped: 0, waitingSent: 0 };
  let stop = false;
  let next = 0;
  const client = async (n: number) => {
    while (!stop) {
      const live = instances.filter((i) => i.up);
      const target = live[next++ % live.length];
      if (!target) {
        await sleep(10);
        continue;
      }
      const base = `http://127.0.0.1:${target.port}`;
      const waiting = n % 4 === 0;
      counts.sent++;
      if (waiting) counts.waitingSent++;
      try {
        const res = waiting
          ? await fetch(`${base}/v1/images/generations`, {
              method: "POST",
              headers: { authorization: `Bearer ${bench.key}`, "content-type": "application/json" },
              body: JSON.stringify({ model: "gpt-image-2", prompt: "rolling", size: "1024x1024" }),
            })
          : await fetch(`${base}/v1/balance`, {
              headers: { authorization: `Bearer ${bench.key}` },
            });
        await res.arrayBuffer();
        if (res.status >= 500) counts.dropped++;
        else if (res.status === 202) counts.accepted++;
        else counts.ok++;
      } catch {
        counts.dropped++;
      }
    }
  };
  const clients = Array.from({ length: CLIENTS }, (_, n) => client(n));
  const started = Date.now();
  await sleep(3_000);
  for (let round = 0; round < ROUNDS; round++) {
    for (const instance of instances) {
      // Taken out of rotation and signalled at once, as an orchestrator does.
      instance.up = false;
      const exited = new Promise((r) => instance.child?.once("exit", r));
      instance.child?.kill(signal);
      await exited;
      await startServe(instance, databaseUrl, storageDir);
      await sleep(2_000);
    }
  }
  stop = true;
  await Promise.all(clients);
  for (const i of instances) {
    const exited = new Promise((r) => i.child?.once("exit", r));
    i.child?.kill("SIGTERM");
    await exited;
  }
  return { signal, seconds: Math.round((Date.now() - started) / 1000), ...counts };
}

async function main() {
  const bench = await startBench({
    port: 54_399,
    env: { MAX_IN_FLIGHT_GENERATIONS: "100000" },
    wallet: "0x00000000000000000000000000000000000b3ec5",
    credits: 10n ** 9n,
  });
  try {
    const results = [];
    for (const signal of ["SIGTERM", "SIGKILL"] as const) results.push(await run(signal, bench));
    console.log(
      `| restart signal | clients | restarts | seconds | requests | 200 | 202 (waiting, answered with id) | dropped |`,
    );
    console.log("|---|---|---|---|---|---|---|---|");
    for (const r of results) {
      console.log(
        `| ${r.signal} | ${CLIENTS} | ${ROUNDS * 2} | ${r.seconds} | ${r.sent} | ${r.ok} | ${r.accepted} | ${r.dropped} |`,
      );
    }
  } finally {
    await bench.close();
  }
}

await main();
