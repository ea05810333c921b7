import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createAppContext } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import type { AppContext } from "../../src/context.js";
import { createDatabaseClient, type DatabaseClient } from "../../src/db/client.js";
import { startHttpServer } from "../../src/http/server.js";
import { createLogger } from "../../src/logger.js";
import { createFundedCaller } from "../helpers/app.js";
import { createTestDatabase, type TestDatabase } from "../helpers/database.js";
import { expectMoneyInvariants } from "../helpers/ledger.js";
import { startTcpProxy, type TcpProxy } from "../helpers/tcp-proxy.js";

/**
 * The API's database goes away (a proxy in front of the real PostgreSQL drops every connection
 * and refuses new ones, as a crashed or restarting server does): requests answer 503
 * service_unavailable with Retry-After, never 500 internal_error, and 200 again once it is back.
 */
let database: TestDatabase;
let proxy: TcpProxy;
let client: DatabaseClient;
let ctx: AppContext;
let server: Awaited<ReturnType<typeof startHttpServer>>;
let storageDir: string;

beforeAll(async () => {
  database = await createTestDatabase();
  const target = new URL(database.url);
  proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port) });
  const viaProxy = new URL(database.url);
  viaProxy.port = String(proxy.port);
  storageDir = await mkdtemp(path.join(tmpdir(), "polyforge-outputs-"));
  const config = loadConfig({
    NODE_ENV: "test",
    DATABASE_URL: viaProxy.toString(),
    PORT: "0",
    LOG_LEVEL: "fatal",
    STORAGE_DIR: storageDir,
    RATE_LIMITS: "off",
  });
  const logger = createLogger(config);
  client = createDatabaseClient(viaProxy.toString(), { poolMax: 4, logger });
  ctx = createAppContext(config, logger, client);
  server = await startHttpServer(ctx);
});
afterAll(async () => {
  await server.close();
  await ctx.generationEvents.close();
  await client.close();
  await proxy.close();
  await database.drop();
  await rm(storageDir, { recursive: true, force: true });
});

const balance = (key: string) =>
  fetch(`${server.url}/v1/balance`, { headers: { authorization: `Bearer ${key}` } });

it("answers 503 service_unavailable with Retry-After while the database is down, and 200 once it is back", async () => {
  const caller = await createFundedCaller(ctx, 10n);
  expect((await balance(caller.key)).status).toBe(200);

  await proxy.down();
  // Both ways an outage shows: connections the pool held are cut, new ones are refused.
  for (let i = 0; i < 3; i++) {
    const res = await balance(caller.key);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(res.status).toBe(503);
    expect(body.error.code).toBe("service_unavailable");
    expect(body.error.message).toMatch(/database/);
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
  }
  // A generation fails the same way: no hold can be placed without the database.
  const generate = await fetch(`${server.url}/v1/generate`, {
    method: "POST",
    headers: { authorization: `Bearer ${caller.key}`, "content-type": "application/json" },
    body: JSON.stringify({ prompt: "a lighthouse", models: ["gpt-image-2"] }),
  });
  expect(generate.status).toBe(503);
  expect(((await generate.json()) as { error: { code: string } }).error.code).toBe(
    "service_unavailable",
  );

  await proxy.up();
  const deadline = Date.now() + 30_000;
  let res = await balance(caller.key);
  while (res.status !== 200 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    res = await balance(caller.key);
  }
  expect(res.status).toBe(200);
  expect(((await res.json()) as { creditBalance: number }).creditBalance).toBe(10);
  await expectMoneyInvariants(ctx);
});
