import type pg from "pg";
import type { Config } from "./config.js";
import type { Database, Executor } from "./db/client.js";
import type { Logger } from "./logger.js";
import type { Metrics } from "./metrics/metrics.js";
import type {
  ApiKeyCache,
  Channel,
  Clock,
  GenerationEvents,
  GenerationRuntime,
  InlineRuns,
  Notifications,
  Payments,
  Storage,
} from "./ports.js";

/**
 * What every service function receives. HTTP routes, CLI commands, MCP tools and jobs all
 * build one and call the same functions; `db` may be an open transaction the call joins.
 */
export interface ServiceContext {
  db: Executor;
  config: Config;
  logger: Logger;
  clock: Clock;
  /** The application's metrics registry; services record what they did through it. */
  metrics: Metrics;
  /** The upstream channels, as configured: what quotes and routing choose among. */
  channels: readonly Channel[];
  /** Where outputs, uploads and re-hosted reference images are stored. */
  storage: Storage;
}

/** Built once at start-up; its `db` is the pool-backed database, never a transaction. */
export interface AppContext extends ServiceContext {
  db: Database;
  pool: pg.Pool;
  /** Outputs storage and upstream routing, for generation jobs and downloads. */
  generations: GenerationRuntime<ServiceContext>;
  /** x402 on each network that takes payments. */
  payments: Payments;
  /**
   * The process's one LISTEN connection, which generation events and the key cache share.
   * Closing generationEvents closes it.
   */
  notifications: Notifications;
  /** Wakes requests waiting for generations; close it before the pool (it closes notifications). */
  generationEvents: GenerationEvents;
  /** Generations this process runs itself, for the doors that wait; release it before the pool. */
  inlineRuns: InlineRuns;
  /** Callers of recently used API keys, evicted on revocation by any process. */
  apiKeyCache: ApiKeyCache;
  /**
   * Aborted when the process starts shutting down (the HTTP server's close does it first):
   * requests that wait (OpenAI images, event streams) stop waiting and answer what they have,
   * so a deploy drops no caller.
   */
  shutdown: AbortController;
}
