import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import type { TestProject } from "vitest/node";
import { loadConfig } from "../../src/config.js";
import { createDatabaseClient } from "../../src/db/client.js";
import { startEmbeddedPostgres } from "../../src/db/embedded.js";
import { migrateDatabase } from "../../src/db/migrate.js";
import { createLogger } from "../../src/logger.js";
import { freePort } from "../helpers/ports.js";

declare module "vitest" {
  export interface ProvidedContext {
    postgres: { adminUrl: string; template: string };
  }
}

/**
 * Tests run against real PostgreSQL: DATABASE_URL when it is set (a role that may create
 * databases), otherwise an embedded server in a temporary directory. Migrations run once into
 * a template database; each test file clones it (graphile-worker's own test approach).
 */
export default async function setup(project: TestProject) {
  const logger = createLogger({ logLevel: "warn" });
  const configured = loadConfig(process.env).database.url;
  let stopServer = async () => {};
  let adminUrl: string;
  if (configured) {
    adminUrl = configured;
  } else {
    const dir = await mkdtemp(path.join(tmpdir(), "polyforge-test-"));
    await chmod(dir, 0o755); // the server may run as the `postgres` user
    const server = await startEmbeddedPostgres({
      dataDir: path.join(dir, "postgres"),
      port: await freePort(),
      logger,
      settings: { fsync: "off", synchronous_commit: "off", full_page_writes: "off" },
    });
    adminUrl = server.adminUrl;
    stopServer = async () => {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    };
  }

  const template = `polyforge_template_${process.pid}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`drop database if exists ${template}`);
  await admin.query(`create database ${template}`);
  const database = createDatabaseClient(databaseUrl(adminUrl, template), { poolMax: 2, logger });
  await migrateDatabase(database.pool, logger);
  await database.close();
  project.provide("postgres", { adminUrl, template });

  return async () => {
    await admin.query(`drop database if exists ${template} with (force)`);
    await admin.end();
    await stopServer();
  };
}

export function databaseUrl(serverUrl: string, database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
}
