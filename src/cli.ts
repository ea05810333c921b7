import { Command, Option } from "commander";
import { pino } from "pino";
import { createAppContext, resolveDatabase } from "./app.js";
import {
  attachDevChain,
  type DevChainAttachment,
  forgetDevChain,
  noTestNetworkMessage,
  recordDevChain,
} from "./chain/dev-chain.js";
import { serveFacilitator } from "./chain/facilitator-server.js";
import {
  anvilAccount,
  FUNDED_WALLETS,
  LOCAL_ROLES,
  localPaymentConfig,
  localTreasuryKey,
  privateKeyOf,
  startLocalChain,
  verifyPaymentChains,
  withLocalTestChain,
} from "./chain/local-chain.js";
import { MULTICALL3_ADDRESS, USDC } from "./chain/networks.js";
import { type Config, ConfigError, loadConfig, processEnv } from "./config.js";
import type { AppContext } from "./context.js";
import { createDatabaseClient } from "./db/client.js";
import { migrateDatabase, migrationsApplied } from "./db/migrate.js";
import { ensureDemoAccess } from "./demo.js";
import { findAccount, findOrCreateWalletAccount } from "./domains/accounts/service.js";
import { checkGenerationInvariants } from "./domains/generations/invariants.js";
import { createApiKey, listApiKeys, revokeApiKey } from "./domains/keys/service.js";
import { checkLedgerInvariants } from "./domains/ledger/invariants.js";
import { getBalance, grantCredits } from "./domains/ledger/service.js";
import { inProcessFacilitator } from "./domains/payments/facilitator.js";
import { checkPaymentInvariants } from "./domains/payments/invariants.js";
import { reconcilePayments } from "./domains/payments/reconcile.js";
import { checkPayoutInvariants } from "./domains/payouts/invariants.js";
import { AppError } from "./errors.js";
import { startHttpServer } from "./http/server.js";
import { startWorker } from "./jobs/worker.js";
import { newId } from "./lib/ids.js";
import { logUnhandledRejections } from "./lib/last-resort.js";
import { type Network, networks } from "./lib/network.js";
import { type ShutdownStep, stopOnSignals } from "./lib/shutdown.js";
import { createLogger, type Logger } from "./logger.js";
import { runStdioServer } from "./mcp/stdio.js";
import { startMetricsServer } from "./metrics/server.js";

interface Opened {
  ctx: AppContext;
  config: Config;
  logger: Logger;
  /** Closes the pool, then stops the embedded PostgreSQL if this process owns it. */
  close(): Promise<void>;
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
async function open(options: {
  adoptEmbedded: boolean;
  logToStderr: boolean;
  config?: Config;
  checkChains?: boolean;
  useDevChain?: boolean;
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
  const database = createDatabaseClient(target.url, { poolMax: config.database.poolMax, logger });
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
      await ctx.generationEvents.close();
      await database.close();
      await target.embedded?.stop();
    },
  };
}

/** Runs a one-shot command against the database and always releases it. */
async function oneShot<T>(
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

/** serve and worker go on without test payments when the dev stack they were pointed at is gone. */
function warnIfDevChainGone({ config, devChain, logger }: Opened) {
  if (devChain.state === "unreachable") {
    logger.warn(noTestNetworkMessage(config, devChain));
  }
}

const print = (value: unknown) => process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);

// Factories: commander options are mutable, and each command needs its own.
const accountOption = () =>
  new Option(
    "--account <id-or-wallet>",
    "account id (acc_…) or wallet address",
  ).makeOptionMandatory();
const networkOption = () => new Option("--network <network>", "live or test").choices(networks);

const program = new Command("polyforge")
  .description("One API over many image and video models, paid in USDC.")
  .showHelpAfterError();

program
  .command("dev")
  .description("Everything in one process: database, migrations, API and worker (npm start)")
  .action(async () => {
    const loaded = loadConfig(processEnv());
    if (loaded.env === "production") {
      // dev creates a demo account that anyone can sign in to with anvil's public test key.
      throw new AppError(
        "invalid_request",
        "`polyforge dev` is for development; use `serve` and `worker` in production.",
      );
    }
    // Test payments on a local chain, unless a test network is configured.
    const chain = loaded.payments.networks.test
      ? undefined
      : await startLocalChain({
          network: "test",
          port: loaded.localChain.port,
          statePath: loaded.localChain.statePath,
        });
    const opened = await open({
      adoptEmbedded: true,
      logToStderr: false,
      config: chain ? withLocalTestChain(loaded, chain.rpcUrl) : loaded,
      checkChains: true,
    }).catch(async (err: unknown) => {
      await chain?.stop();
      throw err;
    });
    const { ctx, config, logger } = opened;
    logUnhandledRejections(logger);
    await migrateDatabase(ctx.pool, logger);
    const demo = await ensureDemoAccess(ctx, config.dataDir);
    const balance = await getBalance(ctx, demo.account.id, "test");
    const http = await startHttpServer(ctx);
    const worker = await startWorker(ctx);
    stopOnSignals(logger, config.http.shutdownTimeoutMs, [
      ["HTTP server", http.close],
      ["worker", () => worker.stop()],
      ["database", opened.close],
      ...(chain
        ? [
            [
              "local chain",
              async () => {
                await forgetDevChain(config);
                await chain.stop();
              },
            ] as ShutdownStep,
          ]
        : []),
    ]);
    // Now that the whole stack answers, the other commands may find its chain.
    if (chain) await recordDevChain(config, chain);
    const base = config.http.publicUrl;
    const payer = anvilAccount(LOCAL_ROLES.demoPayer);
    process.stdout.write(
      [
        "",
        "Polyforge is running (development: test mode, sandbox models).",
        "",
        `  API       ${base}   (listening on ${http.url})`,
        `  Database  ${opened.databaseLabel}`,
        `  Account   ${demo.account.id} (wallet ${demo.account.walletAddress})`,
        `  API key   ${demo.key}`,
        `  Credits   ${balance.creditBalance} test credits (Base Sepolia; nothing real is spent)`,
        "",
        "Try it:",
        `  curl -s ${base}/v1/balance -H "Authorization: Bearer ${demo.key}"`,
        "",
        "Generate (sandbox models, routed over two channels), then poll with the generationId it returns:",
        `  curl -s ${base}/v1/generate -H "Authorization: Bearer ${demo.key}" -H "content-type: application/json" -d '{"prompt":"a lighthouse at dusk","models":["gpt-image-2","nano-banana-2"]}'`,
        `  curl -s "${base}/v1/generate/status?ids=GENERATION_ID" -H "Authorization: Bearer ${demo.key}"`,
        "",
        ...(chain
          ? [
              `Pay per call with USDC, no API key (x402 on a local chain that stands in for Base Sepolia):`,
              `  Chain     ${chain.rpcUrl} (chain id ${chain.chainId}; state kept in ${config.localChain.statePath})`,
              `  Wallet    ${payer.address}, funded with 10,000 dev USDC`,
              `  Its key   ${privateKeyOf(payer)} (anvil's public test key: never use it elsewhere)`,
              `  POLYFORGE_API_URL=${base} node examples/pay-per-call.mjs`,
              "",
            ]
          : []),
        "Press Ctrl-C to stop.",
        "",
      ].join("\n"),
    );
  });

program
  .command("serve")
  .description("The HTTP API (production: run several against one PostgreSQL)")
  .action(async () => {
    const opened = await open({
      adoptEmbedded: false,
      logToStderr: false,
      checkChains: true,
      useDevChain: true,
    });
    warnIfDevChainGone(opened);
    logUnhandledRejections(opened.logger);
    if (!(await migrationsApplied(opened.ctx.pool))) {
      opened.logger.warn(
        "database is not migrated: run `polyforge migrate`; /readyz reports 503 until then",
      );
    }
    const http = await startHttpServer(opened.ctx);
    stopOnSignals(opened.logger, opened.config.http.shutdownTimeoutMs, [
      ["HTTP server", http.close],
      ["database", opened.close],
    ]);
    opened.logger.info({ url: http.url }, "API listening");
  });

program
  .command("worker")
  .description("Background jobs (production: run several against one PostgreSQL)")
  .action(async () => {
    const opened = await open({
      adoptEmbedded: false,
      logToStderr: false,
      checkChains: true,
      useDevChain: true,
    });
    warnIfDevChainGone(opened);
    logUnhandledRejections(opened.logger);
    const worker = await startWorker(opened.ctx);
    const { workerPort } = opened.config.metrics;
    const metrics =
      workerPort === undefined ? undefined : await startMetricsServer(opened.ctx, workerPort);
    stopOnSignals(opened.logger, opened.config.http.shutdownTimeoutMs, [
      ...(metrics ? [["metrics listener", metrics.close] as ShutdownStep] : []),
      ["worker", () => worker.stop()],
      ["database", opened.close],
    ]);
    if (metrics) opened.logger.info({ url: `${metrics.url}/metrics` }, "worker metrics listening");
  });

program
  .command("chain")
  .description(
    "A local chain for development: anvil with the dev USDC at the network's real USDC address, Multicall3, and funded test wallets; its state is kept in POLYFORGE_DATA_DIR",
  )
  .addOption(networkOption().default("test"))
  .option("--host <address>", "interface to listen on (0.0.0.0 in a container)", "127.0.0.1")
  .option(
    "--facilitator-port <port>",
    "also serve the chain's x402 facilitator over HTTP on this port (0: any free port), for APIs given X402_*_FACILITATOR_URL",
  )
  .action(async (opts: { network: Network; host: string; facilitatorPort?: string }) => {
    const config = loadConfig(processEnv());
    const facilitatorPort =
      opts.facilitatorPort === undefined ? undefined : Number(opts.facilitatorPort);
    if (
      facilitatorPort !== undefined &&
      !(Number.isInteger(facilitatorPort) && facilitatorPort >= 0 && facilitatorPort <= 65_535)
    ) {
      throw new AppError("invalid_request", "--facilitator-port must be a port number (0–65535).");
    }
    const logger = createLogger(config);
    const statePath =
      opts.network === "test"
        ? config.localChain.statePath
        : config.localChain.statePath.replace(/\.json$/, `-${opts.network}.json`);
    const chain = await startLocalChain({
      network: opts.network,
      port: config.localChain.port,
      host: opts.host,
      statePath,
    });
    const local = localPaymentConfig(chain.rpcUrl, opts.network);
    const facilitatorKey = "privateKey" in local.facilitator ? local.facilitator.privateKey : "";
    const facilitator =
      facilitatorPort === undefined
        ? undefined
        : await serveFacilitator(
            inProcessFacilitator({
              rpcUrl: chain.rpcUrl,
              chainId: chain.chainId,
              caip2: USDC[opts.network].caip2,
              privateKey: facilitatorKey as `0x${string}`,
              confirmationTimeoutMs: config.payments.settleTimeoutMs,
            }),
            { host: opts.host, port: facilitatorPort },
          ).catch(async (err: unknown) => {
            await chain.stop();
            throw err;
          });
    stopOnSignals(logger, config.http.shutdownTimeoutMs, [
      ...(facilitator ? [["facilitator", facilitator.close] as ShutdownStep] : []),
      ["local chain", chain.stop],
    ]);
    const prefix = `X402_${opts.network.toUpperCase()}`;
    const wallets = Array.from({ length: FUNDED_WALLETS }, (_, i) => anvilAccount(i));
    process.stdout.write(
      [
        "",
        `Local chain for ${opts.network} payments: ${chain.rpcUrl} (chain id ${chain.chainId}; state in ${statePath})`,
        `  USDC        ${USDC[opts.network].address} ("${USDC[opts.network].name}" v${USDC[opts.network].version}, 6 decimals; the dev token, open mint)`,
        `  Multicall3  ${MULTICALL3_ADDRESS}`,
        ...(facilitator
          ? [
              `  Facilitator ${facilitator.url} (x402 over HTTP, settling with wallet ${LOCAL_ROLES.facilitator})`,
            ]
          : []),
        "",
        "Funded with 10,000 dev USDC each (anvil's public test keys: never use them elsewhere):",
        ...wallets.map((w, i) => `  ${i}  ${w.address}  ${privateKeyOf(w)}`),
        "",
        "Point the API at it:",
        `  ${prefix}_RPC_URL=${chain.rpcUrl}`,
        `  ${prefix}_PAY_TO=${local.payTo}`,
        facilitator
          ? `  ${prefix}_FACILITATOR_URL=${facilitator.url}`
          : `  ${prefix}_FACILITATOR_KEY=${facilitatorKey}`,
        `  PAYOUT_${opts.network.toUpperCase()}_KEY=${localTreasuryKey()}`,
        `(The payout key is the treasury's, wallet ${LOCAL_ROLES.treasury}: it sends creator payouts, from the USDC payments it received.)`,
        "",
        "Press Ctrl-C to stop.",
        "",
      ].join("\n"),
    );
  });

program
  .command("mcp")
  .description(
    "The MCP server over stdio (Claude Desktop, Cursor…), talking to the API at POLYFORGE_API_URL with POLYFORGE_API_KEY",
  )
  .action(async () => {
    const config = loadConfig(processEnv());
    // stdout is the protocol's: logs go to stderr.
    const logger = createLogger(config, pino.destination(2));
    if (!config.mcp.apiKey) {
      throw new AppError(
        "missing_api_key",
        "Set POLYFORGE_API_KEY to an API key (and POLYFORGE_API_URL to the API, default http://localhost:3000).",
      );
    }
    const server = await runStdioServer({ apiUrl: config.mcp.apiUrl, apiKey: config.mcp.apiKey });
    logger.info({ apiUrl: config.mcp.apiUrl }, "MCP server on stdio");
    stopOnSignals(logger, 5_000, [["MCP server", () => server.close()]]);
  });

program
  .command("migrate")
  .description("Apply the database migrations (ours and graphile-worker's)")
  .action(() => oneShot(({ ctx, logger }) => migrateDatabase(ctx.pool, logger)));

const keys = program.command("keys").description("Manage API keys as an operator");

keys
  .command("create")
  .description("Issue a key; it is printed once. A wallet address gets an account if it has none.")
  .addOption(accountOption())
  .addOption(networkOption().default("test"))
  .option("--name <name>", "a label for the key", "cli")
  .action((opts: { account: string; network: Network; name: string }) =>
    oneShot(async ({ ctx }) => {
      const account = opts.account.startsWith("0x")
        ? await findOrCreateWalletAccount(ctx, opts.account)
        : await findAccount(ctx, opts.account);
      const { apiKey, key } = await createApiKey(ctx, { accountId: account.id }, opts);
      print({ ...apiKey, key });
    }),
  );

keys
  .command("list")
  .description("List an account's active keys (never the secrets)")
  .addOption(accountOption())
  .addOption(networkOption())
  .action((opts: { account: string; network?: Network }) =>
    oneShot(async ({ ctx }) => {
      const account = await findAccount(ctx, opts.account);
      print(await listApiKeys(ctx, { accountId: account.id }, opts));
    }),
  );

keys
  .command("revoke <keyId>")
  .description("Revoke a key; it fails from the next request on")
  .addOption(accountOption())
  .action((keyId: string, opts: { account: string }) =>
    oneShot(async ({ ctx }) => {
      const account = await findAccount(ctx, opts.account);
      print(await revokeApiKey(ctx, { accountId: account.id }, keyId));
    }),
  );

const credits = program.command("credits").description("Credits, for operators");
credits
  .command("grant")
  .description("Grant credits from the network's issuance account, recorded with the reason")
  .addOption(accountOption())
  .addOption(networkOption().makeOptionMandatory())
  .requiredOption("--credits <n>", "whole credits to grant")
  .requiredOption("--reason <text>", "why, kept as the transfer's reference")
  .option("--id <transfer-id>", "idempotency id (the same id twice grants once)")
  .action(
    (opts: { account: string; network: Network; credits: string; reason: string; id?: string }) =>
      oneShot(async ({ ctx }) => {
        if (!/^[1-9]\d{0,12}$/.test(opts.credits)) {
          throw new AppError("invalid_request", "--credits must be a positive whole number.");
        }
        const account = await findAccount(ctx, opts.account);
        const grant = await grantCredits(ctx, {
          id: opts.id ?? newId("grant"),
          ownerId: account.id,
          network: opts.network,
          credits: BigInt(opts.credits),
          reason: opts.reason,
        });
        const balance = await getBalance(ctx, account.id, opts.network);
        print({
          transferId: grant.id,
          replayed: grant.replayed,
          credits: Number(grant.amount),
          creditBalance: Number(balance.creditBalance),
        });
      }),
  );

program
  .command("payments")
  .description("x402 payments, for operators")
  .command("reconcile")
  .description(
    "Compare the treasury's USDC transfers on chain with the payments table; decide pending payments from the chain. Exits 1 on any difference.",
  )
  .addOption(networkOption())
  .action((opts: { network?: Network }) =>
    oneShot(
      async ({ ctx, config, devChain }) => {
        const configured = ctx.payments.networks();
        const targets = opts.network ? [opts.network] : configured;
        const missing = targets.find((network) => !configured.includes(network));
        if (targets.length === 0 || missing === "test") {
          throw new AppError("invalid_request", noTestNetworkMessage(config, devChain));
        }
        if (missing) {
          throw new AppError(
            "invalid_request",
            `The ${missing} network takes no payments here: set X402_LIVE_RPC_URL.`,
          );
        }
        const reports = [];
        for (const network of targets) reports.push(await reconcilePayments(ctx, network));
        print(reports);
        if (reports.some((r) => !r.ok)) process.exitCode = 1;
      },
      { useDevChain: true },
    ),
  );

program
  .command("ledger")
  .description("Ledger maintenance")
  .command("check")
  .description("Verify the ledger's invariants from its history; exits 1 on any violation")
  .action(() =>
    oneShot(async ({ ctx }) => {
      const violations = [
        ...(await checkLedgerInvariants(ctx)),
        ...(await checkGenerationInvariants(ctx)),
        ...(await checkPaymentInvariants(ctx)),
        ...(await checkPayoutInvariants(ctx)),
      ];
      print({ ok: violations.length === 0, violations });
      if (violations.length) process.exitCode = 1;
    }),
  );

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof ConfigError || err instanceof AppError) {
    process.stderr.write(`polyforge: ${err.message}\n`);
  } else {
    process.stderr.write(
      `polyforge: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
  }
  process.exit(1);
}
