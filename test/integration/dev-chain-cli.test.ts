import { existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { anvilAccount, LOCAL_ROLES, type LocalChain } from "../../src/chain/local-chain.js";
import { USDC } from "../../src/chain/networks.js";
import { payingFetch, paymentEnv, startTestChain, treasury } from "../helpers/chain.js";
import { runCli, startCli } from "../helpers/cli.js";
import { createTestDatabase, type TestDatabase } from "../helpers/database.js";
import { freePort } from "../helpers/ports.js";

/**
 * `npm start` configures its local chain inside its own process; the operator commands run
 * beside it (`npx polyforge payments reconcile`) find that chain from the record `polyforge dev`
 * keeps in the data directory, with no X402_* variable.
 */
let database: TestDatabase;
let dataRoot: string;
let otherChain: LocalChain;

beforeAll(async () => {
  database = await createTestDatabase({ migrated: false });
  dataRoot = await mkdtemp(path.join(tmpdir(), "polyforge-dev-chain-"));
  otherChain = await startTestChain("test");
});

afterAll(async () => {
  await otherChain?.stop();
  await database?.drop();
  await rm(dataRoot, { recursive: true, force: true });
});

describe("operator commands beside a running polyforge dev", () => {
  it("reconcile finds the dev stack's chain by itself, agrees with a real x402 payment, and says plainly when the stack is gone", async () => {
    const dataDir = path.join(dataRoot, "stack");
    const port = await freePort();
    const env = { DATABASE_URL: database.url, POLYFORGE_DATA_DIR: dataDir };
    const dev = startCli(["dev"], { ...env, PORT: String(port) });
    const recordPath = path.join(dataDir, "dev-chain.json");
    try {
      const banner = await dev.waitFor("Press Ctrl-C to stop.");
      const key = /sk_test_[0-9A-Za-z]{64}/.exec(banner)?.[0] as string;
      const rpcUrl = /Chain\s+(http:\/\/\S+)/.exec(banner)?.[1];
      expect(JSON.parse(readFileSync(recordPath, "utf8"))).toMatchObject({
        rpcUrl,
        network: "test",
        chainId: USDC.test.chainId,
        payTo: treasury,
        usdcAddress: USDC.test.address,
      });

      // A real x402 payment, from the wallet the banner prints, for a Starter pack ($8).
      const payer = anvilAccount(LOCAL_ROLES.demoPayer);
      const bought = await payingFetch(payer, "test")(
        `http://localhost:${port}/v1/credits/packs/starter`,
        { method: "POST", headers: { authorization: `Bearer ${key}` } },
      );
      expect(bought.status).toBe(201);

      const reconciled = await runCli(["payments", "reconcile"], env);
      expect(reconciled.stderr).not.toContain("No network takes payments");
      expect(reconciled.code).toBe(0);
      const [report, ...others] = JSON.parse(reconciled.stdout);
      expect(others).toEqual([]);
      expect(report).toMatchObject({
        network: "test",
        ok: true,
        difference: "0",
        chainTotal: "8000000",
        recordedTotal: "8000000",
        unrecordedTransfers: [],
        missingTransfers: [],
        mintMismatches: [],
      });

      // The environment wins over the record: pointed at another chain, the payment is not there.
      const elsewhere = await runCli(["payments", "reconcile"], {
        ...env,
        ...paymentEnv([otherChain]),
      });
      expect(elsewhere.code).toBe(1);
      const [otherReport] = JSON.parse(elsewhere.stdout);
      expect(otherReport).toMatchObject({ ok: false, recordedTotal: "8000000", chainTotal: "0" });
    } finally {
      dev.child.kill("SIGINT");
    }
    expect(await dev.exited).toBe(0);
    // A clean stop takes the record away with the chain.
    expect(existsSync(recordPath)).toBe(false);

    const stopped = await runCli(["payments", "reconcile"], env);
    expect(stopped.code).toBe(1);
    expect(stopped.stderr).toContain(
      "polyforge: No network takes payments: start the dev stack (`npm start`)",
    );
    expect(stopped.stderr).not.toContain("    at ");
  }, 120_000);

  it("names a dev stack that died without cleaning up, instead of reconciling nothing", async () => {
    const dataDir = path.join(dataRoot, "crashed");
    await mkdir(dataDir, { recursive: true });
    const deadRpc = `http://127.0.0.1:${await freePort()}`;
    await writeFile(
      path.join(dataDir, "dev-chain.json"),
      JSON.stringify({
        rpcUrl: deadRpc,
        network: "test",
        chainId: USDC.test.chainId,
        payTo: treasury,
        usdcAddress: USDC.test.address,
        pid: 1,
      }),
    );
    const result = await runCli(["payments", "reconcile"], {
      DATABASE_URL: database.url,
      POLYFORGE_DATA_DIR: dataDir,
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      `polyforge: The dev stack is not running: its chain at ${deadRpc} does not answer`,
    );
    expect(result.stderr).toContain("Start it with `npm start`, or set X402_TEST_RPC_URL.");
  });

  it("never takes a recorded chain in production", async () => {
    const dataDir = path.join(dataRoot, "production");
    await mkdir(dataDir, { recursive: true });
    await writeFile(
      path.join(dataDir, "dev-chain.json"),
      JSON.stringify({
        rpcUrl: otherChain.rpcUrl,
        network: "test",
        chainId: USDC.test.chainId,
        payTo: treasury,
        usdcAddress: USDC.test.address,
        pid: 1,
      }),
    );
    const result = await runCli(["payments", "reconcile"], {
      NODE_ENV: "production",
      DATABASE_URL: database.url,
      PUBLIC_URL: "https://api.example",
      URL_SIGNING_SECRET: "test-only-signing-secret-0123456789abcdef",
      POLYFORGE_DATA_DIR: dataDir,
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("No network takes payments");
  });
});
