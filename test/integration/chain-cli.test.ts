import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createPublicClient, erc20Abi, http } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { anvilAccount, LOCAL_ROLES, type LocalChain } from "../../src/chain/local-chain.js";
import { MULTICALL3_ADDRESS, USDC } from "../../src/chain/networks.js";
import { createAccountWithKey, startTestApp, type TestApp } from "../helpers/app.js";
import { payingFetch, paymentEnv, startTestChain, treasury } from "../helpers/chain.js";
import { runCli, startCli } from "../helpers/cli.js";
import { createTestDatabase, type TestDatabase } from "../helpers/database.js";

let dataRoot: string;

const chainId = (rpcUrl: string) =>
  createPublicClient({ transport: http(rpcUrl, { retryCount: 0 }) }).getChainId();
let chain: LocalChain;
let database: TestDatabase;

beforeAll(async () => {
  dataRoot = await mkdtemp(path.join(tmpdir(), "polyforge-chain-"));
  chain = await startTestChain("test");
  database = await createTestDatabase();
});

afterAll(async () => {
  await chain?.stop();
  await database?.drop();
  await rm(dataRoot, { recursive: true, force: true });
});

describe("polyforge chain", () => {
  for (const network of ["test", "live"] as const) {
    it(`starts a prepared ${network} chain and keeps its state`, async () => {
      const dataDir = path.join(dataRoot, network);
      const started = startCli(["chain", "--network", network], { POLYFORGE_DATA_DIR: dataDir });
      const banner = await started.waitFor("Press Ctrl-C to stop.");
      const rpcUrl = /Local chain for \w+ payments: (http:\/\/\S+)/.exec(banner)?.[1] as string;
      const client = createPublicClient({ transport: http(rpcUrl) });
      expect(await client.getChainId()).toBe(USDC[network].chainId);
      const token = { address: USDC[network].address, abi: erc20Abi } as const;
      expect(await client.readContract({ ...token, functionName: "name" })).toBe(
        USDC[network].name,
      );
      expect(
        await client.readContract({
          ...token,
          functionName: "balanceOf",
          args: [anvilAccount(1).address],
        }),
      ).toBe(10_000_000_000n);
      expect(await client.getCode({ address: MULTICALL3_ADDRESS })).toMatch(/^0x[0-9a-f]{100,}/);
      expect(banner).toContain(`X402_${network.toUpperCase()}_RPC_URL=${rpcUrl}`);
      // By default it listens on the loopback address only.
      await expect(chainId(rpcUrl.replace("127.0.0.1", "127.0.0.2"))).rejects.toThrow();
      started.child.kill("SIGINT");
      expect(await started.exited).toBe(0);
      expect(
        existsSync(
          path.join(dataDir, network === "test" ? "chain-state.json" : "chain-state-live.json"),
        ),
      ).toBe(true);
    });
  }
});

describe("polyforge chain --host --facilitator-port (as docker compose runs it)", () => {
  it("listens on every interface and serves its facilitator, which an API takes payments through", async () => {
    const started = startCli(
      ["chain", "--network", "test", "--host", "0.0.0.0", "--facilitator-port", "0"],
      { POLYFORGE_DATA_DIR: path.join(dataRoot, "compose") },
    );
    let app: TestApp | undefined;
    try {
      const banner = await started.waitFor("Press Ctrl-C to stop.");
      const rpcUrl = /Local chain for test payments: (http:\/\/\S+)/.exec(banner)?.[1] as string;
      const facilitatorUrl = /Facilitator (http:\/\/\S+)/.exec(banner)?.[1] as string;
      expect(banner).toContain(`X402_TEST_FACILITATOR_URL=${facilitatorUrl}`);
      expect(banner).not.toContain("X402_TEST_FACILITATOR_KEY=");
      // Bound to 0.0.0.0: answers on another local address than the loopback one it prints.
      const elsewhere = (url: string) => url.replace("127.0.0.1", "127.0.0.2");
      expect(await chainId(elsewhere(rpcUrl))).toBe(USDC.test.chainId);
      const supported = await fetch(`${elsewhere(facilitatorUrl)}/supported`);
      expect(await supported.json()).toMatchObject({
        kinds: expect.arrayContaining([
          { x402Version: 2, scheme: "exact", network: "eip155:84532" },
        ]),
        signers: { "eip155:*": [anvilAccount(LOCAL_ROLES.facilitator).address] },
      });
      const bad = await fetch(`${facilitatorUrl}/verify`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{}",
      });
      expect(bad.status).toBe(400);

      // An API given the facilitator's URL (the production shape) buys a pack through it.
      app = await startTestApp({
        env: {
          X402_TEST_RPC_URL: rpcUrl,
          X402_TEST_PAY_TO: treasury,
          X402_TEST_FACILITATOR_URL: facilitatorUrl,
        },
      });
      const { key } = await createAccountWithKey(app.ctx, "test");
      const payer = anvilAccount(LOCAL_ROLES.demoPayer);
      const res = await payingFetch(payer, "test")(`${app.url}/v1/credits/packs/starter`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}` },
      });
      expect(res.status).toBe(201);
      const balance = await app.request("GET", "/v1/balance", { token: key });
      expect(balance.body.creditBalance).toBe(1000);
    } finally {
      await app?.close();
      started.child.kill("SIGINT");
    }
    expect(await started.exited).toBe(0);
  });

  it("refuses a facilitator port that is not a port", async () => {
    const result = await runCli(["chain", "--facilitator-port", "x402"], {
      POLYFORGE_DATA_DIR: path.join(dataRoot, "bad-port"),
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("--facilitator-port must be a port number");
  });
});

describe("start-up checks the chains", () => {
  it("refuses a live configuration whose RPC is another chain", async () => {
    const result = await runCli(["serve"], {
      DATABASE_URL: database.url,
      PORT: "0",
      X402_LIVE_RPC_URL: chain.rpcUrl,
      X402_LIVE_PAY_TO: anvilAccount(8).address,
      X402_LIVE_FACILITATOR_URL: "http://127.0.0.1:9",
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      "X402_LIVE_RPC_URL: the RPC reports chain id 84532, but live payments are on chain 8453",
    );
  });

  it("refuses a network with an RPC but no facilitator (never a default one)", async () => {
    const result = await runCli(["serve"], {
      DATABASE_URL: database.url,
      X402_TEST_RPC_URL: chain.rpcUrl,
      X402_TEST_PAY_TO: anvilAccount(8).address,
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("X402_TEST_FACILITATOR_URL: set exactly one of");
  });
});

describe("polyforge payments reconcile", () => {
  it("reports the chain and the payments table per network, exiting 0 when they agree", async () => {
    const result = await runCli(["payments", "reconcile"], {
      DATABASE_URL: database.url,
      ...paymentEnv([chain]),
    });
    expect(result.code).toBe(0);
    const [report] = JSON.parse(result.stdout);
    expect(report).toMatchObject({ network: "test", ok: true, difference: "0" });
  });
});
