import type { Command } from "commander";
import { forgetDevChain, recordDevChain } from "../chain/dev-chain.js";
import {
  anvilAccount,
  LOCAL_ROLES,
  privateKeyOf,
  startLocalChain,
  withLocalTestChain,
} from "../chain/local-chain.js";
import { loadConfig, processEnv } from "../config.js";
import { migrateDatabase } from "../db/migrate.js";
import { ensureDemoAccess } from "../demo.js";
import { getBalance } from "../domains/ledger/service.js";
import { AppError } from "../errors.js";
import { startHttpServer } from "../http/server.js";
import { suiteBuilt } from "../http/suite.js";
import { startWorker } from "../jobs/worker.js";
import { formatCredits } from "../lib/credits.js";
import { logUnhandledRejections } from "../lib/last-resort.js";
import { type ShutdownStep, stopOnSignals } from "../lib/shutdown.js";
import { open } from "./open.js";

export function addDevCommand(program: Command) {
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
      // An uncaught exception skips the ordered shutdown below; the children this process
      // started must not outlive it. After a clean shutdown both are stopped already.
      process.once("exit", () => {
        chain?.anvil.process.kill("SIGTERM"); // does nothing once it has exited
        opened.stopNow();
      });
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
          `  App       ${base}/app   ${suiteBuilt() ? "(the Creator Suite: sign in, buy credits, generate)" : "(not built: run npm run build:app)"}`,
          `  Database  ${opened.databaseLabel}`,
          `  Account   ${demo.account.id} (wallet ${demo.account.walletAddress})`,
          `  API key   ${demo.key}`,
          `  Credits   ${formatCredits(balance.creditBalance)} test credits (Base Sepolia; nothing real is spent)`,
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
}
