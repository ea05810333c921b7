import { afterAll, beforeAll, describe, expect, it } from "vitest";
import journal from "../../drizzle/meta/_journal.json" with { type: "json" };
import { migrateDatabase } from "../../src/db/migrate.js";
import { runResult } from "../../src/domains/generations/run.js";
import { resultIdOf } from "../../src/domains/generations/submit.js";
import { createFundedCaller, startTestApp, type TestApp } from "../helpers/app.js";
import { runCli } from "../helpers/cli.js";
import { earnRoyalties } from "../helpers/creators.js";
import { expectMoneyInvariants } from "../helpers/ledger.js";

const ledgerUnitsMigration = journal.entries.find(
  (e) => e.tag === "0016_ledger_units",
) as (typeof journal.entries)[number];

/**
 * Migration 0016 moves the ledger's unit from a whole credit to 1/10,000 of one. The data a
 * database of the last version holds is made here the only way this version can make it: the
 * service writes today's units, then every money column is divided back by 10,000 and the
 * migration is marked not applied. Which columns are money is decided here, apart from the
 * migration (every bigint column of the schema but the few that are not credits), so a money
 * column the migration forgot is left divided and fails the comparison.
 */
const NOT_CREDITS = new Set([
  "ledger_transfers.seq",
  "payments.amount", // USDC base units, unchanged
  "payouts.usdc_amount",
  "payouts.nonce",
  "style_passes.uses",
  // Added by 0018 in ledger units already: not in the version before 0016.
  "api_keys.limit_total",
  "api_keys.limit_per_day",
  "api_keys.spent_total",
  "api_keys.spent_day",
]);

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp({ env: { ROYALTY_PLATFORM_SHARE_BPS: "2000" } });
});
afterAll(() => app?.close());

async function moneyColumns() {
  const { rows } = await app.ctx.pool.query<{ table_name: string; column_name: string }>(
    `select table_name, column_name from information_schema.columns
      where table_schema = 'public' and data_type = 'bigint' order by 1, 2`,
  );
  return rows
    .map((r) => ({ table: r.table_name, column: r.column_name }))
    .filter((c) => !NOT_CREDITS.has(`${c.table}.${c.column}`));
}

/** Every value of every money column, by table, column and row (the row's other fields). */
async function snapshot(columns: Array<{ table: string; column: string }>) {
  const values: Record<string, string | null> = {};
  for (const { table, column } of columns) {
    const money = columns.filter((c) => c.table === table).map((c) => c.column);
    const { rows } = await app.ctx.pool.query<{ key: string; value: string | null }>(
      `select (row_to_json(t)::jsonb - $1::text[])::text as key, "${column}"::text as value from "${table}" t`,
      [money],
    );
    for (const r of rows) values[`${table}.${column}#${r.key}`] = r.value;
  }
  return values;
}

describe("migration 0016: the ledger's unit becomes 1/10,000 credit", () => {
  it("multiplies every amount of the last version's data by 10,000; invariants and `ledger check` hold", async () => {
    // Money in every shape: grants, holds posted and voided, generations with pass fees and
    // royalties, a reservation settled, a workflow-free batch of two models.
    const creator = await createFundedCaller(app.ctx, 100n);
    // A fee of 10 at a 20% platform share: royalties of whole credits, as the last version made.
    await earnRoyalties(app, creator.key, 10n);
    const user = await createFundedCaller(app.ctx, 50n);
    const submitted = await app.request("POST", "/v1/generate", {
      token: user.key,
      json: { prompt: "two herons", models: ["z-image-turbo", "gpt-image-2"] },
    });
    expect(submitted.status).toBe(202);
    await runResult(app.ctx, app.ctx.generations, resultIdOf(submitted.body.generationId, 0));
    const reserved = await app.request("POST", "/v1/studio/reserve", {
      token: user.key,
      json: { credits: 5, expiresInSeconds: 3600 },
    });
    expect(reserved.status).toBe(201);
    const settled = await app.request("POST", "/v1/studio/settle", {
      token: user.key,
      json: { reservationId: reserved.body.reservationId },
    });
    expect(settled.status).toBe(200);
    const before = await app.request("GET", "/v1/balance", { token: user.key });
    await expectMoneyInvariants(app.ctx);

    const columns = await moneyColumns();
    const migrated = await snapshot(columns);
    expect(Object.values(migrated).filter((v) => v !== null && v !== "0").length).toBeGreaterThan(
      40,
    );

    // Back to the last version: every amount a whole credit again, 0016 not applied.
    const client = await app.ctx.pool.connect();
    try {
      await client.query("begin");
      await client.query("set local session_replication_role = replica"); // no guards, no checks by trigger
      await client.query('alter table payouts drop constraint "payouts_usdc_amount"');
      for (const { table, column } of columns) {
        const { rows } = await client.query(
          `select count(*)::int as n from "${table}" where "${column}" % 10000 <> 0`,
        );
        expect(rows[0].n, `${table}.${column} holds whole credits`).toBe(0);
      }
      // A table's columns together: its checks relate them (charged = cost, parts = amount).
      for (const table of new Set(columns.map((c) => c.table))) {
        const set = columns
          .filter((c) => c.table === table)
          .map((c) => `"${c.column}" = "${c.column}" / 10000`);
        await client.query(`update "${table}" set ${set.join(", ")}`);
      }
      await client.query(
        'alter table payouts add constraint "payouts_usdc_amount" check (usdc_amount = credits * 10000)',
      );
      // 0016 and the migrations after it run again (those after it are safe to repeat).
      const removed = await client.query(
        `delete from drizzle.__drizzle_migrations where created_at >= $1 returning id`,
        [ledgerUnitsMigration.when],
      );
      expect(removed.rowCount).toBe(journal.entries.length - ledgerUnitsMigration.idx);
      await client.query("commit");
    } finally {
      client.release();
    }
    expect(await snapshot(columns)).not.toEqual(migrated);

    await migrateDatabase(app.ctx.pool, app.ctx.logger);

    expect(await snapshot(columns)).toEqual(migrated);
    await expectMoneyInvariants(app.ctx);
    const check = await runCli(["ledger", "check"], { DATABASE_URL: app.database.url });
    expect(check.code, check.stderr).toBe(0);
    // The API answers as before, in credits.
    expect((await app.request("GET", "/v1/balance", { token: user.key })).body).toEqual(
      before.body,
    );
  });
});
