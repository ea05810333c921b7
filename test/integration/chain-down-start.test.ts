import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import {
  anvilAccount,
  LOCAL_ROLES,
  type LocalChain,
  privateKeyOf,
  startLocalChain,
} from "../../src/chain/local-chain.js";
import {
  type ApiResponse,
  createFundedCaller,
  startTestApp,
  type TestApp,
} from "../helpers/app.js";
import { fundedPayer, payingFetch, treasury, usdcBalance } from "../helpers/chain.js";
import { startCli } from "../helpers/cli.js";
import { expectMoneyInvariants } from "../helpers/ledger.js";
import { freePort } from "../helpers/ports.js";

/**
 * `polyforge serve` and `polyforge worker` started while the test chain's RPC is down. They
 * used to refuse to start, taking keyed traffic down with the chain. Now both start, keyed
 * requests work, that network's payments answer 503 payments_unavailable (and /readyz says so
 * while staying ready), and payments come back on their own once the RPC answers.
 */
let app: TestApp;
let chain: LocalChain | undefined;
let rpcPort: number;
let api: string;
const processes: Array<ReturnType<typeof startCli>> = [];

beforeAll(async () => {
  app = await startTestApp({ env: { LOG_LEVEL: "error" } });
  rpcPort = await freePort(); // nothing listens here until the test starts the chain
  const apiPort = await freePort();
  api = `http://127.0.0.1:${apiPort}`;
  const env = {
    DATABASE_URL: app.database.url,
    STORAGE_DIR: app.ctx.config.storageDir,
    PUBLIC_URL: api,
    LOG_LEVEL: "info",
    X402_TEST_RPC_URL: `http://127.0.0.1:${rpcPort}`,
    X402_TEST_PAY_TO: treasury,
    X402_TEST_FACILITATOR_KEY: privateKeyOf(anvilAccount(LOCAL_ROLES.facilitator)),
  };
  processes.push(startCli(["serve"], { ...env, PORT: String(apiPort) }));
  processes.push(startCli(["worker"], env));
});

afterAll(async () => {
  for (const p of processes) {
    if (p.child.exitCode === null) {
      p.child.kill("SIGTERM");
      await p.exited;
    }
  }
  await chain?.stop();
  await app?.close();
});

const get = async (route: string, key?: string): Promise<Omit<ApiResponse, "headers">> => {
  const res = await fetch(api + route, {
    headers: key ? { authorization: `Bearer ${key}` } : {},
  });
  return { status: res.status, body: await res.json() };
};

it("starts serve and worker with the chain down, and takes payments once it answers", async () => {
  const [serve, worker] = processes as [ReturnType<typeof startCli>, ReturnType<typeof startCli>];
  await serve.waitFor("API listening");
  await worker.waitFor("Worker connected");
  await serve.waitFor("payments are unavailable until it does");

  const caller = await createFundedCaller(app.ctx, 50n, "test");
  expect(await get("/v1/balance", caller.key)).toMatchObject({
    status: 200,
    body: { creditBalance: 50 },
  });
  expect(await get("/readyz")).toEqual({
    status: 200,
    body: { status: "ready", payments: { test: "unavailable" } },
  });
  const refused = await fetch(`${api}/v1/credits/packs/starter`, {
    method: "POST",
    headers: { authorization: `Bearer ${caller.key}` },
  });
  expect(refused.status).toBe(503);
  expect(await refused.json()).toMatchObject({ error: { code: "payments_unavailable" } });

  chain = await startLocalChain({
    network: "test",
    port: rpcPort,
    stateHex: inject("chainStates").test,
  });
  const deadline = Date.now() + 60_000;
  while ((await get("/readyz")).body.payments?.test !== "available") {
    if (Date.now() > deadline) throw new Error(`payments never came back:\n${serve.output()}`);
    await sleep(200);
  }
  await worker.waitFor("payments available");

  // Paid for without a restart; the credits arrive once.
  const payer = await fundedPayer(chain, 10n * 10n ** 6n);
  const before = await usdcBalance(chain, treasury);
  const bought = await payingFetch(payer, "test")(`${api}/v1/credits/packs/starter`, {
    method: "POST",
    headers: { authorization: `Bearer ${caller.key}` },
  });
  expect(bought.status, await bought.clone().text()).toBe(201);
  expect(await bought.json()).toMatchObject({ credits: 1000, creditBalance: 1050 });
  expect((await usdcBalance(chain, treasury)) - before).toBe(8_000_000n);
  expect((await get("/v1/balance", caller.key)).body).toMatchObject({ creditBalance: 1050 });
  for (const p of processes) expect(p.child.exitCode, p.output()).toBeNull();
  await expectMoneyInvariants(app.ctx);
}, 120_000);
