import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { DestinationStream } from "pino";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { createAppContext } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import type { AppContext } from "../../src/context.js";
import { createDatabaseClient } from "../../src/db/client.js";
import { findOrCreateWalletAccount } from "../../src/domains/accounts/service.js";
import { createApiKey } from "../../src/domains/keys/service.js";
import { grantCredits } from "../../src/domains/ledger/service.js";
import { startHttpServer } from "../../src/http/server.js";
import { creditUnits } from "../../src/lib/credits.js";
import { newId } from "../../src/lib/ids.js";
import type { Network } from "../../src/lib/network.js";
import { createLogger } from "../../src/logger.js";
import { contractOf, type KeyedBody, type OperationId, type SuccessBody } from "./contracts.js";
import { createTestDatabase, type TestDatabase } from "./database.js";

/** A clock the test moves by hand, starting at the real time. */
export class TestClock {
  private offsetMs = 0;
  private frozenAtMs: number | undefined;
  readonly now = () => new Date(this.frozenAtMs ?? Date.now() + this.offsetMs);
  advance(ms: number) {
    if (this.frozenAtMs === undefined) this.offsetMs += ms;
    else this.frozenAtMs += ms;
  }
  /** Stops the clock at `at`; `advance` still moves it. */
  freeze(at: Date) {
    this.frozenAtMs = at.getTime();
  }
}

export interface ApiResponse {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: tests read response bodies field by field.
  body: any;
}

/** An answer whose body is typed from the route's contract (see contracts.ts). */
export interface TypedResponse<Body> {
  status: number;
  headers: Headers;
  body: Body;
}

export interface RequestOptions {
  token?: string;
  json?: unknown;
  body?: string;
  headers?: Record<string, string>;
}

export interface CallOptions extends RequestOptions {
  /** The path's parameters, put in as given (tests send odd ids on purpose). */
  params?: Record<string, string>;
  /** Query fields, or a query string as given. */
  query?: string | Record<string, string | number | boolean | null | undefined>;
}

export interface TestApp {
  url: string;
  ctx: AppContext;
  database: TestDatabase;
  clock: TestClock;
  /** Every log line the app wrote, raw. */
  logs: string[];
  request(method: string, path: string, options?: RequestOptions): Promise<ApiResponse>;
  /**
   * Calls the route of `operationId` (its method and path from apiContracts), the body typed
   * from its contract: with a token, as an API-key caller is answered.
   */
  call<Op extends OperationId>(
    operationId: Op,
    options: CallOptions & { token: string },
  ): Promise<TypedResponse<KeyedBody<Op>>>;
  call<Op extends OperationId>(
    operationId: Op,
    options?: CallOptions,
  ): Promise<TypedResponse<SuccessBody<Op>>>;
  close(): Promise<void>;
}

/**
 * The real HTTP app on a free port, over a database of its own; or, given another app's
 * `database`, a second process of the same deployment (its own pool, listener, caches and
 * clock), which leaves the database to the app that made it.
 */
export async function startTestApp(
  options: { env?: Record<string, string>; database?: TestDatabase } = {},
): Promise<TestApp> {
  const ownsDatabase = options.database === undefined;
  const database = options.database ?? (await createTestDatabase());
  const storageDir = await mkdtemp(path.join(tmpdir(), "polyforge-outputs-"));
  const config = loadConfig({
    NODE_ENV: "test",
    DATABASE_URL: database.url,
    PORT: "0",
    PUBLIC_URL: "http://localhost:3000",
    LOG_LEVEL: "info",
    STORAGE_DIR: storageDir,
    ROUTING_BACKOFF_MS: "20",
    // Tests make many requests a minute from one account; the rate-limit tests turn them on.
    RATE_LIMITS: "off",
    ...options.env,
  });
  const logs: string[] = [];
  const destination: DestinationStream = { write: (line: string) => void logs.push(line) };
  const logger = createLogger(config, destination);
  const client = createDatabaseClient(database.url, { poolMax: 10, logger });
  const clock = new TestClock();
  const ctx = createAppContext(config, logger, client, clock.now);
  const server = await startHttpServer(ctx);

  const request: TestApp["request"] = async (method, path, opts = {}) => {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
    let body = opts.body;
    if (opts.json !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(opts.json);
    }
    const res = await fetch(server.url + path, { method, headers, body });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {}
    return { status: res.status, headers: res.headers, body: parsed };
  };

  const call = (operationId: OperationId, { params = {}, query, ...opts }: CallOptions = {}) => {
    const contract = contractOf(operationId);
    const path = contract.path.replace(/:(\w+)/g, (_, name: string) => {
      const value = params[name];
      if (value === undefined) throw new Error(`${operationId}: no value for :${name}`);
      return value;
    });
    const search =
      typeof query === "string"
        ? query
        : new URLSearchParams(
            Object.entries(query ?? {}).flatMap(([k, v]): [string, string][] =>
              v === undefined || v === null ? [] : [[k, String(v)]],
            ),
          ).toString();
    return request(contract.method.toUpperCase(), search ? `${path}?${search}` : path, opts);
  };

  return {
    url: server.url,
    ctx,
    database,
    clock,
    logs,
    request,
    call: call as TestApp["call"],
    close: async () => {
      await server.close();
      await ctx.inlineRuns.release();
      await ctx.generationEvents.close();
      await client.close();
      ctx.storage.close?.();
      if (ownsDatabase) await database.drop();
      await rm(storageDir, { recursive: true, force: true });
    },
  };
}

/** A new wallet account with one API key on the given network. */
export async function createAccountWithKey(ctx: AppContext, network: Network = "test") {
  const wallet = privateKeyToAccount(generatePrivateKey());
  const account = await findOrCreateWalletAccount(ctx, wallet.address);
  const { apiKey, key } = await createApiKey(
    ctx,
    { accountId: account.id },
    { network, name: "test" },
  );
  return { wallet, account, apiKey, key };
}

/** Polls the status endpoint until the generation is completed or failed. */
export async function waitForGeneration(
  app: TestApp,
  key: string,
  generationId: string,
  timeoutMs = 20_000,
) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await app.request("GET", `/v1/generate/status?ids=${generationId}`, { token: key });
    const generation = res.body?.generations?.[generationId];
    if (generation && (generation.status === "completed" || generation.status === "failed"))
      return generation;
    if (Date.now() > deadline)
      throw new Error(`generation ${generationId} did not finish: ${JSON.stringify(res.body)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A new account with an API key on `network` and `credits` granted there. */
export async function createFundedCaller(
  ctx: AppContext,
  credits: bigint,
  network: Network = "test",
) {
  const caller = await createAccountWithKey(ctx, network);
  await grantCredits(ctx, {
    id: newId("grant"),
    ownerId: caller.account.id,
    network,
    amount: creditUnits(credits),
    reason: "test",
  });
  return caller;
}
