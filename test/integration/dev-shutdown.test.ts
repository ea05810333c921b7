import { existsSync, readdirSync, readFileSync } from "node:fs";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GenerationEvents } from "../../src/domains/generations/events.js";
import { createLogger } from "../../src/logger.js";
import { startCli } from "../helpers/cli.js";
import { createTestDatabase, type TestDatabase } from "../helpers/database.js";
import { freePort } from "../helpers/ports.js";
import { type Simulator, startSimulator } from "../simulator/upstream.js";

/**
 * `polyforge dev` stops cleanly on SIGTERM with event streams open, and leaves no child behind
 * (the local chain, the embedded PostgreSQL), even when it dies of an uncaught exception.
 */
const logger = createLogger({ logLevel: "silent" });
let database: TestDatabase;
let dataRoot: string;
let upstream: Simulator;

beforeAll(async () => {
  // An upstream that never answers: the generations are still running at the signal.
  upstream = await startSimulator();
  upstream.always = "hang";
  database = await createTestDatabase({ migrated: false });
  dataRoot = await mkdtemp(path.join(tmpdir(), "polyforge-dev-shutdown-"));
  await chmod(dataRoot, 0o755);
});
afterAll(async () => {
  await upstream?.close();
  await database?.drop();
  await rm(dataRoot, { recursive: true, force: true });
});

describe("the generation event listener's connection", () => {
  it("goes back to the pool once, and is not reused, when close() comes before its connection fails", async () => {
    const pool = new pg.Pool({ connectionString: database.url, max: 4 });
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown) => uncaught.push(err);
    process.on("uncaughtException", onUncaught);
    try {
      const events = new GenerationEvents(pool, logger);
      const unsubscribe = await events.subscribe("gen_x", () => {});
      const { rows } = await pool.query<{ pid: number }>(
        "select pid from pg_stat_activity where query = 'LISTEN generation_events'",
      );
      expect(rows).toHaveLength(1);
      unsubscribe();
      await events.close();
      // Its session LISTENed: it is closed, not handed to the next query.
      await until(async () => pool.totalCount === 1);
      // Every connection of the pool fails now (as at a database shutdown); nothing is
      // released a second time.
      await pool.query(
        "select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()",
      );
      await new Promise((r) => setTimeout(r, 200));
      expect(uncaught).toEqual([]);
    } finally {
      process.off("uncaughtException", onUncaught);
      await pool.end();
    }
  });

  it("is let go when close() comes while it is still connecting", async () => {
    const pool = new pg.Pool({ connectionString: database.url, max: 4 });
    try {
      const events = new GenerationEvents(pool, logger);
      const subscribing = events.subscribe("gen_y", () => {});
      await events.close();
      await subscribing.catch(() => undefined);
      await until(async () => pool.totalCount === 0);
      // A listener after close() does not open a connection either.
      await expect(events.subscribe("gen_z", () => {})).rejects.toThrow(/closed/);
      expect(pool.totalCount).toBe(0);
    } finally {
      await pool.end();
    }
  });
});

describe("polyforge dev", () => {
  it("exits 0 on SIGTERM with event streams open, its local chain and embedded PostgreSQL gone", async () => {
    const dev = await startDev("sigterm", {
      CHANNELS: JSON.stringify([
        {
          id: "slow",
          provider: "openai",
          baseUrl: `${upstream.url}/openai`,
          apiKey: "k",
          networks: ["test"],
          models: { "gpt-image-2": "gpt-image-1" },
          priority: 0,
          weight: 1,
        },
      ]),
      SHUTDOWN_TIMEOUT_MS: "3000",
    });
    try {
      const streams = await openEventStreams(dev.url, dev.key, 3);
      const children = descendantsOf(dev.pid);
      expect(children.map(commandOf).join(" ")).toMatch(/anvil/);
      expect(children.map(commandOf).join(" ")).toMatch(/postgres/);
      dev.cli.child.kill("SIGTERM");
      expect(await dev.cli.exited).toBe(0);
      expect(dev.cli.output()).not.toMatch(/already been released/);
      for (const stream of streams) expect(await stream).toMatch(/event: reconnect/);
      await until(async () => children.every((pid) => !isRunning(pid)), 20_000);
    } finally {
      await dev.kill();
    }
  }, 120_000);

  it("leaves no child running when it dies of an uncaught exception", async () => {
    // Loaded before the CLI: an uncaught exception on demand, where the test says.
    const crash = path.join(dataRoot, "crash-on-usr2.mjs");
    await writeFile(
      crash,
      `process.on("SIGUSR2", () => { throw new Error("injected crash"); });\n`,
    );
    const dev = await startDev("crash", { NODE_OPTIONS: `--import ${crash}` });
    try {
      const children = descendantsOf(dev.pid);
      expect(children.length).toBeGreaterThanOrEqual(2);
      dev.cli.child.kill("SIGUSR2");
      expect(await dev.cli.exited).not.toBe(0);
      expect(dev.cli.output()).toMatch(/injected crash/);
      await until(async () => children.every((pid) => !isRunning(pid)), 20_000);
    } finally {
      await dev.kill();
    }
  }, 120_000);
});

/** `polyforge dev` on its own embedded PostgreSQL and local chain, in a fresh data directory. */
async function startDev(name: string, env: Record<string, string> = {}) {
  const port = await freePort();
  const cli = startCli(["dev"], {
    POLYFORGE_DATA_DIR: path.join(dataRoot, name),
    EMBEDDED_POSTGRES_PORT: String(await freePort()),
    PORT: String(port),
    RATE_LIMITS: "off",
    LOG_LEVEL: "info",
    ...env,
  });
  const banner = await cli.waitFor("Press Ctrl-C to stop.", 90_000);
  const key = /sk_test_[0-9A-Za-z]{64}/.exec(banner)?.[0];
  if (!key || cli.child.pid === undefined) throw new Error(`no key in the banner:\n${banner}`);
  const pid = cli.child.pid;
  // Known now, while they are still its children: a crash would leave them to init.
  const started = descendantsOf(pid);
  return {
    cli,
    pid,
    key,
    url: `http://127.0.0.1:${port}`,
    /** Cleanup after a failure: nothing of this stack survives the test. */
    kill: async () => {
      const left = [...started, ...descendantsOf(pid)];
      if (cli.child.exitCode === null && cli.child.signalCode === null) cli.child.kill("SIGKILL");
      for (const child of left) {
        try {
          process.kill(child, "SIGKILL");
        } catch {}
      }
      await cli.exited;
    },
  };
}

/** Submits `count` generations and opens an event stream on each; resolves to each stream's text. */
async function openEventStreams(url: string, key: string, count: number) {
  const streams: Promise<string>[] = [];
  for (let i = 0; i < count; i++) {
    const res = await fetch(`${url}/v1/generate`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ prompt: `stream ${i}`, models: ["gpt-image-2"] }),
    });
    const body = (await res.json()) as { generationId?: string };
    if (res.status !== 202 || !body.generationId)
      throw new Error(`submit answered ${res.status}: ${JSON.stringify(body)}`);
    const { text } = await openStream(`${url}/v1/generate/${body.generationId}/events`, key);
    streams.push(text);
  }
  return streams;
}

/** Resolves once the stream's first bytes arrived, with a promise of its whole text. */
function openStream(url: string, key: string): Promise<{ text: Promise<string> }> {
  return new Promise((resolveOpen, reject) => {
    const req = http.get(url, { headers: { authorization: `Bearer ${key}` } }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      const whole = new Promise<string>((resolve) => {
        res.on("data", (d) => (text += d));
        res.on("end", () => resolve(text));
        res.on("error", () => resolve(text));
      });
      res.once("data", () => resolveOpen({ text: whole }));
    });
    req.on("error", reject);
  });
}

/** Every live process below `pid`, read from /proc. */
function descendantsOf(pid: number): number[] {
  const parents = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const ppid = parentOf(Number(entry));
    if (ppid === undefined) continue;
    parents.set(ppid, [...(parents.get(ppid) ?? []), Number(entry)]);
  }
  const found: number[] = [];
  const visit = (p: number) => {
    for (const child of parents.get(p) ?? []) {
      found.push(child);
      visit(child);
    }
  };
  visit(pid);
  return found;
}

/** The fields of /proc/<pid>/stat after the command name, which may hold spaces. */
function statOf(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

const parentOf = (pid: number) => {
  const fields = statOf(pid);
  return fields ? Number(fields[1]) : undefined;
};

/** Alive and not a zombie waiting to be reaped. */
const isRunning = (pid: number) => {
  const state = statOf(pid)?.[0];
  return state !== undefined && state !== "Z" && state !== "X";
};

const commandOf = (pid: number) => {
  const file = `/proc/${pid}/cmdline`;
  return existsSync(file) ? readFileSync(file, "utf8").replaceAll("\0", " ") : "";
};

async function until(check: () => Promise<boolean>, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 50));
  }
}
