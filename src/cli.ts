import { Command } from "commander";
import { addChainCommand } from "./cli/chain.js";
import { addCreditsCommands } from "./cli/credits.js";
import { addDevCommand } from "./cli/dev.js";
import { addKeysCommands } from "./cli/keys.js";
import { addLedgerCommands } from "./cli/ledger.js";
import { addMcpCommand } from "./cli/mcp.js";
import { addMigrateCommand } from "./cli/migrate.js";
import { addPaymentsCommands } from "./cli/payments.js";
import { addServeCommand } from "./cli/serve.js";
import { addWorkerCommand } from "./cli/worker.js";
import { ConfigError } from "./config.js";
import { AppError } from "./errors.js";

/** The `polyforge` command (bin/polyforge.js): one file per command under cli/. */
const program = new Command("polyforge")
  .description("One API over many image and video models, paid in USDC.")
  .showHelpAfterError();

// In this order in --help.
for (const add of [
  addDevCommand,
  addServeCommand,
  addWorkerCommand,
  addChainCommand,
  addMcpCommand,
  addMigrateCommand,
  addKeysCommands,
  addCreditsCommands,
  addPaymentsCommands,
  addLedgerCommands,
]) {
  add(program);
}

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
