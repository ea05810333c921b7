import { pino } from "pino";
import { createAppContext, resolveDatabase } from "../app.js";
import {
  attachDevChain,
  type DevChainAttachment,
  noTestNetworkMessage,
} from "../chain/dev-chain.js";
import { verifyPaymentChains } from "../chain/local-chain.js";
import { type Config, loadConfig, processEnv } from "../config.js";
import type { AppContext } from "../context.js";
import { createDatabaseClient } from "../db/client.js";
import { logUnhandledRejections } from "../lib/last-resort.js";
import { createLogger, type Logger } from "../logger.js";

export interface Opened {
  ctx: AppContext;
  config: Config;
  logger: Logger;
  /** Closes the pool and the storage client, then stops the embedded PostgreSQL if this process owns it. */
  close(): Promise<void>;
  /** Tells an embedded PostgreSQL this process owns to stop, without waiting (see stopNow). */
  stopNow(): void;
  databaseLabel: string;
  /** Whether the test network came from a running `polyforge dev`'s record (see `useDevChain`). */
  devChain: DevChainAttachment;
}

/**
 * Config, logger and database for one command. One-shot commands log to stderr. Commands that
 * take payments first check that each network's RPC is the chain it should be; one that does
 * not answer leaves that network's payments unavailable until it does. With
 * `useDevChain`, a command whose environment configures no test network takes the chain a
 * running `polyforge dev` recorded in the data directory, so it works against `npm start`'s
 * stack with no X402_* variable.
 */
export async function open(options: {
  adoptEmbedded: boolean;
  logToStderr: boolean;
  config?: Config;
  checkChains?: boolean;
  useDevChain?: boolean;
  /** The process is `polyforge worker`: its pool waits WORKER_DATABASE_WAIT_MS. */
  worker?: boolean;
}): Promise<Opened> {
  const loaded = options.config ?? loadConfig(processEnv());
  const { config, devChain } = options.useDevChain
    ? await attachDevChain(loaded)
    : { config: loaded, devChain: { state: "configured" } as const };
  const unreachable = options.checkChains ? await verifyPaymentChains(config) : [];
  const logger = createLogger(config, options.logToStderr ? pino.destination(2) : undefined);
  if (devChain.state === "attached") {
    logger.info({ rpcUrl: devChain.rpcUrl }, "test payments on the running dev stack's chain");
  }
  const target = await resolveDatabase(config, logger, { adopt: options.adoptEmbedded });
  const database = createDatabaseClient(target.url, {
    poolMax: config.database.poolMax,
    logger,
    ...(options.worker && { waitMs: config.worker.databaseWaitMs }),
  });
  const ctx = createAppContext(config, logger, database);
  for (const network of unreachable) {
    logger.warn(
      { network },
      `the ${network} chain's RPC does not answer: its payments are unavailable until it does`,
    );
    ctx.payments.watchChain(network);
  }
  return {
    ctx,
    config,
    logger,
    devChain,
    databaseLabel: target.embedded
      ? `embedded PostgreSQL on 127.0.0.1:${target.embedded.port} (data in ${config.embeddedPostgres.dataDir})`
      : "PostgreSQL at DATABASE_URL",
    close: async () => {
      await ctx.inlineRuns.release();
      await ctx.generationEvents.close();
      await database.close();
      ctx.storage.close?.();
      await target.embedded?.stop();
    },
    stopNow: () => target.embedded?.stopNow(),
  };
}

/** Runs a one-shot command against the database and always releases it. */
export async function oneShot<T>(
  fn: (opened: Opened) => Promise<T>,
  options: { useDevChain?: boolean } = {},
): Promise<T> {
  const opened = await open({ adoptEmbedded: false, logToStderr: true, ...options });
  try {
    return await fn(opened);
  } finally {
    await opened.close();
  }
}

/**
 * The start of serve and worker, the production processes: an external database (never the
 * embedded one), logs on stdout, each network's chain checked, and the running dev stack's
 * chain taken when no test network is configured. They go on without test payments when the
 * dev stack they were pointed at is gone.
 */
export async function openLongRunning(options: { worker?: boolean } = {}): Promise<Opened> {
  const opened = await open({
    adoptEmbedded: false,
    logToStderr: false,
    checkChains: true,
    useDevChain: true,
    ...options,
  });
  const { config, devChain, logger } = opened;
  if (devChain.state === "unreachable") {
    logger.warn(noTestNetworkMessage(config, devChain));
  }
  logUnhandledRejections(logger);
  return opened;
}
