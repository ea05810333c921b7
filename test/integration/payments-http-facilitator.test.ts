import type { Server } from "node:http";
import express from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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
 * GET /supported), here an x402 facilitator served from this test on the local chain.
 */
let chain: LocalChain;
let app: TestApp;
let server: Server;
const calls: string[] = [];

beforeAll(async () => {
  chain = await startTestChain("test");
  const facilitator = inProcessFacilitator({
    rpcUrl: chain.rpcUrl,
    chainId: USDC.test.chainId,
    caip2: USDC.test.caip2,
    privateKey: privateKeyOf(anvilAccount(LOCAL_ROLES.facilitator)),
    confirmationTimeoutMs: 10_000,
  });
  const http = express().use(express.json());
  http.use((req, _res, next) => {
    calls.push(`${req.method} ${req.path}`);
    next();
  });
  http.get("/supported", async (_req, res) => {
    res.json(await facilitator.getSupported());
  });
  http.post("/verify", async (req, res) => {
    res.json(await facilitator.verify(req.body.paymentPayload, req.body.paymentRequirements));
  });
  http.post("/settle", async (req, res) => {
    res.json(await facilitator.settle(req.body.paymentPayload, req.body.paymentRequirements));
  });
  server = await new Promise<Server>((resolve) => {
    const s = http.listen(0, "127.0.0.1", () => resolve(s));
  });
  const { port } = server.address() as { port: number };
  app = await startTestApp({
    env: {
      X402_TEST_RPC_URL: chain.rpcUrl,
      X402_TEST_PAY_TO: treasury,
      X402_TEST_FACILITATOR_URL: `http://127.0.0.1:${port}`,
    },
  });
});

afterAll(async () => {
  await app?.close();
  await new Promise((resolve) => server?.close(resolve));
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
});
