import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { cp, mkdir, mkdtemp, rename, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { sql } from "drizzle-orm";
import type { Runner } from "graphile-worker";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LocalChain } from "../../src/chain/local-chain.js";
import { startWorker } from "../../src/jobs/worker.js";
import { createFundedCaller, startTestApp, type TestApp } from "../helpers/app.js";
import { fundUsdc, paymentEnv, startTestChain, treasury, usdcBalance } from "../helpers/chain.js";
import { repoRoot } from "../helpers/cli.js";
import { expectMoneyInvariants } from "../helpers/ledger.js";

/**
 * @polyforge/mcp as users get it: `npm pack` of packages/mcp, extracted outside the repository
 * with its @polyforge/client from that package's own tarball (the other imports resolve from
 * the repository's node_modules through a symlink, nothing is installed), its bin driven over stdio by the official MCP client against the real API on the
 * sandbox models, with an API key and with a wallet paying per call on anvil.
 */

const run = promisify(execFile);
let work: string;
let tarball: string;
let cli: string;
let chain: LocalChain;
let app: TestApp;
let worker: Runner;

async function packAndExtract() {
  work = await mkdtemp(path.join(tmpdir(), "polyforge-mcp-pack-"));
  // Both packages are copied out and built there: nothing is written in the repository, where
  // the client's own test builds packages/client at the same time.
  const source = path.join(work, "source");
  for (const name of ["client", "mcp"]) {
    for (const entry of ["package.json", "tsconfig.json", "README.md", "src"]) {
      await cp(path.join(repoRoot, "packages", name, entry), path.join(source, name, entry), {
        recursive: true,
      });
    }
  }
  await symlink(path.join(repoRoot, "node_modules"), path.join(source, "node_modules"));
  // The MCP package builds against the client copied beside it, as the workspace link does.
  await mkdir(path.join(source, "mcp/node_modules/@polyforge"), { recursive: true });
  await symlink(
    path.join(source, "client"),
    path.join(source, "mcp/node_modules/@polyforge/client"),
  );
  const pack = async (name: string, ...flags: string[]) =>
    (
      await run("npm", ["pack", "--silent", ...flags, "--pack-destination", work], {
        cwd: path.join(source, name),
      })
    ).stdout.trim();
  // The MCP package's prepack builds the client's dist first, which the client's pack takes.
  tarball = await pack("mcp");
  const clientTarball = await pack("client", "--ignore-scripts");
  await run("tar", ["-xzf", path.join(work, tarball), "-C", work]);
  // Its dependency @polyforge/client installed from its own tarball, as npx would.
  const unpacked = path.join(work, "client");
  await mkdir(unpacked);
  await run("tar", ["-xzf", path.join(work, clientTarball), "-C", unpacked]);
  const installed = path.join(work, "package/node_modules/@polyforge");
  await mkdir(installed, { recursive: true });
  await rename(path.join(unpacked, "package"), path.join(installed, "client"));
  await symlink(path.join(repoRoot, "node_modules"), path.join(work, "node_modules"));
  cli = path.join(work, "package/dist/cli.js");
}

beforeAll(async () => {
  const packed = packAndExtract();
  chain = await startTestChain("test");
  app = await startTestApp({ env: { ...paymentEnv([chain]), LOG_LEVEL: "error" } });
  worker = await startWorker(app.ctx);
  await packed;
}, 120_000);

afterAll(async () => {
  await worker?.stop();
  await app?.close();
  await chain?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

async function connect(env: Record<string, string>) {
  const client = new Client({ name: "mcp-package-test", version: "1.0.0" });
  await client.connect(
    new StdioClientTransport({
      command: process.execPath,
      args: [cli],
      env: { PATH: process.env.PATH ?? "", POLYFORGE_API_URL: app.url, ...env },
      cwd: tmpdir(),
      stderr: "pipe",
    }),
  );
  return client;
}

// biome-ignore lint/suspicious/noExplicitAny: tests read structured content field by field.
type Structured = any;

const readmeEntry = (marker: string) => {
  const readme = readFileSync(path.join(repoRoot, "README.md"), "utf8");
  const block = new RegExp(`<!-- ${marker}:start -->\\s*\`\`\`json\\n([\\s\\S]*?)\`\`\``).exec(
    readme,
  )?.[1] as string;
  return JSON.parse(block).mcpServers.polyforge as {
    command: string;
    args: string[];
    env: Record<string, string>;
  };
};

const image = { prompt: "a lighthouse at dusk", models: ["gpt-image-2"], resolution: "1K" };

describe("the packed package", () => {
  it("has the bin with a node shebang and nothing of the server", async () => {
    const { stdout } = await run("tar", ["-tzf", path.join(work, tarball)]);
    const files = stdout.trim().split("\n").sort();
    expect(files).toContain("package/dist/cli.js");
    expect(
      files.every(
        (f) =>
          f === "package/package.json" ||
          f === "package/README.md" ||
          f.startsWith("package/dist/"),
      ),
    ).toBe(true);
    expect(readFileSync(cli, "utf8").startsWith("#!/usr/bin/env node\n")).toBe(true);
    const manifest = JSON.parse(readFileSync(path.join(work, "package/package.json"), "utf8"));
    expect(Object.keys(manifest.dependencies)).toContain("@polyforge/client");
    for (const f of files.filter((name) => name.endsWith(".js"))) {
      expect(readFileSync(path.join(work, f), "utf8")).not.toMatch(/from "\.\.\/|src\//);
    }
  });
});

describe("with an API key, as the README's npx entry", () => {
  it("lists the tools, the models, and generates an image with its cost", async () => {
    const entry = readmeEntry("mcp-npx");
    expect([entry.command, ...entry.args]).toEqual(["npx", "-y", "@polyforge/mcp"]);
    expect(Object.keys(entry.env)).toEqual(["POLYFORGE_API_KEY"]);
    const { key } = await createFundedCaller(app.ctx, 100n);
    // npx would fetch the package from the registry: the packed bin stands in for it.
    const client = await connect({ ...entry.env, POLYFORGE_API_KEY: key });
    try {
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name).sort()).toEqual([
        "generate_audio",
        "generate_image",
        "generate_text",
        "generate_video",
        "get_balance",
        "get_generation",
        "list_models",
      ]);
      const listed = await client.callTool({
        name: "list_models",
        arguments: { mediaType: "image" },
      });
      const models = (listed.structuredContent as Structured).models;
      expect(models.length).toBeGreaterThan(1);
      expect(models.every((m: { type: string }) => m.type === "image")).toBe(true);
      expect(models.map((m: { id: string }) => m.id)).toContain("gpt-image-2");

      const made = await client.callTool({ name: "generate_image", arguments: image });
      const g: Structured = made.structuredContent;
      expect(made.isError).toBeFalsy();
      expect(g).toMatchObject({ status: "completed", done: true });
      expect(g.cost.charged).toBeGreaterThan(0);
      expect(g.cost).toMatchObject({ quoted: g.cost.charged, refunded: 0 });
      expect(g.results[0]).toMatchObject({ model: "gpt-image-2", status: "completed" });
      expect(g.results[0].url).toMatch(/^http/);
      expect(g.payment).toBeUndefined();

      const balance = await client.callTool({ name: "get_balance", arguments: {} });
      expect(balance.structuredContent).toMatchObject({
        creditBalance: 100 - g.cost.charged,
        network: "test",
      });
      const refused = await client.callTool({
        name: "generate_image",
        arguments: { prompt: "x", models: ["no-such-model"] },
      });
      expect(refused.isError).toBe(true);
      expect((refused.content as Array<{ text: string }>)[0]?.text).toMatch(/^invalid_model: /);
    } finally {
      await client.close();
    }
    await expectMoneyInvariants(app.ctx);
  });
});

describe("with a wallet paying per call (x402 on anvil)", () => {
  const walletKey = generatePrivateKey();
  const wallet = privateKeyToAccount(walletKey);
  const payments = async () => {
    const { rows } = await app.ctx.db.execute<{ n: number }>(
      sql`select count(*)::int as n from payments where lower(payer) = ${wallet.address.toLowerCase()}`,
    );
    return rows[0]?.n;
  };

  it("pays the quote in USDC; a call past the day's cap is refused before signing", async () => {
    expect(Object.keys(readmeEntry("mcp-wallet").env).sort()).toEqual([
      "POLYFORGE_MAX_PER_CALL",
      "POLYFORGE_MAX_PER_DAY",
      "POLYFORGE_WALLET_KEY",
    ]);
    await fundUsdc(chain, wallet.address, 5_000_000n);
    const client = await connect({
      POLYFORGE_WALLET_KEY: walletKey,
      POLYFORGE_NETWORK: "base-sepolia",
      POLYFORGE_MAX_PER_CALL: "1",
      POLYFORGE_MAX_PER_DAY: "0.05",
    });
    try {
      const before = await usdcBalance(chain, wallet.address);
      const treasuryBefore = await usdcBalance(chain, treasury);
      const made = await client.callTool({ name: "generate_image", arguments: image });
      expect(made.isError).toBeFalsy();
      const g: Structured = made.structuredContent;
      expect(g).toMatchObject({ status: "completed", done: true });
      // 1 credit = $0.01 = 10,000 USDC base units.
      const paid = BigInt(g.cost.quoted) * 10_000n;
      expect(paid).toBeGreaterThan(0n);
      expect(g.payment).toMatchObject({ status: "settled", network: "test" });
      expect(g.payment.payer.toLowerCase()).toBe(wallet.address.toLowerCase());
      expect(g.payment.transaction).toMatch(/^0x[0-9a-f]{64}$/);
      expect(g.payment.usdc).toBe((Number(paid) / 1e6).toString());
      expect(before - (await usdcBalance(chain, wallet.address))).toBe(paid);
      expect((await usdcBalance(chain, treasury)) - treasuryBefore).toBe(paid);
      expect(await payments()).toBe(1);

      // The generation reads back with the access token the payment gave.
      const read = await client.callTool({
        name: "get_generation",
        arguments: { ids: [g.generationId, "gen_unknown"] },
      });
      expect(read.structuredContent).toMatchObject({
        generations: { [g.generationId]: { status: "completed" } },
        notFound: ["gen_unknown"],
      });

      // $0.03 paid today; another $0.03 would pass the $0.05 a day.
      const second = await client.callTool({ name: "generate_image", arguments: image });
      expect(second.isError).toBe(true);
      expect((second.content as Array<{ text: string }>)[0]?.text).toMatch(
        /^max_per_day_exceeded: .*POLYFORGE_MAX_PER_DAY/,
      );
      expect(before - (await usdcBalance(chain, wallet.address))).toBe(paid);
      expect(await payments()).toBe(1);
      const spending = await client.callTool({ name: "get_balance", arguments: {} });
      expect(spending.structuredContent).toMatchObject({
        mode: "wallet",
        paidToday: g.payment.usdc,
        maxPerDay: "0.05",
      });
    } finally {
      await client.close();
    }
    await expectMoneyInvariants(app.ctx);
  });

  it("refuses a call priced over the per-call cap with a tool error, and pays nothing", async () => {
    const client = await connect({
      POLYFORGE_WALLET_KEY: walletKey,
      POLYFORGE_NETWORK: "base-sepolia",
      POLYFORGE_MAX_PER_CALL: "0.01",
    });
    try {
      const before = await usdcBalance(chain, wallet.address);
      const count = await payments();
      const result = await client.callTool({ name: "generate_image", arguments: image });
      expect(result.isError).toBe(true);
      expect((result.content as Array<{ text: string }>)[0]?.text).toMatch(
        /^max_per_call_exceeded: .*POLYFORGE_MAX_PER_CALL \(\$0\.01\); nothing was paid/,
      );
      expect(await usdcBalance(chain, wallet.address)).toBe(before);
      expect(await payments()).toBe(count);
    } finally {
      await client.close();
    }
  });
});
