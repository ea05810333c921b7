import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAccountWithKey, startTestApp, type TestApp } from "../helpers/app.js";

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(() => app.close());

async function expect401(headers: Record<string, string>, code: string) {
  for (const [method, path] of [
    ["GET", "/v1/account"],
    ["GET", "/v1/api-keys"],
    ["POST", "/v1/api-keys"],
    ["DELETE", "/v1/api-keys/key_x"],
  ] as const) {
    const res = await app.request(method, path, {
      headers,
      json: method === "POST" ? { name: "x" } : undefined,
    });
    expect(res.status, `${method} ${path}`).toBe(401);
    expect(res.body.error.code, `${method} ${path}`).toBe(code);
    expect(res.body.error.requestId).toBe(res.headers.get("x-request-id"));
    expect(typeof res.body.error.message).toBe("string");
  }
}

describe("authentication", () => {
  it("401 missing_api_key without an Authorization header, or an empty one", async () => {
    await expect401({}, "missing_api_key");
    await expect401({ authorization: "" }, "missing_api_key");
  });

  it("401 invalid_api_key for a malformed header or key", async () => {
    const suffix = "A".repeat(64);
    for (const authorization of [
      "Basic dXNlcjpwYXNz",
      "Bearer",
      `sk_test_${suffix}`,
      `Bearer sk_test_${suffix.slice(1)}`,
      `Bearer sk_main_${suffix}`,
      `Bearer sk_test_${suffix} extra`,
      `Bearer sk_test_${"é".repeat(64)}`,
    ]) {
      await expect401({ authorization }, "invalid_api_key");
    }
  });

  it("401 invalid_api_key for a well-formed key nobody issued", async () => {
    await expect401({ authorization: `Bearer sk_live_${"z".repeat(64)}` }, "invalid_api_key");
  });

  it("401 invalid_api_key for a revoked key", async () => {
    const { key, apiKey } = await createAccountWithKey(app.ctx, "test");
    expect((await app.call("revokeApiKey", { params: { id: apiKey.id }, token: key })).status).toBe(
      200,
    );
    await expect401({ authorization: `Bearer ${key}` }, "invalid_api_key");
  });

  it("401 invalid_session for an unknown session token", async () => {
    await expect401({ authorization: `Bearer sess_${"x".repeat(48)}` }, "invalid_session");
    await expect401({ authorization: "Bearer sess_short" }, "invalid_session");
  });

  it("accepts the scheme case-insensitively and binds the caller to the key's account and network", async () => {
    const { key, account } = await createAccountWithKey(app.ctx, "live");
    const res = await app.call("getAccount", {
      headers: { authorization: `bearer ${key}` },
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      id: account.id,
      network: "live",
      walletAddress: account.walletAddress,
    });
  });
});
