import { setMaxListeners } from "node:events";
import type { Config } from "./config.js";
import type { AppContext } from "./context.js";
import type { DatabaseClient } from "./db/client.js";
import { type EmbeddedPostgres, startEmbeddedPostgres } from "./db/embedded.js";
import { Notifications } from "./db/notifications.js";
import { GenerationEvents } from "./domains/generations/events.js";
import { InlineRuns } from "./domains/generations/inline.js";
import { settlementHooks } from "./domains/generations/settlement.js";
import { ApiKeyCache } from "./domains/keys/cache.js";
import { royaltySettlementHooks } from "./domains/passes/royalties.js";
import { PaymentGateway } from "./domains/payments/gateway.js";
import { providers } from "./domains/providers/index.js";
import { localStorage } from "./domains/storage/local.js";
import { s3Storage } from "./domains/storage/s3.js";
import { webhookSettlementHooks } from "./domains/webhooks/service.js";
import { workflowSettlementHooks } from "./domains/workflows/hook.js";
import { type Clock, systemClock } from "./lib/clock.js";
import type { Logger } from "./logger.js";
import { registerDatabaseGauges } from "./metrics/database-gauges.js";
import { Metrics } from "./metrics/metrics.js";

export interface DatabaseTarget {
  url: string;
  /** Set when the server is the embedded one of this data directory. */
  embedded?: EmbeddedPostgres;
}

/**
 * DATABASE_URL when set; otherwise (outside production) the embedded PostgreSQL whose data
 * lives under POLYFORGE_DATA_DIR. `adopt` makes this process responsible for stopping it.
 */
export async function resolveDatabase(
  config: Config,
  logger: Logger,
  options: { adopt: boolean },
): Promise<DatabaseTarget> {
  if (config.database.url) return { url: config.database.url };
  const embedded = await startEmbeddedPostgres({
    dataDir: config.embeddedPostgres.dataDir,
    port: config.embeddedPostgres.port,
    logger,
    adopt: options.adopt,
  });
  return { url: embedded.url, embedded };
}

export function createAppContext(
  config: Config,
  logger: Logger,
  database: DatabaseClient,
  clock: Clock = systemClock,
): AppContext {
  // Object storage when STORAGE_URL names a bucket; local disk (STORAGE_DIR) otherwise.
  const storage = config.storage.s3
    ? s3Storage(config.storage.s3)
    : localStorage(config.storageDir);
  const notifications = new Notifications(database.pool, logger);
  const ctx: Omit<AppContext, "inlineRuns"> = {
    config,
    logger,
    clock,
    metrics: new Metrics(),
    channels: config.channels,
    storage,
    db: database.db,
    pool: database.pool,
    notifications,
    generationEvents: new GenerationEvents(notifications, logger),
    apiKeyCache: new ApiKeyCache(notifications, config.auth.apiKeyCache, logger),
    shutdown: shutdownController(),
    payments: new PaymentGateway(config.payments, logger),
    generations: {
      // In this order, in the settling transaction, as run.ts always called them.
      settlement: settlementHooks(
        webhookSettlementHooks,
        workflowSettlementHooks,
        royaltySettlementHooks,
      ),
      routing: {
        channels: config.channels,
        providers,
        settings: {
          maxRetries: config.generation.maxRetries,
          backoffMs: config.generation.backoffMs,
          upstreamTimeoutMs: config.generation.upstreamTimeoutMs,
          circuit: {
            ...config.generation.circuit,
            probeTimeoutMs: config.generation.upstreamTimeoutMs + 5_000,
          },
        },
      },
    },
  };
  const app: AppContext = { ...ctx, inlineRuns: new InlineRuns(ctx, ctx.generations) };
  registerDatabaseGauges(app);
  app.metrics.watchPool(database.pool);
  return app;
}

/**
 * The signal every in-flight wait (a stream, an images call waiting on its result) listens to
 * for a shutdown: one listener per such request, removed when it ends, so their number is the
 * load's, not a leak, and Node's warning past 10 would only be noise.
 */
function shutdownController(): AbortController {
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  return controller;
}
