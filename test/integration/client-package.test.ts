import { readFile } from "node:fs/promises";
import { pathToFileURL } from "node:url";
import type { Runner } from "graphile-worker";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  generatedSources,
  operationsFile,
  schemaFile,
} from "../../packages/client/scripts/types.js";
import type * as ClientModule from "../../packages/client/src/index.js";
import type { LocalChain } from "../../src/chain/local-chain.js";
import { startWorker } from "../../src/jobs/worker.js";
import { createFundedCaller, startTestApp, type TestApp } from "../helpers/app.js";
import { fundedPayer, paymentEnv, startTestChain, usdcBalance } from "../helpers/chain.js";
import { type PackedClient, packClient } from "../helpers/client-package.js";

let packed: PackedClient;
let pkg: typeof ClientModule;
let chain: LocalChain;
let app: TestApp;
let worker: Runner;

beforeAll(async () => {
  packed = await packClient();
  pkg = await import(pathToFileURL(packed.entry).href);

  chain = await startTestChain("test");
  app = await startTestApp({ env: paymentEnv([chain]) });
  worker = await startWorker(app.ctx);
}, 120_000);

afterAll(async () => {
  await worker?.stop();
  await app?.close();
  await chain?.stop();
  await packed?.remove();
});

describe("@polyforge/client", () => {
  it("has types generated from the current openapi.json", async () => {
    const fresh = await generatedSources();
    expect(await readFile(schemaFile, "utf8")).toBe(fresh.schema);
    expect(await readFile(operationsFile, "utf8")).toBe(fresh.operations);
  });

  it("generates with an API key and waits for the result", async () => {
    const { key: apiKey } = await createFundedCaller(app.ctx, 100n);
    const urls: string[] = [];
    const client = pkg.createClient({
      apiKey,
      baseUrl: app.url,
      fetch: (input, init) => {
        const request = new Request(input, init);
        urls.push(new URL(request.url).pathname);
        return fetch(request);
      },
    });
    const models = await client.models();
    expect(models.data.some((m) => m.id === "gpt-image-2")).toBe(true);

    const result = await client.generate(
      { prompt: "a lighthouse at dusk", models: ["gpt-image-2"] },
      { timeoutMs: 20_000 },
    );
    expect(result.status).toBe("completed");
    const [first] = result.results;
    expect(first?.imageUrl).toContain("/v1/download?");
    expect(first?.routing?.upstream).toBeTruthy();
    expect(result.cost.charged).toBeGreaterThan(0);
    // It waited on the events stream, not by polling.
    expect(urls.filter((u) => u.endsWith("/events"))).toHaveLength(1);
    expect(urls).not.toContain("/v1/generate/status");
    const balance = await client.balance();
    expect(balance.creditBalance).toBe(100 - result.cost.charged);
  });

  it("falls back to polling when the events stream cannot be had", async () => {
    const { key: apiKey } = await createFundedCaller(app.ctx, 100n);
    const urls: string[] = [];
    const client = pkg.createClient({
      apiKey,
      baseUrl: app.url,
      retries: 0,
      fetch: (input, init) => {
        const request = new Request(input, init);
        urls.push(new URL(request.url).pathname);
        if (request.url.endsWith("/events")) return Promise.reject(new TypeError("fetch failed"));
        return fetch(request);
      },
    });
    const result = await client.generate(
      { prompt: "a lighthouse at dusk", models: ["gpt-image-2"] },
      { timeoutMs: 20_000 },
    );
    expect(result.status).toBe("completed");
    expect(result.results[0]?.imageUrl).toContain("/v1/download?");
    expect(urls).toContain("/v1/generate/status");
  });

  it("throws a PolyforgeError with the API's code", async () => {
    const { key: apiKey } = await createFundedCaller(app.ctx, 10n);
    const client = pkg.createClient({ apiKey, baseUrl: app.url });
    const err = await client
      .generate({ prompt: "x", models: ["gpt-image-9"] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(pkg.PolyforgeError);
    const error = err as ClientModule.PolyforgeError;
    expect(error.status).toBe(400);
    expect(error.code).toBe("invalid_model");
    expect(error.requestId).toBeTruthy();
    expect(error.details.field).toBeDefined();
  });

  it("chats: the answer with its cost and routing, a bad model as a PolyforgeError", async () => {
    const { key: apiKey } = await createFundedCaller(app.ctx, 100n);
    const client = pkg.createClient({ apiKey, baseUrl: app.url });
    const messages = [{ role: "user" as const, content: "Name three lighthouses." }];
    const reply = await client.chat({ model: "gpt-5.4-mini", messages, max_tokens: 200 });
    expect(reply.object).toBe("chat.completion");
    expect(reply.choices[0]?.message.content).toBeTruthy();
    expect(reply.choices[0]?.message.refusal).toBeNull();
    expect(reply.cost.charged).toBeGreaterThan(0);
    expect(reply.cost.charged).toBe(reply.usage.cost);
    expect(reply.cost.quoted).toBeGreaterThanOrEqual(reply.cost.charged);
    expect(reply.routing.upstream).toMatch(/^sandbox-/);
    const balance = await client.balance();
    expect(balance.creditBalance).toBeCloseTo(100 - reply.cost.charged, 4);

    const err = await client.chat({ model: "gpt-9", messages }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(pkg.PolyforgeError);
    const error = err as ClientModule.PolyforgeError;
    expect([error.status, error.code]).toEqual([400, "invalid_model"]);
    expect(error.requestId).toBeTruthy();
    expect((await client.balance()).creditBalance).toBe(balance.creditBalance);
  });

  it("sends an Idempotency-Key on creates, and the same key charges once", async () => {
    const { key: apiKey } = await createFundedCaller(app.ctx, 100n);
    const sent: (string | null)[] = [];
    const client = pkg.createClient({
      apiKey,
      baseUrl: app.url,
      fetch: async (input, init) => {
        const request = new Request(input, init);
        if (request.method === "POST") sent.push(request.headers.get("idempotency-key"));
        return fetch(request);
      },
    });
    const body = { prompt: "a quiet harbour", models: ["gpt-image-2"] };
    const first = await client.api.POST("/v1/generate", { body });
    expect(first.response.status).toBe(202);
    expect(sent[0]).toMatch(/^[0-9a-f-]{36}$/);

    const key = "order-42";
    const a = await client.api.POST("/v1/generate", { body, headers: { "idempotency-key": key } });
    const b = await client.api.POST("/v1/generate", { body, headers: { "idempotency-key": key } });
    expect(sent.slice(1)).toEqual([key, key]);
    expect(b.response.headers.get("idempotent-replayed")).toBe("true");
    const idOf = (data: unknown) => (data as { generationId: string }).generationId;
    expect(idOf(b.data)).toBe(idOf(a.data));
    // The client's own retry (here after a 503 before the API saw the call) keeps the key.
    const retried: (string | null)[] = [];
    const flaky = pkg.createClient({
      apiKey,
      baseUrl: app.url,
      fetch: async (input, init) => {
        const request = new Request(input, init);
        if (request.method !== "POST") return fetch(request);
        retried.push(request.headers.get("idempotency-key"));
        if (retried.length === 1) return new Response(null, { status: 503 });
        return fetch(request);
      },
    });
    const c = await flaky.api.POST("/v1/generate", { body });
    expect(c.response.status).toBe(202);
    expect(retried).toHaveLength(2);
    expect(retried[1]).toBe(retried[0]);

    // Three generations on the account, not four: the replay made none and held nothing.
    const history = await client.api.GET("/v1/history", {});
    expect(history.data?.data.map((g) => g.generationId).sort()).toEqual(
      [idOf(first.data), idOf(a.data), idOf(c.data)].sort(),
    );
  });

  it("pays per call from a wallet with x402, within its caps", async () => {
    const payer = await fundedPayer(chain, 5_000_000n);
    const before = await usdcBalance(chain, payer.address);
    const client = pkg.createClient({ wallet: payer, baseUrl: app.url, maxPerCall: 1_000_000n });
    const result = await client.generate(
      { prompt: "a lighthouse at dusk", models: ["gpt-image-2"] },
      { timeoutMs: 20_000 },
    );
    expect(result.status).toBe("completed");
    expect(result.accessToken).toMatch(/^gat_/);
    expect(result.payment?.transaction).toMatch(/^0x/);
    const paid = before - (await usdcBalance(chain, payer.address));
    expect(paid).toBe(BigInt(result.cost.quoted * 10_000));

    // Over the caps: refused before signing, nothing sent with a payment, nothing paid.
    const signatures: string[] = [];
    const watching: typeof fetch = async (input, init) => {
      const request = new Request(input, init);
      const signature = request.headers.get("payment-signature");
      if (signature) signatures.push(signature);
      return fetch(request);
    };
    for (const [caps, code] of [
      [{ maxPerCall: paid - 1n }, "spend_cap_per_call"],
      [{ maxPerDay: paid - 1n }, "spend_cap_per_day"],
    ] as const) {
      const capped = pkg.createClient({
        wallet: payer,
        baseUrl: app.url,
        fetch: watching,
        ...caps,
      });
      const err = await capped
        .generate({ prompt: "a lighthouse at dusk", models: ["gpt-image-2"] })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(pkg.PolyforgeError);
      expect((err as ClientModule.PolyforgeError).code).toBe(code);
      expect((err as ClientModule.PolyforgeError).details.amount).toBe(paid.toString());
    }
    expect(signatures).toEqual([]);
    expect(before - (await usdcBalance(chain, payer.address))).toBe(paid);
  });
});
