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
import { createLogger } from "../../src/logger.js";

export const benchLogger = createLogger({ logLevel: "silent" });

/**
 * What every benchmark starts from: a fresh embedded PostgreSQL (default durability) on `port`,
 * migrated, an application context over it with `env` applied, and one test-network account
 * holding `credits` with an API key. `close` stops and removes it all.
 */
export async function startBench(options: {
  port: number;
  env?: Record<string, string>;
  poolMax?: number;
  wallet: string;
  credits: bigint;
}) {
  const dir = await mkdtemp(path.join(tmpdir(), "polyforge-bench-"));
  await chmod(dir, 0o755);
  const server = await startEmbeddedPostgres({
    dataDir: path.join(dir, "pg"),
    port: options.port,
    logger: benchLogger,
  });
  const poolMax = options.poolMax ?? 10;
  const config = loadConfig({
    NODE_ENV: "test",
    DATABASE_URL: server.url,
    PORT: "0",
    LOG_LEVEL: "silent",
    STORAGE_DIR: path.join(dir, "out"),
    DATABASE_POOL_MAX: String(poolMax),
    ...options.env,
  });
  const client = createDatabaseClient(server.url, { poolMax, logger: benchLogger });
  const ctx: AppContext = createAppContext(config, benchLogger, client);
  await migrateDatabase(client.pool, benchLogger);
  const account = await findOrCreateWalletAccount(ctx, options.wallet);
  await grantCredits(ctx, {
    id: "bench",
    ownerId: account.id,
    network: "test",
    credits: options.credits,
    reason: "bench",
  });
  const { key } = await createApiKey(
    ctx,
    { accountId: account.id },
    { name: "bench", network: "test" },
  );
  return {
    ctx,
    account,
    key,
    close: async () => {
      await ctx.generationEvents.close();
      await client.close();
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
