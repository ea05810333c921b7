import { randomBytes } from "node:crypto";
import { sql } from "drizzle-orm";
import { getAddress } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { USDC } from "../../src/chain/networks.js";
import { runResult } from "../../src/domains/generations/run.js";
import { resultIdOf } from "../../src/domains/generations/submit.js";
import { claimPayment, markPaymentPending } from "../../src/domains/payments/service.js";
import { requeueStalledWebhooks } from "../../src/domains/webhooks/service.js";
import { type JobPayload, parseJobPayload, type QueuedTask } from "../../src/jobs/definitions.js";
import {
  createAccountWithKey,
  createFundedCaller,
  startTestApp,
  type TestApp,
} from "../helpers/app.js";
import { expectMoneyInvariants } from "../helpers/ledger.js";
import { startReceiver } from "../helpers/receiver.js";

/**
 * The jobs queued from SQL build their payload in the statement (one job per row it returns):
 * no TypeScript value is checked on the way. Each such statement runs here, with no worker, and
 * the payload it left in the queue must parse with its task's schema in the registry, as the
 * task list will parse it.
 */
let app: TestApp;
let receiver: Awaited<ReturnType<typeof startReceiver>>;

beforeAll(async () => {
  receiver = await startReceiver();
  app = await startTestApp({ env: { SSRF_ALLOW_HOSTS: receiver.hostPort } });
});

afterAll(async () => {
  await expectMoneyInvariants(app.ctx);
  await app?.close();
  await receiver?.close();
});

/** The queued jobs of a task, each payload parsed with the registry's schema (the payload is
 * only in graphile-worker's private table: read here by the test, never by the application). */
async function queued<T extends QueuedTask>(task: T) {
  const { rows } = await app.ctx.db.execute<{ key: string | null; payload: unknown }>(sql`
    select j.key, j.payload from graphile_worker._private_jobs j
    join graphile_worker._private_tasks t on t.id = j.task_id
    where t.identifier = ${task} order by j.id`);
  return rows.map((row) => ({ key: row.key, payload: parseJobPayload(task, row.payload) }));
}

const payloadsOf = async <T extends QueuedTask>(task: T): Promise<JobPayload<T>[]> =>
  (await queued(task)).map((job) => job.payload);

describe("payloads built in SQL parse with the registry's schemas", () => {
  it("run_generation per inserted result, deliver_webhook when it settles and when requeued", async () => {
    const { key } = await createFundedCaller(app.ctx, 100n);
    const submitted = await app.request("POST", "/v1/generate", {
      token: key,
      json: {
        prompt: "a lantern",
        models: ["z-image-turbo", "nano-banana-2"],
        webhookUrl: `${receiver.url}/hook`,
      },
    });
    expect(submitted.status, JSON.stringify(submitted.body)).toBe(202);
    const generationId: string = submitted.body.generationId;
    const resultIds = [resultIdOf(generationId, 0), resultIdOf(generationId, 1)];
    expect(await queued("run_generation")).toEqual(
      expect.arrayContaining(resultIds.map((id) => ({ key: id, payload: { resultId: id } }))),
    );

    for (const id of resultIds) await runResult(app.ctx, app.ctx.generations, id);
    const { rows } = await app.ctx.db.execute<{ id: string }>(sql`
      select id from webhook_deliveries where generation_id = ${generationId}`);
    const deliveryId = rows[0]?.id as string;
    expect(deliveryId).toMatch(/^msg_/);
    expect(await queued("deliver_webhook")).toEqual([{ key: deliveryId, payload: { deliveryId } }]);

    // Its retry chain broken (the job gone), it is queued again once stalled.
    await app.ctx.db.execute(sql`select graphile_worker.remove_job(${deliveryId})`);
    expect(await queued("deliver_webhook")).toEqual([]);
    app.clock.advance(11 * 60_000);
    expect(await requeueStalledWebhooks(app.ctx)).toBe(1);
    expect(await queued("deliver_webhook")).toEqual([{ key: deliveryId, payload: { deliveryId } }]);
  });

  it("advance_workflow_run per run a settled step belongs to", async () => {
    const { key } = await createFundedCaller(app.ctx, 100n);
    const saved = await app.request("POST", "/v1/workflows", {
      token: key,
      json: {
        name: "one step",
        steps: [{ id: "a", request: { prompt: "a kite", models: ["z-image-turbo"] } }],
      },
    });
    expect(saved.status, JSON.stringify(saved.body)).toBe(201);
    const started = await app.request("POST", `/v1/workflows/${saved.body.id}/run`, {
      token: key,
    });
    expect(started.status, JSON.stringify(started.body)).toBe(202);
    const runId: string = started.body.runId;
    const before = (await payloadsOf("advance_workflow_run")).length;

    const generationId: string = started.body.steps[0].generationId;
    await runResult(app.ctx, app.ctx.generations, resultIdOf(generationId, 0));
    const advances = await payloadsOf("advance_workflow_run");
    expect(advances.length).toBe(before + 1);
    expect(advances.at(-1)).toEqual({ runId });
  });

  it("resolve_payment for a payment marked pending", async () => {
    const { account } = await createAccountWithKey(app.ctx);
    const hex = (bytes: number) => `0x${randomBytes(bytes).toString("hex")}`;
    const payment = await claimPayment(app.ctx, {
      network: "test",
      accountId: account.id,
      payer: getAddress(hex(20)),
      payTo: getAddress(hex(20)),
      asset: USDC.test.address,
      nonce: hex(32),
      amount: 10_000n,
      credits: 1n,
      purpose: "generation",
      validBefore: new Date(Date.now() + 60_000),
    });
    const jobKey = `resolve_payment:${payment.id}`;
    // Queued with the claim (its payload a value, checked as it was queued)...
    expect(await queued("resolve_payment")).toEqual([
      { key: jobKey, payload: { paymentId: payment.id } },
    ]);
    await app.ctx.db.execute(sql`select graphile_worker.remove_job(${jobKey})`);
    // ...and again from the statement that marks it pending.
    await markPaymentPending(app.ctx, payment.id, null, "the receipt did not come in time");
    expect(await queued("resolve_payment")).toEqual([
      { key: jobKey, payload: { paymentId: payment.id } },
    ]);
  });
});
