import { drizzle, type NodePgDatabase } from "drizzle-orm/node-postgres";
import pg from "pg";
import type { Logger } from "../logger.js";
import * as schema from "./schema.js";

export type Database = NodePgDatabase<typeof schema>;
export type Transaction = Parameters<Parameters<Database["transaction"]>[0]>[0];
/** What service functions take: the database, or the caller's open transaction to join. */
export type Executor = Database | Transaction;

export interface DatabaseClient {
  pool: pg.Pool;
  db: Database;
  close(): Promise<void>;
}

/**
 * The pool. Callers wait for a connection in turn (first come, first served) for at most
 * `waitMs` (default 5 s), which also bounds opening one: a database that does not answer must
 * fail requests (and /readyz) rather than hang them. A worker waits longer (see
 * WORKER_DATABASE_WAIT_MS): its thousand jobs queue for a few connections on a healthy one.
 */
export function createDatabaseClient(
  url: string,
  options: { poolMax: number; logger: Logger; waitMs?: number },
): DatabaseClient {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolMax,
    connectionTimeoutMillis: options.waitMs ?? 5_000,
  });
  // An idle client losing its server (restart, failover) must not crash the process.
  const onError = (err: Error) => {
    // 57P01: the server is shutting down (a restart, a failover, or the end of `polyforge dev`).
    if (pgErrorCode(err) === "57P01")
      options.logger.info("database connection closed by the server");
    else options.logger.warn({ err }, "database connection failed");
  };
  pool.on("error", onError);
  pool.on("connect", (client) => client.on("error", onError));
  const db = drizzle(pool, { schema });
  let closed: Promise<void> | undefined;
  return {
    pool,
    db,
    close: () => {
      closed ??= pool.end();
      return closed;
    },
  };
}

/**
 * One of the pool's connections kept checked out for one user, so that what it runs never
 * waits behind the pool's other users: the worker's heartbeat and its release of jobs, behind a
 * thousand jobs' statements. Taken on first use and again after a failure (a failed
 * connection is destroyed, not reused); `close` gives it back. One use at a time.
 */
export function dedicatedConnection(pool: pg.Pool) {
  let held: Promise<{ client: pg.PoolClient; db: Database }> | undefined;
  let closed = false;
  return {
    async run<T>(fn: (db: Database) => Promise<T>): Promise<T> {
      if (closed) throw new Error("this connection has been given back");
      held ??= pool.connect().then((client) => ({ client, db: drizzle(client, { schema }) }));
      const taking = held;
      let connection: { client: pg.PoolClient; db: Database };
      try {
        connection = await taking;
      } catch (err) {
        if (held === taking) held = undefined;
        throw err;
      }
      try {
        return await fn(connection.db);
      } catch (err) {
        if (held === taking) {
          held = undefined;
          connection.client.release(err instanceof Error ? err : true);
        }
        throw err;
      }
    },
    async close(): Promise<void> {
      closed = true;
      const taking = held;
      held = undefined;
      const connection = await taking?.catch(() => undefined);
      connection?.client.release();
    },
  };
}

/** PostgreSQL error code of a failed query (drizzle wraps the driver's error as `cause`). */
export function pgErrorCode(err: unknown): string | undefined {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") return code;
  }
  return undefined;
}

/** Node's socket errors that mean the server cannot be reached or went away. */
const UNREACHABLE_SOCKET_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
]);
/**
 * PostgreSQL codes of a server that is not taking work: connection exceptions (08xxx),
 * shutdown and start-up (57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now),
 * too many connections (53300), and a statement or lock cancelled by a timeout (57014, 55P03).
 */
const UNAVAILABLE_PG_CODES = /^(08...|57P0[1-3]|53300|57014|55P03)$/;
/**
 * What node-postgres throws without a code when the socket closes or the pool cannot connect.
 * A pool used after its own end() is not here: that is our bug, not an outage.
 */
const UNAVAILABLE_MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|connection timeout|Client has encountered a connection error/i;

/**
 * Whether a failure is the database being unreachable or overwhelmed (an outage, a restart, a
 * failover) rather than a fault in the request or the code: such requests answer 503 and may
 * be retried.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (
      typeof code === "string" &&
      (UNREACHABLE_SOCKET_CODES.has(code) || UNAVAILABLE_PG_CODES.test(code))
    )
      return true;
    if (UNAVAILABLE_MESSAGES.test(e.message)) return true;
    // ECONNREFUSED on a host with several addresses arrives as an AggregateError of each try.
    if (e instanceof AggregateError && e.errors.some((inner) => isDatabaseUnavailable(inner)))
      return true;
  }
  return false;
}
