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

export function createDatabaseClient(
  url: string,
  options: { poolMax: number; logger: Logger },
): DatabaseClient {
  // A database that does not answer must fail requests (and /readyz) rather than hang them.
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolMax,
    connectionTimeoutMillis: 5_000,
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

/** PostgreSQL error code of a failed query (drizzle wraps the driver's error as `cause`). */
export function pgErrorCode(err: unknown): string | undefined {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") return code;
  }
  return undefined;
}
