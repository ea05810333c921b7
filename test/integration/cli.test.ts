import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { createPublicClient, erc20Abi, http } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { USDC } from "../../src/chain/networks.js";
import { DEMO_WALLET } from "../../src/demo.js";
import { repoRoot, runCli, startCli } from "../helpers/cli.js";
import { createTestDatabase, type TestDatabase } from "../helpers/database.js";
import { freePort } from "../helpers/ports.js";

describe("polyforge keys", () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(() => database.drop());

  it("creates, lists and revokes keys for operators", async () => {
    const env = { DATABASE_URL: database.url };
    const wallet = privateKeyToAccount(generatePrivateKey()).address;
    const created = await runCli(
      ["keys", "create", "--account", wallet, "--network", "live", "--name", "ops"],
      env,
    );
    expect(created.stderr).toBe("");
    expect(created.code).toBe(0);
    const key = JSON.parse(created.stdout);
    expect(key.key).toMatch(/^sk_live_[0-9A-Za-z]{64}$/);
    expect(key).toMatchObject({ name: "ops", network: "live" });

    const listed = await runCli(["keys", "list", "--account", wallet], env);
    expect(listed.code).toBe(0);
    const keys = JSON.parse(listed.stdout);
    expect(keys.map((k: { id: string }) => k.id)).toEqual([key.id]);
    expect(listed.stdout).not.toContain(key.key.slice(8));

    const revoked = await runCli(["keys", "revoke", key.id, "--account", wallet], env);
    expect(revoked.code).toBe(0);
    expect(JSON.parse(revoked.stdout).revokedAt).toBeTruthy();
    expect(JSON.parse((await runCli(["keys", "list", "--account", wallet], env)).stdout)).toEqual(
      [],
    );
  });

  it("explains what is wrong and exits 1", async () => {
    const unknown = await runCli(["keys", "list", "--account", "acc_nobody"], {
      DATABASE_URL: database.url,
    });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("Account not found");
    const badNetwork = await runCli(["keys", "create", "--account", "acc_x", "--network", "main"], {
      DATABASE_URL: database.url,
    });
    expect(badNetwork.code).toBe(1);
    expect(badNetwork.stderr).toMatch(/Allowed choices are live, test/);
  });

  it("refuses a bad configuration with one message naming each offender", async () => {
    const result = await runCli(["migrate"], {
      PORT: "eighty",
      LOG_LEVEL: "loud",
      DATABASE_URL: "mysql://x/y",
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^polyforge: Invalid configuration:/);
    for (const name of ["PORT", "LOG_LEVEL", "DATABASE_URL"])
      expect(result.stderr).toContain(`- ${name}:`);
    expect(result.stderr).not.toContain("    at "); // no stack trace
  });
});

describe("the README's Commands table", () => {
  /** The commands a `--help` lists, without commander's own `help`. */
  const commandsOf = (help: string) =>
    (help.split("Commands:\n")[1] ?? "")
      .split("\n")
      .flatMap((line) => /^ {2}([a-z][\w-]*)/.exec(line)?.[1] ?? [])
      .filter((name) => name !== "help");

  it("lists every command the CLI has, each subcommand of a group included", async () => {
    const top = commandsOf((await runCli(["--help"], {})).stdout);
    expect(top).toContain("dev");
    const everyCommand = (
      await Promise.all(
        top.map(async (name) => {
          const subcommands = commandsOf((await runCli([name, "--help"], {})).stdout);
          return subcommands.length ? subcommands.map((sub) => `${name} ${sub}`) : [name];
        }),
      )
    ).flat();

    const readme = readFileSync(path.join(repoRoot, "README.md"), "utf8");
    const table = readme.split("\n## Commands\n")[1]?.split("\n## ")[0] ?? "";
    const documented = [...table.matchAll(/^\| `([^`]+)`/gm)].flatMap(([, cell]) => {
      // `keys create\|list\|revoke` stands for three commands.
      const [group, alternatives] = (cell as string).replaceAll("\\|", "|").split(" ");
      return alternatives
        ? alternatives.split("|").map((sub) => `${group} ${sub}`)
        : [group as string];
    });
    expect(documented.sort()).toEqual(everyCommand.sort());
  }, 120_000);
});

describe("polyforge dev (npm start)", () => {
  let dataRoot: string;
  beforeAll(async () => {
    dataRoot = await mkdtemp(path.join(tmpdir(), "polyforge-dev-"));
    await chmod(dataRoot, 0o755);
  });
  afterAll(() => rm(dataRoot, { recursive: true, force: true }));

  async function startDev(env: Record<string, string>) {
    const dev = startCli(["dev"], env);
    const output = await dev.waitFor("Press Ctrl-C to stop.");
    const curl = output.split("\n").find((line) => line.trim().startsWith("curl "));
    const key = /sk_test_[0-9A-Za-z]{64}/.exec(output)?.[0];
    const account = /Account\s+(acc_\w+)/.exec(output)?.[1];
    if (!curl || !key || !account) throw new Error(`unexpected banner:\n${output}`);
    return { dev, curl: curl.trim(), key, account };
  }

  /** The wallet's dev USDC on the chain the banner names. */
  async function usdcOf(banner: string, wallet: string) {
    const rpcUrl = /Chain\s+(http:\/\/\S+)/.exec(banner)?.[1] as string;
    const client = createPublicClient({ transport: http(rpcUrl) });
    return client.readContract({
      address: USDC.test.address,
      abi: erc20Abi,
      functionName: "balanceOf",
      args: [wallet as `0x${string}`],
    });
  }

  /** Runs the printed curl line in a shell, exactly as a person would paste it. */
  async function runPrinted(curl: string) {
    const { stdout } = await promisify(execFile)("sh", ["-c", curl]);
    return JSON.parse(stdout);
  }

  it("starts from nothing, prints a curl line that works, stops on Ctrl-C and finds its data again", async () => {
    const port = await freePort();
    const env = {
      POLYFORGE_DATA_DIR: path.join(dataRoot, ".polyforge"),
      LOG_LEVEL: "info",
      PORT: String(port),
      EMBEDDED_POSTGRES_PORT: String(await freePort()),
    };

    const first = await startDev(env);
    expect(first.curl).toBe(
      `curl -s http://localhost:${port}/v1/balance -H "Authorization: Bearer ${first.key}"`,
    );
    expect(await runPrinted(first.curl)).toEqual({
      creditBalance: 1000,
      heldCredits: 0,
      earnings: 0,
      membershipTier: "free",
      network: "test",
    });
    expect((await fetch(`http://localhost:${port}/healthz`)).status).toBe(200);

    // The printed generate line works as printed, and the status line shows its routing.
    const lines = first.dev
      .output()
      .split("\n")
      .map((l) => l.trim());
    const generateLine = lines.find(
      (l) => l.startsWith("curl") && l.includes("/v1/generate -H"),
    ) as string;
    const statusLine = lines.find(
      (l) => l.startsWith("curl") && l.includes("/v1/generate/status"),
    ) as string;
    const submitted = await runPrinted(generateLine);
    expect(submitted).toMatchObject({ generationId: expect.stringMatching(/^gen_/), cost: 12 });
    let generation:
      | { status: string; results: Array<{ routing: { upstream: string } }> }
      | undefined;
    for (let i = 0; i < 100 && generation?.status !== "completed"; i++) {
      await new Promise((r) => setTimeout(r, 100));
      generation = (await runPrinted(statusLine.replace("GENERATION_ID", submitted.generationId)))
        .generations[submitted.generationId];
    }
    expect(generation?.status).toBe("completed");
    expect(generation?.results.map((r) => r.routing.upstream)).toEqual([
      "sandbox-primary",
      "sandbox-primary",
    ]);
    expect((await fetch(`http://localhost:${port}/readyz`)).status).toBe(200);

    // The README's pay-per-call example pays from the printed wallet on the local chain.
    const payer = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
    expect(first.dev.output()).toContain(`Wallet    ${payer}, funded with 10,000 dev USDC`);
    const example = await promisify(execFile)(
      process.execPath,
      [path.join(repoRoot, "examples/pay-per-call.mjs")],
      { env: { ...process.env, POLYFORGE_API_URL: `http://localhost:${port}` }, cwd: repoRoot },
    );
    const paidCredits = Number(
      /paid (\d+) credits in USDC, transaction 0x[0-9a-f]{64}/.exec(example.stdout)?.[1],
    );
    expect(paidCredits).toBeGreaterThan(0);
    expect(example.stdout).toContain('"status": "completed"');
    const usdcLeft = 10_000_000_000n - BigInt(paidCredits) * 10_000n;
    expect(await usdcOf(first.dev.output(), payer)).toBe(usdcLeft);

    first.dev.child.kill("SIGINT");
    expect(await first.dev.exited).toBe(0);
    expect(first.dev.output()).toContain("database stopped");
    const pidFile = path.join(env.POLYFORGE_DATA_DIR, "postgres", "postmaster.pid");
    expect(existsSync(pidFile)).toBe(false);

    const second = await startDev(env);
    try {
      expect(second.account).toBe(first.account);
      expect(second.key).toBe(first.key);
      // The demo credits were granted once, not again on the second start (12 were spent).
      expect(await runPrinted(second.curl)).toMatchObject({ creditBalance: 988 });
      // The chain came back from its saved state: the payment is still there.
      expect(await usdcOf(second.dev.output(), payer)).toBe(usdcLeft);
      expect(readFileSync(path.join(env.POLYFORGE_DATA_DIR, "demo-key"), "utf8").trim()).toBe(
        first.key,
      );
    } finally {
      second.dev.child.kill("SIGTERM");
      expect(await second.dev.exited).toBe(0);
    }
  });
});

describe("polyforge serve and worker (production shape)", () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase({ migrated: false });
  });
  afterAll(() => database.drop());

  it("migrate, then serve and worker against DATABASE_URL, each stopping cleanly on SIGTERM", async () => {
    const port = await freePort();
    const metricsPort = await freePort();
    const metricsToken = "metrics-token-0123456789abcdef";
    const env = {
      NODE_ENV: "production",
      DATABASE_URL: database.url,
      PUBLIC_URL: `http://localhost:${port}`,
      URL_SIGNING_SECRET: "test-only-signing-secret-0123456789abcdef",
      PORT: String(port),
      WORKER_METRICS_PORT: String(metricsPort),
      METRICS_TOKEN: metricsToken,
      LOG_LEVEL: "info",
    };
    const migrated = await runCli(["migrate"], env);
    expect(migrated.code).toBe(0);
    expect(migrated.stderr).toContain("database migrated");

    const serve = startCli(["serve"], env);
    const worker = startCli(["worker"], env);
    try {
      await serve.waitFor("API listening");
      await worker.waitFor("Worker connected");
      const ready = await fetch(`http://localhost:${port}/readyz`);
      expect(ready.status).toBe(200);
      // Metrics: the API's on its port, the worker's on its own listener, both behind the token.
      await worker.waitFor("worker metrics listening");
      const workerMetrics = `http://127.0.0.1:${metricsPort}/metrics`;
      expect((await fetch(workerMetrics)).status).toBe(401);
      for (const [url, series] of [
        [`http://localhost:${port}/metrics`, "polyforge_http_request_duration_seconds_count"],
        [workerMetrics, "polyforge_job_start_lag_seconds"],
      ] as const) {
        const res = await fetch(url, { headers: { authorization: `Bearer ${metricsToken}` } });
        expect(res.status).toBe(200);
        expect(await res.text()).toContain(series);
      }
    } finally {
      serve.child.kill("SIGTERM");
      worker.child.kill("SIGTERM");
    }
    expect(await serve.exited).toBe(0);
    expect(await worker.exited).toBe(0);
    expect(serve.output()).toContain("HTTP server stopped");
    expect(worker.output()).toContain("worker stopped");
  });
});

describe("polyforge dev against DATABASE_URL", () => {
  let database: TestDatabase;
  let dataRoot: string;
  beforeAll(async () => {
    database = await createTestDatabase({ migrated: false });
    dataRoot = await mkdtemp(path.join(tmpdir(), "polyforge-dev-url-"));
  });
  afterAll(async () => {
    await database.drop();
    await rm(dataRoot, { recursive: true, force: true });
  });

  async function startAndStop(env: Record<string, string>) {
    const dev = startCli(["dev"], env);
    const output = await dev.waitFor("Press Ctrl-C to stop.");
    dev.child.kill("SIGINT");
    expect(await dev.exited).toBe(0);
    const key = /sk_test_[0-9A-Za-z]{64}/.exec(output)?.[0];
    expect(key).toBeDefined();
    return key as string;
  }

  it("migrates that database, keeps its local key file in a fresh directory, and makes room for the demo key", async () => {
    const env = {
      DATABASE_URL: database.url,
      POLYFORGE_DATA_DIR: path.join(dataRoot, "not-yet-created"),
      PORT: String(await freePort()),
    };
    const first = await startAndStop(env);
    // The demo account fills its key cap with live keys, and the local key file is lost.
    for (const name of ["live-1", "live-2"]) {
      const created = await runCli(
        ["keys", "create", "--account", DEMO_WALLET, "--network", "live", "--name", name],
        { DATABASE_URL: database.url },
      );
      expect(created.code).toBe(0);
    }
    await rm(path.join(env.POLYFORGE_DATA_DIR, "demo-key"));
    const second = await startAndStop(env);
    expect(second).not.toBe(first);
    const keys = JSON.parse(
      (await runCli(["keys", "list", "--account", DEMO_WALLET], { DATABASE_URL: database.url }))
        .stdout,
    );
    expect(keys.map((k: { name: string }) => k.name).sort()).toEqual(["demo", "live-1", "live-2"]);
  });

  it("refuses to run in production", async () => {
    const result = await runCli(["dev"], {
      NODE_ENV: "production",
      DATABASE_URL: database.url,
      PUBLIC_URL: "https://api.example",
      URL_SIGNING_SECRET: "test-only-signing-secret-0123456789abcdef",
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("for development");
  });
});
