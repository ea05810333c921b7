import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { inject } from "vitest";
import { databaseUrl } from "../setup/postgres.js";

export interface TestDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

async function withAdmin<T>(fn: (admin: pg.Client) => Promise<T>): Promise<T> {
  const admin = new pg.Client({ connectionString: inject("postgres").adminUrl });
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.end();
  }
}

/**
 * A database of its own for one test file: a clone of the migrated template, or an empty one
 * (`migrated: false`) for tests about what happens before migrations.
 */
export async function createTestDatabase(
  options: { migrated?: boolean } = {},
): Promise<TestDatabase> {
  const { adminUrl, template } = inject("postgres");
  const name = `polyforge_test_${randomBytes(6).toString("hex")}`;
  const from = options.migrated === false ? "" : ` template ${template}`;
  await withAdmin(async (admin) => {
    // Two files cloning the template at the same instant can collide (55006); try again.
    for (let attempt = 1; ; attempt++) {
      try {
        await admin.query(`create database ${name}${from}`);
        return;
      } catch (err) {
        if ((err as { code?: string }).code !== "55006" || attempt >= 20) throw err;
        await sleep(50 * attempt);
      }
    }
  });
  return {
    name,
    url: databaseUrl(adminUrl, name),
    drop: () =>
      withAdmin((admin) => admin.query(`drop database if exists ${name} with (force)`)).then(
        () => {},
      ),
  };
}
