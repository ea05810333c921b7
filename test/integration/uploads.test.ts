import type { Server } from "node:http";
import { type AddressInfo, createServer, type Server as NetServer } from "node:net";
import express from "express";
import type { Runner } from "graphile-worker";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getBalance } from "../../src/domains/ledger/service.js";
import { startWorker } from "../../src/jobs/worker.js";
import { creditUnits } from "../../src/lib/credits.js";
import {
  type ApiResponse,
  createAccountWithKey,
  createFundedCaller,
  startTestApp,
  type TestApp,
  waitForGeneration,
} from "../helpers/app.js";
import { pngBomb, solidPng } from "../helpers/images.js";
import { expectMoneyInvariants } from "../helpers/ledger.js";
import { type Simulator, startSimulator } from "../simulator/upstream.js";

/**
 * Reference images: uploads (type from the bytes, size and pixel caps, owner and network
 * only), and remote URLs fetched once through the SSRF guard and re-hosted, so the upstream
 * is handed our signed copy, never the caller's URL.
 */
let app: TestApp;
let worker: Runner;
let sim: Simulator;
let fixture: Server;
let fixturePort: number;
let fixtureHits = 0;
let canary: NetServer;
let canaryPort: number;
let canaryConnections = 0;
let remotePng: Buffer;

beforeAll(async () => {
  remotePng = await solidPng(40, 30, "#c63");
  const site = express();
  site.get("/ref.png", (_req, res) => {
    fixtureHits++;
    res.type("png").send(remotePng);
  });
  site.get("/page.html", (_req, res) => void res.type("html").send("<html></html>"));
  fixture = site.listen(0, "127.0.0.1");
  await new Promise((r) => fixture.once("listening", r));
  fixturePort = (fixture.address() as AddressInfo).port;
  canary = createServer((socket) => {
    canaryConnections++;
    socket.destroy();
  });
  await new Promise<void>((r) => canary.listen(0, "127.0.0.1", r));
  canaryPort = (canary.address() as AddressInfo).port;

  sim = await startSimulator();
  app = await startTestApp({
    env: {
      // The fixture stands in for a public site; the canary and everything else stay refused.
      SSRF_ALLOW_HOSTS: `127.0.0.1:${fixturePort}`,
      CHANNELS: JSON.stringify([
        {
          id: "sandbox",
          provider: "sandbox",
          networks: ["test"],
          models: { "z-image-turbo": "z-image-turbo" },
        },
        {
          id: "fal",
          provider: "fal",
          baseUrl: `${sim.url}/fal`,
          apiKey: "fal-key",
          networks: ["test"],
          models: { "qwen-image-2.0": "fal-ai/qwen-image" },
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
  fixture?.close();
  canary?.close();
});

async function upload(
  key: string,
  bytes: Buffer,
  filename = "photo.jpg",
  field = "file",
): Promise<ApiResponse> {
  const form = new FormData();
  form.append(field, new Blob([new Uint8Array(bytes)], { type: "image/jpeg" }), filename);
  const res = await fetch(`${app.url}/v1/upload-image`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}` },
    body: form,
  });
  return { status: res.status, headers: res.headers, body: await res.json() };
}

describe("POST /v1/upload-image", () => {
  it("sniffs the type from the bytes and serves the upload to its owner only", async () => {
    const me = await createAccountWithKey(app.ctx);
    const png = await solidPng(48, 32);
    // Named .jpg and sent as image/jpeg: the bytes say PNG, and PNG is what is stored.
    const res = await upload(me.key, png);
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      id: expect.stringMatching(/^img_[0-9a-z]{26}$/),
      contentType: "image/png",
      width: 48,
      height: 32,
      bytes: png.length,
      sourceUrl: null,
    });
    expect(res.body.url).toBe(`http://localhost:3000/v1/uploads/${res.body.id}`);
    const path = new URL(res.body.url).pathname;

    const mine = await fetch(app.url + path, { headers: { authorization: `Bearer ${me.key}` } });
    expect(mine.status).toBe(200);
    expect(mine.headers.get("content-type")).toBe("image/png");
    expect(Buffer.from(await mine.arrayBuffer())).toEqual(png);

    const stranger = await createAccountWithKey(app.ctx);
    const theirs = await fetch(app.url + path, {
      headers: { authorization: `Bearer ${stranger.key}` },
    });
    expect(theirs.status).toBe(404);
    // The same account's live key sees nothing of test mode.
    const live = await createAccountWithKey(app.ctx, "live");
    expect(
      (await fetch(app.url + path, { headers: { authorization: `Bearer ${live.key}` } })).status,
    ).toBe(404);
    // Unsigned and without a key: 401. A forged signature: 404.
    expect((await fetch(app.url + path)).status).toBe(401);
    expect(
      (await fetch(`${app.url}${path}?expires=9999999999&signature=${"a".repeat(43)}`)).status,
    ).toBe(404);
  });

  it("refuses what is not a PNG, JPEG or WebP, oversized files, bombs and empty forms", async () => {
    const me = await createAccountWithKey(app.ctx);
    const text = await upload(me.key, Buffer.from("#!/bin/sh\necho hi\n"), "evil.png");
    expect(text.status).toBe(400);
    expect(text.body.error.code).toBe("invalid_image");

    const empty = await upload(me.key, Buffer.alloc(0), "empty.png");
    expect(empty.status).toBe(400);
    expect(empty.body.error.code).toBe("invalid_image");

    const gif = Buffer.from("R0lGODlhAQABAAAAACw=", "base64");
    expect((await upload(me.key, gif, "a.gif")).body.error.code).toBe("invalid_image");

    const bomb = await upload(me.key, pngBomb(), "bomb.png");
    expect(bomb.status).toBe(400);
    expect(bomb.body.error).toMatchObject({ code: "invalid_image", reason: "pixels" });

    const big = Buffer.concat([await solidPng(8, 8), Buffer.alloc(10 * 1024 * 1024)]);
    const tooBig = await upload(me.key, big, "big.png");
    expect(tooBig.status).toBe(413);
    expect(tooBig.body.error.code).toBe("payload_too_large");

    const wrongField = await upload(me.key, await solidPng(8, 8), "a.png", "photo");
    expect(wrongField.body.error.code).toBe("invalid_request");

    const json = await app.call("uploadImage", { token: me.key, json: {} });
    expect(json.status).toBe(400);
    expect(json.body.error.code).toBe("invalid_request");

    const anonymous = await fetch(`${app.url}/v1/upload-image`, { method: "POST" });
    expect(anonymous.status).toBe(401);
  });
});

describe("referenceImageUrls", () => {
  it("takes the caller's own uploads and refuses anyone else's, charging nothing", async () => {
    const me = await createFundedCaller(app.ctx, 100n);
    const stranger = await createAccountWithKey(app.ctx);
    const mine = (await upload(me.key, await solidPng(16, 16))).body;
    const theirs = (await upload(stranger.key, await solidPng(16, 16))).body;

    const refused = await app.call("generate", {
      token: me.key,
      json: { prompt: "p", models: ["z-image-turbo"], referenceImageUrls: [mine.url, theirs.url] },
    });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toMatchObject({
      code: "invalid_reference_image",
      field: "referenceImageUrls",
    });
    expect((await getBalance(app.ctx, me.account.id, "test")).creditBalance).toBe(
      creditUnits(100n),
    );

    const ok = await app.call("generate", {
      token: me.key,
      json: { prompt: "p", models: ["z-image-turbo"], referenceImageUrls: [mine.url] },
    });
    expect(ok.status).toBe(202);
    const done = await waitForGeneration(app, me.key, ok.body.generationId);
    expect(done.status).toBe("completed");
  });

  it("fetches a remote URL once through the guard and hands the upstream our signed copy", async () => {
    const me = await createFundedCaller(app.ctx, 100n);
    const remote = `http://127.0.0.1:${fixturePort}/ref.png`;
    const hitsBefore = fixtureHits;
    sim.calls.length = 0;
    const res = await app.call("generate", {
      token: me.key,
      json: {
        prompt: "with a reference",
        models: ["qwen-image-2.0"],
        referenceImageUrls: [remote],
      },
    });
    expect(res.status).toBe(202);
    const done = await waitForGeneration(app, me.key, res.body.generationId);
    expect(done.status).toBe("completed");
    expect(fixtureHits - hitsBefore).toBe(1);

    const call = sim.calls.find((c) => c.api === "fal");
    const given = call?.input?.image_urls as string[];
    expect(given).toHaveLength(1);
    const copy = new URL(given[0] as string);
    expect(copy.href).not.toContain(`${fixturePort}`);
    expect(copy.pathname).toMatch(/^\/v1\/uploads\/img_[0-9a-z]{26}$/);
    // The upstream needs no key to read it: the URL is signed.
    const fetched = await fetch(app.url + copy.pathname + copy.search);
    expect(fetched.status).toBe(200);
    expect(Buffer.from(await fetched.arrayBuffer())).toEqual(remotePng);
    await expectMoneyInvariants(app.ctx);
  });

  it("refuses unsafe URLs with 400 unsafe_url before charging, and never connects", async () => {
    const me = await createFundedCaller(app.ctx, 100n);
    const hostile = [
      [`http://127.0.0.1:${canaryPort}/x.png`, /private or reserved/],
      [`http://[::ffff:127.0.0.1]:${canaryPort}/x.png`, /private or reserved/],
      ["http://169.254.169.254/latest/meta-data/", /private or reserved/],
      [`http://0x7f000001:${canaryPort}/`, /private or reserved/],
      [`http://127.0.0.1:${fixturePort}/page.html`, /not a PNG, JPEG or WebP/],
    ] as const;
    for (const [url, reason] of hostile) {
      const res = await app.call("generate", {
        token: me.key,
        json: { prompt: "p", models: ["z-image-turbo"], referenceImageUrls: [url] },
      });
      expect(res.status, url).toBe(400);
      expect(res.body.error.code, url).toBe("unsafe_url");
      expect(res.body.error.message, url).toMatch(reason);
    }
    const scheme = await app.call("generate", {
      token: me.key,
      json: { prompt: "p", models: ["z-image-turbo"], referenceImageUrls: ["file:///etc/passwd"] },
    });
    expect(scheme.status).toBe(400);
    const hook = await app.call("generate", {
      token: me.key,
      json: {
        prompt: "p",
        models: ["z-image-turbo"],
        webhookUrl: `http://localhost:${canaryPort}/hook`,
      },
    });
    expect(hook.status).toBe(400);
    expect(hook.body.error.code).toBe("unsafe_url");
    expect(canaryConnections).toBe(0);
    expect((await getBalance(app.ctx, me.account.id, "test")).creditBalance).toBe(
      creditUnits(100n),
    );
  });
});
