import type { Command } from "commander";
import { serveFacilitator } from "../chain/facilitator-server.js";
import {
  anvilAccount,
  FUNDED_WALLETS,
  LOCAL_ROLES,
  localPaymentConfig,
  localTreasuryKey,
  privateKeyOf,
  startLocalChain,
} from "../chain/local-chain.js";
import { MULTICALL3_ADDRESS, USDC } from "../chain/networks.js";
import { loadConfig, processEnv } from "../config.js";
import { inProcessFacilitator } from "../domains/payments/facilitator.js";
import { AppError } from "../errors.js";
import type { Network } from "../lib/network.js";
import { type ShutdownStep, stopOnSignals } from "../lib/shutdown.js";
import { createLogger } from "../logger.js";
import { networkOption } from "./options.js";

export function addChainCommand(program: Command) {
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
        throw new AppError(
          "invalid_request",
          "--facilitator-port must be a port number (0–65535).",
        );
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
}
