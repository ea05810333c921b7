import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { sql } from "drizzle-orm";
import type { Runner } from "graphile-worker";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expireOldOutputs } from "../../src/domains/generations/outputs.js";
import { localStorage } from "../../src/domains/storage/local.js";
import { startWorker } from "../../src/jobs/worker.js";
import {
  createFundedCaller,
  startTestApp,
  type TestApp,
  waitForGeneration,
} from "../helpers/app.js";
import { solidPng } from "../helpers/images.js";
import { type ObjectStore, startObjectStore } from "../helpers/object-store.js";

/**
 * Outputs and uploads on an S3-compatible store (s3rver, a real S3-protocol server): written
 * by the worker, downloaded through the API (proxy) or from the store itself (presigned), and
 * deleted by the retention sweep, after which the download answers 410 output_expired.
 */
let store: ObjectStore;
let proxy: TestApp;
let presigned: TestApp;
let worker: Runner;

const PREFIX = "polyforge";

beforeAll(async () => {
  store = await startObjectStore();
  proxy = await startTestApp({
    env: { ...store.env(PREFIX), OUTPUT_RETENTION_DAYS: "30" },
  });
  // A second API process of the same deployment that hands out presigned URLs.
  presigned = await startTestApp({
    database: proxy.database,
    env: {
      ...store.env(PREFIX),
      STORAGE_DOWNLOADS: "presigned",
      STORAGE_PRESIGNED_TTL_SECONDS: "60",
    },
  });
  worker = await startWorker(proxy.ctx);
});

afterAll(async () => {
  await worker?.stop();
  await presigned?.close();
  await proxy?.close();
  await store?.close();
});

/** A completed z-image-turbo generation of a fresh funded caller, and its output's key. */
async function generateImage(app: TestApp) {
  const me = await createFundedCaller(app.ctx, 100n);
  const submitted = await app.call("generate", {
    token: me.key,
    json: { prompt: "a lighthouse", models: ["z-image-turbo"] },
  });
  expect(submitted.status).toBe(202);
  const id: string = submitted.body.generationId;
  const done = await waitForGeneration(app, me.key, id);
  expect(done.status).toBe("completed");
  const { rows } = await app.ctx.db.execute<{ output_key: string }>(
    sql`select output_key from generation_results where generation_id = ${id}`,
  );
  const key = rows[0]?.output_key as string;
  const download = `/v1/download?id=${id}&model=z-image-turbo`;
  return { me, id, key, download };
}

const get = (app: TestApp, pathname: string, key: string) =>
  fetch(app.url + pathname, { headers: { authorization: `Bearer ${key}` }, redirect: "manual" });

async function uploadImage(app: TestApp, key: string, bytes: Buffer) {
  const form = new FormData();
  form.append("file", new Blob([new Uint8Array(bytes)], { type: "image/png" }), "ref.png");
  const res = await fetch(`${app.url}/v1/upload-image`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}` },
    body: form,
  });
  expect(res.status).toBe(201);
  return (await res.json()) as { id: string; url: string };
}

describe("S3 storage", () => {
  it("stores a generation's output in the bucket and serves its bytes through the API", async () => {
    const { me, key, download } = await generateImage(proxy);
    const res = await get(proxy, download, me.key);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("image/png");
    const bytes = Buffer.from(await res.arrayBuffer());
    expect(bytes.subarray(1, 4).toString()).toBe("PNG");
    // Under the configured prefix, byte for byte.
    expect(await store.object(`${PREFIX}/${key}`)).toEqual(bytes);
    // Nothing went to local disk.
    expect(await readdir(proxy.ctx.config.storageDir)).toEqual([]);
  });

  it("stores a reference upload in the bucket and serves it back", async () => {
    const me = await createFundedCaller(proxy.ctx, 10n);
    const png = await solidPng(24, 16, "#3a6");
    const upload = await uploadImage(proxy, me.key, png);
    const res = await get(proxy, new URL(upload.url).pathname, me.key);
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer())).toEqual(png);
    expect(await store.object(`${PREFIX}/uploads/${upload.id}.png`)).toEqual(png);
  });

  it("presigned: the download answers 302 to the store, which serves the bytes; the URL is never logged", async () => {
    const { me, id, key, download } = await generateImage(presigned);
    const res = await get(presigned, download, me.key);
    expect(res.status).toBe(302);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const location = new URL(res.headers.get("location") as string);
    expect(location.origin).toBe(store.endpoint);
    expect(location.pathname).toBe(`/${store.bucket}/${PREFIX}/${key}`);
    expect(location.searchParams.get("X-Amz-Expires")).toBe("60");
    const signature = location.searchParams.get("X-Amz-Signature") as string;
    expect(signature).toMatch(/^[0-9a-f]{64}$/);

    // Straight from the store, no API key: the stored bytes with the type they were checked to be.
    const direct = await fetch(location);
    expect(direct.status).toBe(200);
    expect(direct.headers.get("content-type")).toBe("image/png");
    expect(Buffer.from(await direct.arrayBuffer())).toEqual(await store.object(`${PREFIX}/${key}`));

    // The signed download URL the status read hands out redirects the same way.
    const status = await presigned.request("GET", `/v1/generate/status?ids=${id}`, {
      token: me.key,
    });
    const signedUrl = new URL(status.body.generations[id].results[0].imageUrl);
    const viaSigned = await fetch(presigned.url + signedUrl.pathname + signedUrl.search, {
      redirect: "manual",
    });
    expect(viaSigned.status).toBe(302);

    // An upload too.
    const png = await solidPng(8, 8);
    const upload = await uploadImage(presigned, me.key, png);
    const uploadRes = await get(presigned, new URL(upload.url).pathname, me.key);
    expect(uploadRes.status).toBe(302);
    expect(
      Buffer.from(await (await fetch(uploadRes.headers.get("location") as string)).arrayBuffer()),
    ).toEqual(png);

    // Give the asynchronous logger a moment, then look for the signature in every line.
    await new Promise((r) => setTimeout(r, 100));
    const logs = presigned.logs.join("\n");
    expect(logs).toContain(`/v1/download?id=`);
    expect(logs).not.toContain(signature);
    expect(logs).not.toContain("X-Amz-Credential=S3RVER");
  });

  it("retention: an output older than OUTPUT_RETENTION_DAYS is deleted and answers 410 output_expired; a newer one stays", async () => {
    const old = await generateImage(proxy);
    const fresh = await generateImage(proxy);
    await proxy.ctx.db.execute(sql`
      update generation_results set finished_at = now() - interval '31 days'
      where generation_id = ${old.id}`);

    expect(await expireOldOutputs(proxy.ctx)).toBeGreaterThanOrEqual(1);
    expect(await store.object(`${PREFIX}/${old.key}`)).toBeUndefined();
    expect(await store.object(`${PREFIX}/${fresh.key}`)).toBeDefined();

    for (const app of [proxy, presigned]) {
      const gone = await get(app, old.download, old.me.key);
      expect(gone.status).toBe(410);
      const body = (await gone.json()) as { error: unknown };
      expect(body.error).toMatchObject({
        code: "output_expired",
        // The process that knows the period names it.
        message: expect.stringContaining(app === proxy ? "of 30 days" : "retention period"),
      });
    }
    expect((await get(proxy, fresh.download, fresh.me.key)).status).toBe(200);
    // Another sweep finds nothing more to do for them.
    expect(await expireOldOutputs(proxy.ctx)).toBe(0);
  });

  it("retention unset keeps every output, however old", async () => {
    const ancient = await generateImage(proxy);
    await proxy.ctx.db.execute(sql`
      update generation_results set finished_at = now() - interval '3000 days'
      where generation_id = ${ancient.id}`);
    // The presigned process has no OUTPUT_RETENTION_DAYS.
    expect(await expireOldOutputs(presigned.ctx)).toBe(0);
    expect(await store.object(`${PREFIX}/${ancient.key}`)).toBeDefined();
    expect((await get(proxy, ancient.download, ancient.me.key)).status).toBe(200);
  });
});

describe("local storage", () => {
  it("deletes a key, and deleting it again is no error", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "polyforge-local-"));
    try {
      const storage = localStorage(dir);
      await storage.put("gen_x/0-1.png", Buffer.from("bytes"));
      expect(await storage.get("gen_x/0-1.png")).toEqual(Buffer.from("bytes"));
      await storage.delete("gen_x/0-1.png");
      expect(await storage.get("gen_x/0-1.png")).toBeUndefined();
      await expect(storage.delete("gen_x/0-1.png")).resolves.toBeUndefined();
      await expect(storage.delete("../escape")).rejects.toThrow(/unsafe storage key/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
