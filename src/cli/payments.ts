import type { Command } from "commander";
import { noTestNetworkMessage } from "../chain/dev-chain.js";
import { reconcilePayments } from "../domains/payments/reconcile.js";
import { AppError } from "../errors.js";
import type { Network } from "../lib/network.js";
import { oneShot } from "./open.js";
import { networkOption, print } from "./options.js";

export function addPaymentsCommands(program: Command) {
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
}
