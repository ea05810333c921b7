import type { Command } from "commander";
import { findAccount } from "../domains/accounts/service.js";
import { getBalance, grantCredits } from "../domains/ledger/service.js";
import { AppError } from "../errors.js";
import { creditsToJson, creditUnits } from "../lib/credits.js";
import { newId } from "../lib/ids.js";
import type { Network } from "../lib/network.js";
import { oneShot } from "./open.js";
import { accountOption, networkOption, print } from "./options.js";

export function addCreditsCommands(program: Command) {
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
            amount: creditUnits(BigInt(opts.credits)),
            reason: opts.reason,
          });
          const balance = await getBalance(ctx, account.id, opts.network);
          print({
            transferId: grant.id,
            replayed: grant.replayed,
            credits: creditsToJson(grant.amount),
            creditBalance: creditsToJson(balance.creditBalance),
          });
        }),
    );
}
