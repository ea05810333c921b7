import { eq } from "drizzle-orm";
import type { Hex } from "viem";
import { generatePrivateKey, type PrivateKeyAccount, privateKeyToAccount } from "viem/accounts";
import { createSiweMessage } from "viem/siwe";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { accounts } from "../../src/db/schema.js";
import { deleteExpiredSignInState } from "../../src/domains/accounts/signin.js";
import { startTestApp, type TestApp } from "../helpers/app.js";

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp({ env: { SIWE_NONCE_TTL_SECONDS: "300", SESSION_TTL_SECONDS: "3600" } });
});
afterAll(() => app.close());

const newWallet = () => privateKeyToAccount(generatePrivateKey());

async function signedMessage(
  wallet: PrivateKeyAccount,
  overrides: Partial<Parameters<typeof createSiweMessage>[0]> = {},
): Promise<{ message: string; signature: Hex; nonce: string }> {
  const issued = await app.call("createSignInNonce");
  expect(issued.status).toBe(201);
  const message = createSiweMessage({
    address: wallet.address,
    chainId: 84532,
    domain: issued.body.domain,
    uri: issued.body.uri,
    nonce: issued.body.nonce,
    version: "1",
    statement: issued.body.statement,
    issuedAt: app.clock.now(),
    ...overrides,
  });
  return { message, signature: await wallet.signMessage({ message }), nonce: issued.body.nonce };
}

describe("sign-in with a wallet (EIP-4361)", () => {
  it("creates the wallet's account on first sign-in and returns a session that manages keys", async () => {
    const wallet = newWallet();
    const { message, signature } = await signedMessage(wallet);
    const res = await app.call("signIn", { json: { message, signature } });
    expect(res.status).toBe(201);
    expect(res.body.sessionToken).toMatch(/^sess_[0-9A-Za-z]{48}$/);
    expect(res.body.account.walletAddress).toBe(wallet.address);
    expect(new Date(res.body.expiresAt).getTime() - app.clock.now().getTime()).toBeGreaterThan(
      3500_000,
    );
    const session = res.body.sessionToken;

    // The session manages keys on both networks.
    const live = await app.call("createApiKey", {
      token: session,
      json: { name: "l", network: "live" },
    });
    const test = await app.call("createApiKey", {
      token: session,
      json: { name: "t", network: "test" },
    });
    expect([live.status, test.status]).toEqual([201, 201]);
    const listed = await app.call("listApiKeys", { token: session });
    expect(listed.body.data.map((k: { network: string }) => k.network).sort()).toEqual([
      "live",
      "test",
    ]);
    // A session must say which network a key is for.
    const noNetwork = await app.call("createApiKey", {
      token: session,
      json: { name: "n" },
    });
    expect(noNetwork.status).toBe(400);

    // Signing in again reaches the same account.
    const again = await signedMessage(wallet);
    const second = await app.call("signIn", {
      json: { message: again.message, signature: again.signature },
    });
    expect(second.body.account.id).toBe(res.body.account.id);
    const rows = await app.ctx.db
      .select()
      .from(accounts)
      .where(eq(accounts.walletAddress, wallet.address));
    expect(rows).toHaveLength(1);

    // Logging out ends the session.
    expect((await app.call("signOut", { token: session })).status).toBe(204);
    const after = await app.call("listApiKeys", { token: session });
    expect(after.status).toBe(401);
    expect(after.body.error.code).toBe("invalid_session");
  });

  it("refuses a replayed nonce", async () => {
    const { message, signature } = await signedMessage(newWallet());
    const first = await app.call("signIn", { json: { message, signature } });
    expect(first.status).toBe(201);
    const replay = await app.call("signIn", { json: { message, signature } });
    expect(replay.status).toBe(401);
    expect(replay.body.error.code).toBe("invalid_nonce");
    expect(replay.body.error.message).toMatch(/already been used/);
  });

  it("lets exactly one of two concurrent uses of a nonce through", async () => {
    const { message, signature } = await signedMessage(newWallet());
    const results = await Promise.all(
      Array.from({ length: 5 }, () => app.call("signIn", { json: { message, signature } })),
    );
    expect(results.map((r) => r.status).sort()).toEqual([201, 401, 401, 401, 401]);
  });

  it("refuses an expired nonce", async () => {
    const wallet = newWallet();
    const { nonce } = await signedMessage(wallet);
    app.clock.advance(301_000);
    try {
      const message = createSiweMessage({
        address: wallet.address,
        chainId: 84532,
        domain: "localhost:3000",
        uri: "http://localhost:3000",
        nonce,
        version: "1",
        issuedAt: app.clock.now(),
      });
      const res = await app.call("signIn", {
        json: { message, signature: await wallet.signMessage({ message }) },
      });
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe("invalid_nonce");
      expect(res.body.error.message).toMatch(/expired/);
    } finally {
      app.clock.advance(-301_000);
    }
  });

  it("refuses a nonce the server never issued", async () => {
    const wallet = newWallet();
    const message = createSiweMessage({
      address: wallet.address,
      chainId: 84532,
      domain: "localhost:3000",
      uri: "http://localhost:3000",
      nonce: "madeUpNonce123",
      version: "1",
      issuedAt: app.clock.now(),
    });
    const res = await app.call("signIn", {
      json: { message, signature: await wallet.signMessage({ message }) },
    });
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe("invalid_nonce");
  });

  it("refuses a signature from another wallet without burning the nonce", async () => {
    const wallet = newWallet();
    const { message, signature } = await signedMessage(wallet);
    const forged = await newWallet().signMessage({ message });
    const res = await app.call("signIn", {
      json: { message, signature: forged },
    });
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe("invalid_signature");
    const real = await app.call("signIn", { json: { message, signature } });
    expect(real.status).toBe(201);
  });

  it("refuses messages for another domain, chain, or past their expiration", async () => {
    const wallet = newWallet();
    for (const overrides of [
      { domain: "evil.example" },
      { chainId: 1 },
      { expirationTime: new Date(Date.now() - 1000) },
      { notBefore: new Date(Date.now() + 3600_000) },
    ]) {
      const { message, signature } = await signedMessage(wallet, overrides);
      const res = await app.call("signIn", { json: { message, signature } });
      expect(res.status, JSON.stringify(overrides)).toBe(400);
      expect(res.body.error.code).toBe("invalid_siwe_message");
    }
  });

  it("refuses a URI on another origin, a bad date and an unchecksummed address", async () => {
    const wallet = newWallet();
    const uri = await signedMessage(wallet, { uri: "https://evil.example/login" });
    const res = await app.call("signIn", {
      json: { message: uri.message, signature: uri.signature },
    });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(/URI/);

    const good = await signedMessage(wallet, { expirationTime: new Date(Date.now() + 600_000) });
    const badDate = good.message.replace(/Expiration Time: .*/, "Expiration Time: yesterday");
    const dated = await app.call("signIn", {
      json: { message: badDate, signature: await wallet.signMessage({ message: badDate }) },
    });
    expect(dated.status).toBe(400);
    expect(dated.body.error.message).toMatch(/Expiration Time/);

    const lower = good.message.replace(wallet.address, wallet.address.toLowerCase());
    const unchecksummed = await app.call("signIn", {
      json: { message: lower, signature: await wallet.signMessage({ message: lower }) },
    });
    expect(unchecksummed.status).toBe(400);
    expect(unchecksummed.body.error.code).toBe("invalid_siwe_message");
  });

  it("answers 400 to a body that is not a sign-in request", async () => {
    for (const json of [
      {},
      { message: "hello", signature: "nothex" },
      { message: "not siwe", signature: "0x00" },
    ]) {
      const res = await app.call("signIn", { json });
      expect(res.status, JSON.stringify(json)).toBe(400);
      expect(["invalid_request", "invalid_siwe_message"]).toContain(res.body.error.code);
    }
  });

  it("expires sessions", async () => {
    const { message, signature } = await signedMessage(newWallet());
    const { body } = await app.call("signIn", { json: { message, signature } });
    expect((await app.call("getAccount", { token: body.sessionToken })).status).toBe(200);
    app.clock.advance(3601_000);
    try {
      const res = await app.call("getAccount", { token: body.sessionToken });
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe("invalid_session");
      // The worker's cleanup removes what expired.
      const removed = await deleteExpiredSignInState(app.ctx);
      expect(removed.sessions).toBeGreaterThanOrEqual(1);
      expect(removed.nonces).toBeGreaterThanOrEqual(1);
    } finally {
      app.clock.advance(-3601_000);
    }
  });

  it("refuses a session token on endpoints that need an API key", async () => {
    // No such endpoint exists yet besides key management; the middleware rule is covered here.
    const { authenticate } = await import("../../src/http/auth.js");
    const { message, signature } = await signedMessage(newWallet());
    const { body } = await app.call("signIn", { json: { message, signature } });
    const middleware = authenticate(app.ctx);
    const req = { headers: { authorization: `Bearer ${body.sessionToken}` } } as never;
    await expect(middleware(req, {} as never, () => {})).rejects.toMatchObject({
      code: "invalid_api_key",
    });
  });
});
