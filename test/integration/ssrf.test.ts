import type { Server } from "node:http";
import { type AddressInfo, createServer, type Server as NetServer } from "node:net";
import express from "express";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AppError } from "../../src/errors.js";
import { isBlockedAddress, safeFetch } from "../../src/lib/safe-fetch.js";
import { fetchUserImage } from "../../src/lib/safe-image.js";
import { pngBomb } from "../helpers/images.js";

/**
 * The SSRF battery. A canary listener on 127.0.0.1 must see zero connections whatever the
 * hostile URL. A fixture server (the only host the guard is told to allow, as a stand-in for
 * a public site) serves good images, redirects to loopback, chains, huge, slow and bomb files.
 */
let canary: NetServer;
let canaryPort: number;
let canaryConnections = 0;
let fixture: Server;
let fixturePort: number;
let okPng: Buffer;

beforeAll(async () => {
  canary = createServer((socket) => {
    canaryConnections++;
    socket.destroy();
  });
  await new Promise<void>((r) => canary.listen(0, "127.0.0.1", r));
  canaryPort = (canary.address() as AddressInfo).port;

  okPng = await sharp({ create: { width: 32, height: 16, channels: 3, background: "#36c" } })
    .png()
    .toBuffer();
  const app = express();
  app.get("/ok.png", (_req, res) => void res.type("png").send(okPng));
  app.get(
    "/bad-redirect",
    (_req, res) => void res.status(302).set("location", "http://[bad").end(),
  );
  app.get("/empty.png", (_req, res) => void res.type("png").send(Buffer.alloc(0)));
  app.get("/reset", (req) => {
    req.socket.write(
      "HTTP/1.1 200 OK\r\ncontent-type: image/png\r\ncontent-length: 1000\r\n\r\nabc",
    );
    setTimeout(() => req.socket.destroy(), 20);
  });
  app.get("/redirect-loopback", (_req, res) =>
    res.redirect(302, `http://127.0.0.1:${canaryPort}/`),
  );
  app.get("/redirect-metadata", (_req, res) =>
    res.redirect(301, "http://169.254.169.254/latest/meta-data/"),
  );
  app.get("/chain/:n", (req, res) => {
    const n = Number(req.params.n);
    if (n === 0) res.type("png").send(okPng);
    else res.redirect(302, `/chain/${n - 1}`);
  });
  app.get("/big", (_req, res) => void res.type("png").send(Buffer.alloc(20 * 1024 * 1024)));
  app.get("/slow", (_req, res) => {
    res.type("png").write(okPng.subarray(0, 10));
    // never ends
  });
  app.get("/bomb.png", (_req, res) => void res.type("png").send(pngBomb()));
  app.get("/page.html", (_req, res) => void res.type("html").send("<html>not an image</html>"));
  fixture = await new Promise((resolve) => {
    const s = app.listen(0, "127.0.0.1", () => resolve(s));
  });
  fixturePort = (fixture.address() as AddressInfo).port;
});

afterAll(async () => {
  fixture.closeAllConnections();
  await new Promise((r) => fixture.close(r));
  await new Promise((r) => canary.close(r));
});

/** DNS for the test: names that point at loopback, and a "public" name for the fixture. */
const resolve = async (host: string) => {
  const table: Record<string, Array<{ address: string; family: number }>> = {
    "evil.example": [{ address: "127.0.0.1", family: 4 }],
    "rebind.example": [
      { address: "93.184.216.34", family: 4 },
      { address: "127.0.0.1", family: 4 },
    ],
    "metadata.example": [{ address: "169.254.169.254", family: 4 }],
    "public.example": [{ address: "127.0.0.1", family: 4 }],
    localhost: [
      { address: "127.0.0.1", family: 4 },
      { address: "::1", family: 6 },
    ],
  };
  const found = table[host];
  if (!found) throw new Error("ENOTFOUND");
  return found;
};
const guard = () => ({ allowHosts: [`public.example:${fixturePort}`], resolve, timeoutMs: 800 });

describe("the SSRF guard", () => {
  it("refuses every hostile URL, and the canary on 127.0.0.1 sees no connection", async () => {
    const c = () => canaryPort;
    const pub = (path: string) => `http://public.example:${fixturePort}${path}`;
    const hostile: Array<[string, RegExp]> = [
      [`http://127.0.0.1:${c()}/`, /private or reserved/],
      [`http://localhost:${c()}/`, /private or reserved/],
      [`http://2130706433:${c()}/`, /private or reserved/],
      [`http://0177.0.0.1:${c()}/`, /private or reserved/],
      [`http://0x7f.0.0.1:${c()}/`, /private or reserved/],
      [`http://127.1:${c()}/`, /private or reserved/],
      [`http://0:${c()}/`, /private or reserved/],
      [`http://0.0.0.0:${c()}/`, /private or reserved/],
      [`http://[::]:${c()}/`, /private or reserved/],
      [`http://[::1]:${c()}/`, /private or reserved/],
      [`http://[::ffff:127.0.0.1]:${c()}/`, /private or reserved/],
      [`http://[0:0:0:0:0:ffff:7f00:1]:${c()}/`, /private or reserved/],
      [`http://[::127.0.0.1]:${c()}/`, /private or reserved/],
      [`http://[64:ff9b::7f00:1]:${c()}/`, /private or reserved/],
      [`http://[2002:7f00:1::]:${c()}/`, /private or reserved/],
      ["http://169.254.169.254/latest/meta-data/", /private or reserved/],
      ["http://[fd00:ec2::254]/latest/meta-data/", /private or reserved/],
      ["http://100.100.100.200/latest/meta-data/", /private or reserved/],
      ["http://10.0.0.1/", /private or reserved/],
      ["http://172.16.0.1/", /private or reserved/],
      ["http://192.168.1.1/", /private or reserved/],
      ["http://[fe80::1]/", /private or reserved/],
      ["http://224.0.0.1/", /private or reserved/],
      [`http://evil.example:${c()}/`, /resolves to 127\.0\.0\.1/],
      [`http://rebind.example:${c()}/`, /resolves to 127\.0\.0\.1/],
      ["http://metadata.example/", /resolves to 169\.254\.169\.254/],
      ["file:///etc/passwd", /file: scheme/],
      [`gopher://127.0.0.1:${c()}/_`, /gopher: scheme/],
      [`ftp://127.0.0.1:${c()}/`, /ftp: scheme/],
      [`http://user:pass@public.example:${fixturePort}/ok.png`, /credentials/],
      [pub("/redirect-loopback"), /private or reserved/],
      [pub("/redirect-metadata"), /private or reserved/],
      [pub("/chain/4"), /more than 3 redirects/],
      [pub("/big"), /larger than/],
      [pub("/slow"), /no answer within/],
      [pub("/bomb.png"), /pixels/],
      [pub("/page.html"), /not a PNG, JPEG or WebP/],
      [pub("/empty.png"), /not a PNG, JPEG or WebP/],
      [pub("/bad-redirect"), /invalid URL/],
      [pub("/reset"), /broke off/],
      ["http://nowhere.invalid/", /does not resolve/],
      ["not a url", /not a valid URL/],
    ];
    expect(hostile.length).toBeGreaterThanOrEqual(25);
    for (const [url, reason] of hostile) {
      const err = await fetchUserImage(url, guard()).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, url).toBeInstanceOf(AppError);
      expect((err as AppError).code, url).toBe("unsafe_url");
      expect((err as AppError).status).toBe(400);
      expect((err as AppError).message, url).toMatch(reason);
    }
    await new Promise((r) => setTimeout(r, 100));
    expect(canaryConnections).toBe(0);
  });

  it("fetches a good image from an allowed host, through up to 3 redirects", async () => {
    const image = await fetchUserImage(`http://public.example:${fixturePort}/chain/3`, guard());
    expect(image).toMatchObject({ contentType: "image/png", width: 32, height: 16 });
    expect(image.bytes.equals(okPng)).toBe(true);
  });

  it("does not follow redirects when asked not to (webhooks)", async () => {
    const res = await safeFetch(`http://public.example:${fixturePort}/redirect-loopback`, {
      ...guard(),
      maxBytes: 1024,
      followRedirects: false,
    });
    expect(res.status).toBe(302);
    expect(canaryConnections).toBe(0);
  });

  it("classifies addresses", () => {
    for (const a of [
      "8.8.8.8",
      "93.184.216.34",
      "2606:4700:4700::1111",
      "2a00:1450:4001:80b::200e",
    ]) {
      expect(isBlockedAddress(a), a).toBe(false);
    }
    for (const a of [
      "127.0.0.1",
      "::1",
      "::ffff:10.0.0.1",
      "::ffff:0:7f00:1",
      "::ffff:0:a9fe:a9fe",
      "64:ff9b::a9fe:a9fe",
      "fc00::1",
      "100.64.1.1",
      "198.18.0.1",
      "not-an-ip",
    ]) {
      expect(isBlockedAddress(a), a).toBe(true);
    }
  });
});
