import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { sql } from "drizzle-orm";
import type { Runner } from "graphile-worker";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { open } from "../../src/cli/open.js";
import { loadConfig } from "../../src/config.js";
import type { GenerationView } from "../../src/domains/generations/history.js";
import { expireOldOutputs } from "../../src/domains/generations/outputs.js";
import { getGenerationForWebhook } from "../../src/domains/generations/settlement.js";
import { generationJson } from "../../src/domains/generations/wire.js";
import { localStorage } from "../../src/domains/storage/local.js";
import type { s3Storage } from "../../src/domains/storage/s3.js";
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

  it("retention: an output older than OUTPUT_RETENTION_DAYS is deleted and answers 410 output_expired, and reads show no URL; a newer one stays", async () => {
    const old = await generateImage(proxy);
    const fresh = await generateImage(proxy);
    await proxy.ctx.db.execute(sql`
      update generation_results set finished_at = now() - interval '31 days'
      where generation_id = ${old.id}`);

    expect(await expireOldOutputs(proxy.ctx)).toBeGreaterThanOrEqual(1);
    expect(await store.object(`${PREFIX}/${old.key}`)).toBeUndefined();
    expect(await store.object(`${PREFIX}/${fresh.key}`)).toBeDefined();
    const marked = await proxy.ctx.db.execute<{ output_key: string | null; expired: boolean }>(sql`
      select output_key, output_expired_at is not null as expired from generation_results
      where generation_id in (${old.id}, ${fresh.id}) order by generation_id = ${old.id}`);
    expect(marked.rows).toEqual([
      { output_key: fresh.key, expired: false },
      { output_key: null, expired: true },
    ]);

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

    // Status and history say it expired and hand out no URL; still completed and charged.
    const status = await proxy.call("getGenerationStatus", {
      token: old.me.key,
      query: { ids: old.id },
    });
    const [result] = status.body.generations[old.id]?.results ?? [];
    expect(result).toMatchObject({ status: "completed", imageUrl: null });
    expect(result?.charged).toBe(result?.cost);
    expect(Date.parse(result?.expiredAt as string)).not.toBeNaN();
    const history = await proxy.call("listGenerations", { token: old.me.key });
    expect(history.body.data[0]?.results[0]).toMatchObject({
      imageUrl: null,
      expiredAt: result?.expiredAt,
    });
    const kept = await proxy.call("getGenerationStatus", {
      token: fresh.me.key,
      query: { ids: fresh.id },
    });
    expect(kept.body.generations[fresh.id]?.results[0]).toMatchObject({
      imageUrl: expect.stringContaining("/v1/download?"),
      expiredAt: null,
    });
    // A webhook delivered (or retried) after the sweep reads the same: no URL, and expiredAt.
    const webhook = await getGenerationForWebhook(proxy.ctx, {
      generationId: old.id,
      accountId: old.me.account.id,
    });
    expect(generationJson(webhook as GenerationView).results[0]).toMatchObject({
      imageUrl: null,
      expiredAt: new Date(result?.expiredAt as string),
    });
    // Another sweep finds nothing more to do for them.
    expect(await expireOldOutputs(proxy.ctx)).toBe(0);
  });

  it("retention: the key is cleared before the object is deleted, and a failed delete is retried by the next sweep", async () => {
    const old = await generateImage(proxy);
    await proxy.ctx.db.execute(sql`
      update generation_results set finished_at = now() - interval '31 days'
      where generation_id = ${old.id}`);
    const deleted: string[] = [];
    const failing = {
      ...proxy.ctx,
      storage: {
        ...proxy.ctx.storage,
        delete: async (key: string) => {
          // By the time an object is deleted, no result points at it any more.
          const { rows } = await proxy.ctx.db.execute<{ n: number }>(
            sql`select count(*)::int as n from generation_results where output_key = ${key}`,
          );
          deleted.push(`${key}:${rows[0]?.n}`);
          throw new Error("store unavailable");
        },
      },
    };
    expect(await expireOldOutputs(failing)).toBe(1);
    expect(deleted).toEqual([`${old.key}:0`]);
    // Expired though its object is still there: the download is 410, not a stale 200.
    expect(await store.object(`${PREFIX}/${old.key}`)).toBeDefined();
    expect((await get(proxy, old.download, old.me.key)).status).toBe(410);
    const pending = await proxy.ctx.db.execute<{
      key: string;
      attempts: number;
      last_error: string;
    }>(sql`select key, attempts, last_error from storage_deletions`);
    expect(pending.rows).toEqual([
      { key: old.key, attempts: 1, last_error: "Error: store unavailable" },
    ]);
    expect(proxy.logs.join("\n")).toContain("the next sweep tries again");

    // The next sweep expires nothing new but deletes the object it still owes.
    expect(await expireOldOutputs(proxy.ctx)).toBe(0);
    expect(await store.object(`${PREFIX}/${old.key}`)).toBeUndefined();
    expect((await proxy.ctx.db.execute(sql`select key from storage_deletions`)).rows).toEqual([]);
  });

  it("retention: the sweep's scan has an index (finished_at, where an output is still kept)", async () => {
    const plan = await proxy.ctx.db.transaction(async (tx) => {
      // The test tables are tiny: forbid the sequential scan the planner would rather do.
      await tx.execute(sql`set local enable_seqscan = off`);
      const { rows } = await tx.execute<{ "QUERY PLAN": string }>(sql`
        explain select id from generation_results
        where output_key is not null and status = 'completed' and finished_at < now()
        order by finished_at limit 500`);
      return rows.map((r) => r["QUERY PLAN"]).join("\n");
    });
    expect(plan).toContain("generation_results_output_finished_idx");
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

describe("S3 client", () => {
  it("is destroyed when the process closes, once however often it is closed", async () => {
    const opened = await open({
      adoptEmbedded: false,
      logToStderr: true,
      config: loadConfig({
        NODE_ENV: "test",
        DATABASE_URL: proxy.database.url,
        LOG_LEVEL: "silent",
        ...store.env(PREFIX),
      }),
    });
    const { client } = opened.ctx.storage as ReturnType<typeof s3Storage>;
    const destroy = vi.spyOn(client, "destroy");
    await opened.close();
    expect(destroy).toHaveBeenCalledTimes(1);
    opened.ctx.storage.close?.();
    expect(destroy).toHaveBeenCalledTimes(1);
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
