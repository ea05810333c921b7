import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createPublicClient, erc20Abi, http } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { anvilAccount, type LocalChain } from "../../src/chain/local-chain.js";
import { MULTICALL3_ADDRESS, USDC } from "../../src/chain/networks.js";
import { paymentEnv, startTestChain } from "../helpers/chain.js";
import { runCli, startCli } from "../helpers/cli.js";
import { createTestDatabase, type TestDatabase } from "../helpers/database.js";

let dataRoot: string;
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
