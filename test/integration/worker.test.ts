import { count } from "drizzle-orm";
import { runOnce } from "graphile-worker";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { siweNonces } from "../../src/db/schema.js";
import { getBalance, getHold, grantCredits, placeHold } from "../../src/domains/ledger/service.js";
import { crontab } from "../../src/jobs/definitions.js";
import { graphileLogger } from "../../src/jobs/logger.js";
import { taskList } from "../../src/jobs/tasks.js";
import { creditUnits } from "../../src/lib/credits.js";
import { newId } from "../../src/lib/ids.js";
import { createAccountWithKey, startTestApp, type TestApp } from "../helpers/app.js";

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(() => app.close());

describe("worker", () => {
  it("runs ledger_expire_holds, the sweeper, and voids holds past their expiry", async () => {
    const { account } = await createAccountWithKey(app.ctx);
    await grantCredits(app.ctx, {
      id: newId("grant"),
      ownerId: account.id,
      network: "test",
      amount: creditUnits(50n),
      reason: "t",
    });
    const holdId = newId("res");
    await placeHold(app.ctx, {
      id: holdId,
      network: "test",
      ownerId: account.id,
      amount: 30n,
      expiresAt: new Date(Date.now() - 1000),
      kind: "generation",
    });
    expect(crontab).toContain("ledger_expire_holds");
    await app.ctx.pool.query("select graphile_worker.add_job('ledger_expire_holds', '{}'::json)");
    await runOnce({
      pgPool: app.ctx.pool,
      taskList: taskList(app.ctx),
      logger: graphileLogger(app.ctx.logger),
    });
    expect((await getHold(app.ctx, holdId))?.status).toBe("expired");
    expect((await getBalance(app.ctx, account.id, "test")).creditBalance).toBe(creditUnits(50n));
  });

  it("runs auth_cleanup, queued through graphile_worker.add_job, and removes expired nonces", async () => {
    for (let i = 0; i < 3; i++)
      expect((await app.request("POST", "/v1/auth/nonce")).status).toBe(201);
    const fresh = await app.request("POST", "/v1/auth/nonce");
    expect(fresh.status).toBe(201);
    await app.ctx.pool.query(
      "update siwe_nonces set expires_at = now() - interval '1 minute' where nonce <> $1",
      [fresh.body.nonce],
    );
    await app.ctx.pool.query("select graphile_worker.add_job('auth_cleanup', '{}'::json)");
    await runOnce({
      pgPool: app.ctx.pool,
      taskList: taskList(app.ctx),
      logger: graphileLogger(app.ctx.logger),
    });

    const [left] = await app.ctx.db.select({ n: count() }).from(siweNonces);
    expect(left?.n).toBe(1);
    const jobs = await app.ctx.pool.query("select count(*)::int as n from graphile_worker.jobs");
    expect(jobs.rows[0].n).toBe(0);
  });
});
