import type { AddressInfo } from "node:net";
import express from "express";
import { pinoHttp } from "pino-http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getBalance } from "../../src/domains/ledger/service.js";
import { authenticate } from "../../src/http/auth.js";
import { requestContextOf } from "../../src/http/request-context.js";
import { createAccountWithKey, startTestApp, type TestApp } from "../helpers/app.js";

/**
 * A request context is built once per request from the app context: the caller and its scope,
 * and a logger that names the request, so a service called with it logs the request id.
 */
let app: TestApp;
let server: ReturnType<ReturnType<typeof express>["listen"]>;
let url: string;

beforeAll(async () => {
  app = await startTestApp();
  const site = express();
  site.use(
    pinoHttp({ logger: app.ctx.logger, genReqId: (req) => String(req.headers["x-request-id"]) }),
  );
  site.get("/whoami", authenticate(app.ctx), async (req, res) => {
    const rctx = requestContextOf(app.ctx, req);
    // A service takes the request context as its context.
    const balance = await getBalance(rctx, rctx.caller?.accountId ?? "", "test");
    rctx.logger.info({ probe: true }, "request context probe");
    res.json({
      requestId: rctx.requestId,
      scope: rctx.scope,
      kind: rctx.caller?.kind,
      credits: balance.creditBalance.toString(),
    });
  });
  server = site.listen(0);
  await new Promise((resolve) => server.once("listening", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server?.close();
  await app?.close();
});

describe("requestContextOf", () => {
  it("carries the caller, its scope and a logger bound to the request id", async () => {
    const { account, key } = await createAccountWithKey(app.ctx, "test");
    const res = await fetch(`${url}/whoami`, {
      headers: { authorization: `Bearer ${key}`, "x-request-id": "req_context_probe_1" },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      requestId: "req_context_probe_1",
      scope: { accountId: account.id, network: "test", apiKeyId: expect.stringMatching(/^key_/) },
      kind: "api_key",
      credits: "0",
    });
    const line = app.logs
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.probe === true);
    expect(line).toMatchObject({
      req: { id: "req_context_probe_1" },
      accountId: account.id,
      msg: "request context probe",
    });
  });
});
