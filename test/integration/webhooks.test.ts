import type { Runner } from "graphile-worker";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { requeueStalledWebhooks } from "../../src/domains/webhooks/service.js";
import { startWorker } from "../../src/jobs/worker.js";
import {
  createAccountWithKey,
  createFundedCaller,
  startTestApp,
  type TestApp,
} from "../helpers/app.js";
import { expectMoneyInvariants } from "../helpers/ledger.js";
import { type ReceivedRequest, startReceiver, until } from "../helpers/receiver.js";
import { type Simulator, startSimulator } from "../simulator/upstream.js";

/**
 * Webhooks end to end: a real receiver on loopback (allowed for the test only), scripted to
 * fail, redirect or succeed, checked with the Standard Webhooks reference verifier.
 */
let app: TestApp;
let worker: Runner;
let sim: Simulator;
let receiver: Awaited<ReturnType<typeof startReceiver>>;

beforeAll(async () => {
  receiver = await startReceiver();
  sim = await startSimulator();
  app = await startTestApp({
    env: {
      SSRF_ALLOW_HOSTS: receiver.hostPort,
      WEBHOOK_RETRY_BASE_MS: "50",
      CHANNELS: JSON.stringify([
        {
          id: "sandbox",
          provider: "sandbox",
          networks: ["test"],
          models: {
            "z-image-turbo": "z-image-turbo",
            "qwen-image-2.0": "qwen-image-2.0",
          },
        },
        {
          id: "openai",
          provider: "openai",
          baseUrl: `${sim.url}/openai`,
          apiKey: "sk-sim",
          networks: ["test"],
          models: { "gpt-image-2": "gpt-image-1" },
        },
      ]),
    },
  });
  worker = await startWorker(app.ctx);
});

afterAll(async () => {
  await worker?.stop();
  await app?.close();
  await sim?.close();
  await receiver?.close();
});

beforeEach(() => {
  receiver.reset();
  sim.always = "ok";
});

const headersOf = (r: ReceivedRequest) => ({
  "webhook-id": String(r.headers["webhook-id"]),
  "webhook-timestamp": String(r.headers["webhook-timestamp"]),
  "webhook-signature": String(r.headers["webhook-signature"]),
});

async function delivery(generationId: string) {
  const { rows } = await app.ctx.pool.query(
    "select id, status, attempts, last_status_code from webhook_deliveries where generation_id = $1",
    [generationId],
  );
  return rows;
}

describe("webhooks", () => {
  it("keeps one secret per account until it is rotated", async () => {
    const { key } = await createAccountWithKey(app.ctx);
    const first = await app.call("getWebhookSecret", { token: key });
    expect(first.status).toBe(200);
    expect(first.body.secret).toMatch(/^whsec_[A-Za-z0-9+/]{32}$/);
    expect(first.body.previousSecretValidUntil).toBeNull();
    const again = await app.call("getWebhookSecret", { token: key });
    expect(again.body.secret).toBe(first.body.secret);
    expect((await app.call("getWebhookSecret")).status).toBe(401);

    const rotated = await app.request("POST", "/v1/webhooks/secret/rotate", { token: key });
    expect(rotated.status).toBe(200);
    expect(rotated.body.secret).not.toBe(first.body.secret);
    const graceEnds = new Date(rotated.body.previousSecretValidUntil).getTime();
    expect(graceEnds - Date.now()).toBeGreaterThan(23 * 3600_000);
    const other = await createAccountWithKey(app.ctx);
    const theirs = await app.call("getWebhookSecret", { token: other.key });
    expect(theirs.body.secret).not.toBe(rotated.body.secret);
  });

  it("retries a failing receiver with the same webhook-id and a verifiable signature", async () => {
    const { key } = await createFundedCaller(app.ctx, 100n);
    const { secret } = (await app.call("getWebhookSecret", { token: key })).body;
    receiver.script.push(500, 503);
    const submitted = await app.call("generate", {
      token: key,
      json: { prompt: "hook", models: ["z-image-turbo"], webhookUrl: `${receiver.url}/hook` },
    });
    expect(submitted.status).toBe(202);
    const generationId = submitted.body.generationId;

    await until("three attempts", () => (receiver.received.length >= 3 ? true : undefined));
    const ids = receiver.received.map((r) => r.headers["webhook-id"]);
    expect(ids).toHaveLength(3);
    expect(new Set(ids).size).toBe(1);
    expect(ids[0]).toMatch(/^msg_[0-9a-z]{26}$/);

    const verifier = new Webhook(secret);
    for (const attempt of receiver.received) {
      const payload = verifier.verify(attempt.body, headersOf(attempt)) as {
        type: string;
        data: { generationId: string; status: string; results: unknown[] };
      };
      expect(payload.type).toBe("generation.completed");
      expect(payload.data.generationId).toBe(generationId);
    }
    // A tampered body or another account's secret does not verify.
    const last = receiver.received[2] as ReceivedRequest;
    expect(() =>
      verifier.verify(last.body.replace("completed", "failed"), headersOf(last)),
    ).toThrow();
    const otherSecret = `whsec_${Buffer.alloc(24, 7).toString("base64")}`;
    expect(() => new Webhook(otherSecret).verify(last.body, headersOf(last))).toThrow();

    // The payload is the status endpoint's object.
    const status = await app.request("GET", `/v1/generate/status?ids=${generationId}`, {
      token: key,
    });
    const { data } = JSON.parse(last.body);
    const strip = (g: { results: Array<{ imageUrl: string | null }> }) => ({
      ...g,
      results: g.results.map((r) => ({ ...r, imageUrl: r.imageUrl?.split("?")[0] })),
    });
    expect(strip(data)).toEqual(strip(status.body.generations[generationId]));

    const row = await until("the delivery to be recorded", async () => {
      const [r] = await delivery(generationId);
      return r?.status === "delivered" ? r : undefined;
    });
    expect(row).toMatchObject({ attempts: 3, last_status_code: 200 });
    await expectMoneyInvariants(app.ctx);
  });

  it("does not follow a 3xx: it is a failed attempt, retried at the same URL", async () => {
    const { key } = await createFundedCaller(app.ctx, 100n);
    receiver.script.push(302, 307);
    const submitted = await app.call("generate", {
      token: key,
      json: { prompt: "redirected", models: ["z-image-turbo"], webhookUrl: `${receiver.url}/hook` },
    });
    await until("three attempts", () => (receiver.received.length >= 3 ? true : undefined));
    expect(receiver.received.map((r) => r.path)).toEqual(["/hook", "/hook", "/hook"]);
    const row = await until("delivered", async () => {
      const [r] = await delivery(submitted.body.generationId);
      return r?.status === "delivered" ? r : undefined;
    });
    expect(row.attempts).toBe(3);
  });

  it("tells of failures too, once per generation however many models settle at once", async () => {
    const { key } = await createFundedCaller(app.ctx, 100n);
    sim.always = "contentPolicy";
    const submitted = await app.call("generate", {
      token: key,
      json: {
        prompt: "two models, one refused",
        models: ["z-image-turbo", "qwen-image-2.0", "gpt-image-2"],
        webhookUrl: `${receiver.url}/multi`,
      },
    });
    expect(submitted.status).toBe(202);
    await until("a delivery", () => (receiver.received.length >= 1 ? true : undefined));
    // Give a wrongly queued second message time to arrive.
    await new Promise((r) => setTimeout(r, 500));
    expect(receiver.received).toHaveLength(1);
    const payload = JSON.parse((receiver.received[0] as ReceivedRequest).body);
    expect(payload.type).toBe("generation.completed");
    expect(payload.data.results.map((r: { status: string }) => r.status).sort()).toEqual([
      "completed",
      "completed",
      "failed",
    ]);
    expect(payload.data.cost.refunded).toBeGreaterThan(0);

    receiver.reset();
    const allFail = await app.call("generate", {
      token: key,
      json: { prompt: "refused", models: ["gpt-image-2"], webhookUrl: `${receiver.url}/failed` },
    });
    await until("a delivery", () => (receiver.received.length >= 1 ? true : undefined));
    const failed = JSON.parse((receiver.received[0] as ReceivedRequest).body);
    expect(failed.type).toBe("generation.failed");
    expect(failed.data.generationId).toBe(allFail.body.generationId);
    expect(failed.data.results[0].error.code).toBe("content_policy");
    await expectMoneyInvariants(app.ctx);
  });

  it("signs with both secrets for a day after a rotation", async () => {
    const { key } = await createFundedCaller(app.ctx, 100n);
    const old = (await app.call("getWebhookSecret", { token: key })).body.secret;
    const fresh = (await app.call("rotateWebhookSecret", { token: key })).body.secret;
    await app.call("generate", {
      token: key,
      json: { prompt: "rotated", models: ["z-image-turbo"], webhookUrl: `${receiver.url}/rot` },
    });
    await until("a delivery", () => (receiver.received.length >= 1 ? true : undefined));
    const message = receiver.received[0] as ReceivedRequest;
    expect(String(message.headers["webhook-signature"]).split(" ")).toHaveLength(2);
    expect(new Webhook(fresh).verify(message.body, headersOf(message))).toBeTruthy();
    expect(new Webhook(old).verify(message.body, headersOf(message))).toBeTruthy();
  });

  it("requeues a message whose retry chain broke, once", async () => {
    const { key, account } = await createFundedCaller(app.ctx, 100n);
    const submitted = await app.call("generate", {
      token: key,
      json: { prompt: "no hook", models: ["z-image-turbo"] },
    });
    // A pending message with no job behind it, as after its delivery job failed for good.
    const id = "msg_stalled0000000000000000000";
    await app.ctx.pool.query(
      `insert into webhook_deliveries (id, generation_id, account_id, url, created_at)
       values ($1, $2, $3, $4, now() - interval '1 hour')`,
      [id, submitted.body.generationId, account.id, `${receiver.url}/stalled`],
    );
    expect(await requeueStalledWebhooks(app.ctx)).toBe(1);
    expect(await requeueStalledWebhooks(app.ctx)).toBe(0);
    await until("the requeued delivery", () =>
      receiver.received.some((r) => r.path === "/stalled") ? true : undefined,
    );
    const [row] = await delivery(submitted.body.generationId);
    expect(row?.id).toBe(id);
  });
});
