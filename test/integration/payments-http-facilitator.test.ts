import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FacilitatorServer, serveFacilitator } from "../../src/chain/facilitator-server.js";
import {
  anvilAccount,
  LOCAL_ROLES,
  type LocalChain,
  privateKeyOf,
} from "../../src/chain/local-chain.js";
import { USDC } from "../../src/chain/networks.js";
import { inProcessFacilitator } from "../../src/domains/payments/facilitator.js";
import { createAccountWithKey, startTestApp, type TestApp } from "../helpers/app.js";
import {
  fundedPayer,
  payingFetch,
  startTestChain,
  treasury,
  usdcBalance,
} from "../helpers/chain.js";

/**
 * The production shape: the API talks to a facilitator over HTTP (POST /verify, POST /settle,
 * GET /supported), here the local chain's facilitator served as `polyforge chain
 * --facilitator-port` serves it.
 */
let chain: LocalChain;
let app: TestApp;
let server: FacilitatorServer;
const calls: string[] = [];
/** Set by a test: the next settle is broadcast and mined, then its answer is lost (a 500). */
let loseNextSettleAnswer = false;

beforeAll(async () => {
  chain = await startTestChain("test");
  const facilitator = inProcessFacilitator({
    rpcUrl: chain.rpcUrl,
    chainId: USDC.test.chainId,
    caip2: USDC.test.caip2,
    privateKey: privateKeyOf(anvilAccount(LOCAL_ROLES.facilitator)),
    confirmationTimeoutMs: 10_000,
  });
  // The calls that reach it, in order, as the HTTP routes they came in on.
  server = await serveFacilitator(
    {
      getSupported: () => {
        calls.push("GET /supported");
        return facilitator.getSupported();
      },
      verify: (...args) => {
        calls.push("POST /verify");
        return facilitator.verify(...args);
      },
      settle: async (...args) => {
        calls.push("POST /settle");
        const settled = await facilitator.settle(...args);
        if (loseNextSettleAnswer) {
          loseNextSettleAnswer = false;
          throw new Error("the facilitator fell over after broadcasting");
        }
        return settled;
      },
    },
    { host: "127.0.0.1", port: 0 },
  );
  app = await startTestApp({
    env: {
      X402_TEST_RPC_URL: chain.rpcUrl,
      X402_TEST_PAY_TO: treasury,
      X402_TEST_FACILITATOR_URL: server.url,
    },
  });
});

afterAll(async () => {
  await app?.close();
  await server?.close();
  await chain?.stop();
});

describe("an HTTP facilitator", () => {
  it("verifies and settles a pack purchase over HTTP", async () => {
    const { key } = await createAccountWithKey(app.ctx, "test");
    const payer = await fundedPayer(chain, 10_000_000n);
    const res = await payingFetch(payer, "test")(`${app.url}/v1/credits/packs/starter`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}` },
    });
    expect(res.status).toBe(201);
    expect(await usdcBalance(chain, payer.address)).toBe(2_000_000n);
    expect(calls).toEqual(["GET /supported", "POST /verify", "POST /settle"]);
    const balance = await app.request("GET", "/v1/balance", { token: key });
    expect(balance.body.creditBalance).toBe(1000);
  });

  it("keeps a payment whose settle call failed pending with a stable code, and never asks to pay again", async () => {
    const { key } = await createAccountWithKey(app.ctx, "test");
    const payer = await fundedPayer(chain, 10_000_000n);
    loseNextSettleAnswer = true;
    const res = await payingFetch(payer, "test")(`${app.url}/v1/credits/packs/starter`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}` },
    });
    expect(res.status).toBe(202);
    const body = (await res.json()) as { status: string; payment: { id: string; status: string } };
    expect(body.status).toBe("payment_pending");
    expect(body.payment.status).toBe("pending");
    const { rows } = await app.ctx.pool.query<{ status: string; error: string | null }>(
      "select status, error from payments where id = $1",
      [body.payment.id],
    );
    // The code is stored, not the exception's text; the text went to the log.
    expect(rows[0]).toEqual({ status: "pending", error: "settlement_error" });
    expect(app.logs.some((line) => line.includes("the facilitator fell over"))).toBe(true);
  });
});
