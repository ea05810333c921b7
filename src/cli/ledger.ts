import type { Command } from "commander";
import { checkAllInvariants } from "../domains/invariants.js";
import { oneShot } from "./open.js";
import { print } from "./options.js";

export function addLedgerCommands(program: Command) {
  program
    .command("ledger")
    .description("Ledger maintenance")
    .command("check")
    .description("Verify the ledger's invariants from its history; exits 1 on any violation")
    .action(() =>
      oneShot(async ({ ctx }) => {
        const violations = await checkAllInvariants(ctx);
        print({ ok: violations.length === 0, violations });
        if (violations.length) process.exitCode = 1;
      }),
    );
}
