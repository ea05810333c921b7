import { decodePaymentSignatureHeader } from "@x402/core/http";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { LocalChain } from "../../src/chain/local-chain.js";
import { findOrCreateWalletAccount } from "../../src/domains/accounts/service.js";
import { createApiKey } from "../../src/domains/keys/service.js";
import { reconcilePayments } from "../../src/domains/payments/reconcile.js";
import { creditsToJson } from "../../src/lib/credits.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import {
  fundedPayer,
  paymentEnv,
  signPayment,
  startTestChain,
  treasury,
  usdcBalance,
} from "../helpers/chain.js";
import { startCli } from "../helpers/cli.js";
import { expectMoneyInvariants } from "../helpers/ledger.js";
import { freePort } from "../helpers/ports.js";

/**
 * A paid call whose API process is killed after the USDC moved on chain and before the payment
 * was recorded: a real `polyforge serve`, held between settlement and record by a lock on the
 * ledger, then `kill -9`. A real `polyforge worker` must decide the payment from the chain
 * within a minute, mint its credits exactly once, and the wallet must find it by its nonce and
 * with a key for its account.
 */
let chain: LocalChain;
let app: TestApp;
// Short, so the settlement window (twice this, plus a margin) ends well inside the test.
const SETTLE_TIMEOUT_MS = "3000";

beforeAll(async () => {
  chain = await startTestChain("test");
  app = await startTestApp({
    env: { ...paymentEnv([chain]), X402_SETTLE_TIMEOUT_MS: SETTLE_TIMEOUT_MS, LOG_LEVEL: "error" },
  });
});
afterAll(async () => {
  await app?.close();
  await chain?.stop();
});

async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

it("records a payment settled on chain by an API that was killed before recording it, once, within a minute, and the wallet finds it", async () => {
  const payer = await fundedPayer(chain, 10n * 10n ** 6n);
  // The wallet's account exists beforehand, so nothing but the record writes the ledger.
  const account = await findOrCreateWalletAccount(app.ctx, payer.address);
  const treasuryBefore = await usdcBalance(chain, treasury);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env = {
    DATABASE_URL: app.database.url,
    ...paymentEnv([chain]),
    X402_SETTLE_TIMEOUT_MS: SETTLE_TIMEOUT_MS,
    STORAGE_DIR: app.ctx.config.storageDir,
    RATE_LIMITS: "off",
    LOG_LEVEL: "info",
  };
  const serve = startCli(["serve"], {
    ...env,
    PORT: String(port),
    HOST: "127.0.0.1",
    PUBLIC_URL: url,
  });
  const locker = new pg.Client({ connectionString: app.database.url });
  let worker: ReturnType<typeof startCli> | undefined;
  try {
    await serve.waitFor("API listening");
    const body = JSON.stringify({ prompt: "a lighthouse at dusk", models: ["gpt-image-2"] });
    const unpaid = await fetch(`${url}/v1/generate`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    expect(unpaid.status).toBe(402);
    const signature = await signPayment(
      payer,
      "test",
      unpaid.headers.get("payment-required") as string,
    );
    const { nonce } = (
      decodePaymentSignatureHeader(signature).payload as { authorization: { nonce: string } }
    ).authorization;

    // Nothing can be written to the ledger until the lock goes: the record waits on it.
    await locker.connect();
    await locker.query("begin");
    await locker.query("lock table ledger_transfers in exclusive mode");
    const paid = fetch(`${url}/v1/generate`, {
      method: "POST",
      headers: { "content-type": "application/json", "payment-signature": signature },
      body,
    }).catch((err: unknown) => err);
    // Settled on chain (the treasury has the USDC) and the record is waiting on the lock.
    await until(
      "the settlement",
      async () => ((await usdcBalance(chain, treasury)) > treasuryBefore ? true : undefined),
      30_000,
    );
    await until(
      "the record to wait",
      async () => {
        const { rows } = await app.ctx.pool.query(
          "select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'",
        );
        return rows[0].n > 0 ? true : undefined;
      },
      30_000,
    );
    serve.child.kill("SIGKILL");
    await serve.exited;
    const killedAt = Date.now();
    expect(await paid).toBeInstanceOf(Error); // the caller never got an answer
    await locker.query("commit");

    const row = async () =>
      (
        await app.ctx.pool.query(
          "select id, status, credits::int as credits, generation_id from payments where nonce = $1",
          [nonce.toLowerCase()],
        )
      ).rows[0];
    // Claimed, settled on chain, never recorded.
    expect(await row()).toMatchObject({ status: "settling" });

    worker = startCli(["worker"], env);
    const settled = await until(
      "the payment to be recorded",
      async () => {
        const r = await row();
        return r.status === "settled" ? r : undefined;
      },
      60_000,
    );
    // The bound: within a minute of the settlement window's end (this one's is 11 s).
    expect(Date.now() - killedAt).toBeLessThan(60_000 + 11_000);

    const mints = await app.ctx.pool.query(
      "select count(*)::int as n, sum(amount)::int as amount from ledger_transfers where id = $1",
      [`payment:${settled.id}`],
    );
    expect(mints.rows[0]).toEqual({ n: 1, amount: settled.credits });
    expect(await usdcBalance(chain, treasury)).toBe(
      // A ledger unit is one USDC base unit.
      treasuryBefore + BigInt(settled.credits),
    );

    // By its nonce, with no credential.
    const byNonce = await app.request("GET", `/v1/payments/by-nonce/${nonce}`);
    expect(byNonce.status).toBe(200);
    expect(byNonce.body).toMatchObject({
      id: settled.id,
      status: "settled",
      payer: payer.address,
      credits: creditsToJson(BigInt(settled.credits)),
      transaction: expect.stringMatching(/^0x/),
      // The generation's transaction died with the API: the credits wait on the account.
      generationId: null,
    });
    const unknown = await app.request("GET", `/v1/payments/by-nonce/0x${"ab".repeat(32)}`);
    expect(unknown.status).toBe(404);

    // With a key for the wallet's account (what a wallet sign-in gives): the payment and credits.
    const { key } = await createApiKey(
      app.ctx,
      { accountId: account.id },
      { network: "test", name: "t" },
    );
    const list = await app.request("GET", "/v1/payments", { token: key });
    expect(list.body.data).toEqual([
      expect.objectContaining({ id: settled.id, status: "settled" }),
    ]);
    const balance = await app.request("GET", "/v1/balance", { token: key });
    expect(balance.body).toMatchObject({
      creditBalance: creditsToJson(BigInt(settled.credits)),
      heldCredits: 0,
    });

    // A second decision moves nothing.
    const report = await reconcilePayments(app.ctx, "test");
    expect(report.ok).toBe(true);
    expect(
      (
        await app.ctx.pool.query("select count(*)::int as n from ledger_transfers where id = $1", [
          `payment:${settled.id}`,
        ])
      ).rows[0].n,
    ).toBe(1);
    await expectMoneyInvariants(app.ctx);
  } finally {
    await locker.end().catch(() => {});
    if (serve.child.exitCode === null) serve.child.kill("SIGKILL");
    await serve.exited;
    if (worker) {
      worker.child.kill("SIGTERM");
      await worker.exited;
    }
  }
}, 120_000);
