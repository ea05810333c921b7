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
 *   npx tsx scripts/bench/rolling-restart.ts [--clients 16] [--rounds 2] [--smoke]
 *                                            [--pg-port 54394]
 *
 * --smoke restarts each instance once per signal, with 1 s of load before and after each.
 */
import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort } from "../../test/helpers/ports.js";
import { type Bench, benchOptions, runBench } from "./harness.js";
import { startBench } from "./setup.js";

const options = benchOptions(
  {
    clients: { full: 16, smoke: 16 },
    rounds: { full: 2, smoke: 1 },
    "warm-seconds": { full: 3, smoke: 1 },
    "settle-seconds": { full: 2, smoke: 1 },
  },
  54_394,
);
const CLIENTS = options.clients;
const ROUNDS = options.rounds;
const IMAGES_WAIT_MS = 20_000;
const SHUTDOWN_TIMEOUT_MS = 10_000;
const bin = path.resolve(import.meta.dirname, "../../bin/polyforge.js");

interface Instance {
  port: number;
  up: boolean;
  child?: ChildProcess;
}

/** Ends the instance's process (if any) with `signal`, and waits for it to exit. */
async function stopServe(instance: Instance, signal: NodeJS.Signals) {
  const child = instance.child;
  instance.up = false;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill(signal);
  await exited;
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
      // Every client shares one account: no per-minute limit, and room for every waiting
      // images request (each a generation in flight, none finishing with no worker).
      RATE_LIMITS: "off",
      MAX_IN_FLIGHT_GENERATIONS: "100000",
      IMAGES_WAIT_MS: String(IMAGES_WAIT_MS),
      SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
      LOG_LEVEL: "warn",
    },
    stdio: "ignore",
  });
  instance.child = child;
  const deadline = Date.now() + 60_000;
  for (;;) {
    const ok = await fetch(`http://127.0.0.1:${instance.port}/readyz`, {
      signal: AbortSignal.timeout(5_000),
    })
      .then((r) => r.ok)
      .catch(() => false);
    if (ok) break;
    if (Date.now() > deadline || child.exitCode !== null) throw new Error("serve did not start");
    await sleep(100);
  }
  instance.up = true;
}

async function run(
  bench: Bench,
  signal: "SIGTERM" | "SIGKILL",
  setup: { key: string; databaseUrl: string; storageDir: string },
) {
  const { key, databaseUrl, storageDir } = setup;
  const instances: Instance[] = [
    { port: await freePort(), up: false },
    { port: await freePort(), up: false },
  ];
  bench.defer(`kill the ${signal} run's instances`, async () => {
    for (const i of instances) await stopServe(i, "SIGKILL");
  });
  await bench.phase(`${signal}: start two instances`, 90_000, () =>
    Promise.all(instances.map((i) => startServe(i, databaseUrl, storageDir))),
  );
  const counts = { sent: 0, ok: 0, accepted: 0, dropped: 0, waitingSent: 0 };
  const load = new AbortController();
  let next = 0;
  const client = async (n: number) => {
    while (!load.signal.aborted) {
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
        // Not aborted with the load: a request in flight when the load stops gets its answer.
        const res = waiting
          ? await fetch(`${base}/v1/images/generations`, {
              method: "POST",
              headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
              body: JSON.stringify({ model: "gpt-image-2", prompt: "rolling", size: "1024x1024" }),
              signal: AbortSignal.timeout(IMAGES_WAIT_MS + 10_000),
            })
          : await fetch(`${base}/v1/balance`, {
              headers: { authorization: `Bearer ${key}` },
              signal: AbortSignal.timeout(10_000),
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
  const clients = Promise.all(Array.from({ length: CLIENTS }, (_, n) => client(n)));
  bench.defer(`stop the ${signal} run's clients`, () => load.abort());
  const started = Date.now();
  await bench.phase(`${signal}: load before the restarts`, 30_000, () =>
    sleep(options["warm-seconds"] * 1000),
  );
  for (let round = 0; round < ROUNDS; round++) {
    for (const [n, instance] of instances.entries()) {
      // Taken out of rotation and signalled at once, as an orchestrator does; a drain takes
      // at most SHUTDOWN_TIMEOUT_MS and a start well under a minute.
      const name = `${signal}: restart ${round + 1} of instance ${n + 1}`;
      await bench.phase(name, SHUTDOWN_TIMEOUT_MS + 90_000, async () => {
        await stopServe(instance, signal);
        await startServe(instance, databaseUrl, storageDir);
        await sleep(options["settle-seconds"] * 1000);
      });
    }
  }
  // No new requests; the instances stop gracefully, so waiting requests answer their 202 now
  // rather than at the end of IMAGES_WAIT_MS; then the clients end.
  load.abort();
  await bench.phase(`${signal}: stop the instances`, SHUTDOWN_TIMEOUT_MS + 30_000, () =>
    Promise.all(instances.map((i) => stopServe(i, "SIGTERM"))),
  );
  await bench.phase(`${signal}: last requests`, 30_000, () => clients);
  bench.check(`${signal} run`, { ops: counts.sent, errors: counts.dropped });
  return { signal, seconds: Math.round((Date.now() - started) / 1000), ...counts };
}

await runBench(async (bench) => {
  const { ctx, key } = await startBench(bench, {
    port: options.pgPort,
    // This context only prepares the account; the serve processes have their own settings.
    rateLimits: "off",
    maxInFlightGenerations: 100_000,
    wallet: "0x00000000000000000000000000000000000b3ec5",
    credits: 10n ** 9n,
  });
  const setup = {
    key,
    databaseUrl: ctx.config.database.url as string,
    storageDir: ctx.config.storageDir,
  };
  const results = [];
  for (const signal of ["SIGTERM", "SIGKILL"] as const) {
    results.push(await run(bench, signal, setup));
  }
  console.log(
    `| restart signal | clients | restarts | seconds | requests | 200 | 202 (waiting, answered with id) | dropped |`,
  );
  console.log("|---|---|---|---|---|---|---|---|");
  for (const r of results) {
    console.log(
      `| ${r.signal} | ${CLIENTS} | ${ROUNDS * 2} | ${r.seconds} | ${r.sent} | ${r.ok} | ${r.accepted} | ${r.dropped} |`,
    );
  }
});
