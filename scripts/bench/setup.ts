import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createAppContext } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import type { AppContext } from "../../src/context.js";
import { createDatabaseClient } from "../../src/db/client.js";
import { startEmbeddedPostgres } from "../../src/db/embedded.js";
import { migrateDatabase } from "../../src/db/migrate.js";
import { findOrCreateWalletAccount } from "../../src/domains/accounts/service.js";
import { createApiKey } from "../../src/domains/keys/service.js";
import { grantCredits } from "../../src/domains/ledger/service.js";
import { defaultChannels } from "../../src/domains/routing/channels.js";
import { creditUnits } from "../../src/lib/credits.js";
import { createLogger } from "../../src/logger.js";
import type { Bench } from "./harness.js";

export const benchLogger = createLogger({ logLevel: "silent" });

/**
 * What every benchmark starts from, as the phase "setup": a fresh embedded PostgreSQL (default
 * durability) on `port`, migrated, an application context over it with `env` applied, and one
 * test-network account holding `credits` with an API key. Each part is closed when the bench
 * ends (see Bench.defer), also when a later part fails to start.
 *
 * The limits are not left to their defaults: the free tier allows 5 generate calls a minute and
 * 50 generations in flight per account, which no load test survives. Each benchmark says which
 * it needs (`RATE_LIMITS`, `MAX_IN_FLIGHT_GENERATIONS` in src/config.ts).
 */
export async function startBench(
  bench: Bench,
  options: {
    port: number;
    rateLimits: "on" | "off";
    maxInFlightGenerations: number;
    env?: Record<string, string>;
    poolMax?: number;
    wallet: string;
    credits: bigint;
  },
) {
  return bench.phase("setup", 120_000, async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "polyforge-bench-"));
    bench.defer("remove the data directory", () => rm(dir, { recursive: true, force: true }));
    await chmod(dir, 0o755);
    const server = await startEmbeddedPostgres({
      dataDir: path.join(dir, "pg"),
      port: options.port,
      logger: benchLogger,
    });
    bench.defer("stop PostgreSQL", () => server.stop());
    const poolMax = options.poolMax ?? 10;
    const config = loadConfig({
      NODE_ENV: "test",
      DATABASE_URL: server.url,
      PORT: "0",
      LOG_LEVEL: "silent",
      STORAGE_DIR: path.join(dir, "out"),
      DATABASE_POOL_MAX: String(poolMax),
      RATE_LIMITS: options.rateLimits,
      MAX_IN_FLIGHT_GENERATIONS: String(options.maxInFlightGenerations),
      ...options.env,
    });
    const client = createDatabaseClient(server.url, { poolMax, logger: benchLogger });
    bench.defer("close the database pool", () => client.close());
    const ctx: AppContext = createAppContext(config, benchLogger, client);
    bench.defer("close generation events", () => ctx.generationEvents.close());
    await migrateDatabase(client.pool, benchLogger);
    const account = await findOrCreateWalletAccount(ctx, options.wallet);
    await grantCredits(ctx, {
      id: "bench",
      ownerId: account.id,
      network: "test",
      amount: creditUnits(options.credits),
      reason: "bench",
    });
    const { key } = await createApiKey(
      ctx,
      { accountId: account.id },
      { name: "bench", network: "test" },
    );
    return { ctx, account, key, dir };
  });
}

/**
 * The default channels and one more, "sim", first in line for gpt-image-2: the simulated
 * OpenAI Images upstream at `simUrl` (test/simulator/upstream.ts), for the gateway rows.
 */
export const withSimulatedOpenAi = (simUrl: string) => [
  ...defaultChannels,
  {
    id: "sim",
    provider: "openai",
    baseUrl: `${simUrl}/openai`,
    apiKey: "k",
    networks: ["test"],
    models: { "gpt-image-2": "gpt-image-1" },
    priority: 0,
    weight: 1,
  },
];
