import type { Command } from "commander";
import { migrationsApplied } from "../db/migrate.js";
import { startHttpServer } from "../http/server.js";
import { stopOnSignals } from "../lib/shutdown.js";
import { openLongRunning } from "./open.js";

export function addServeCommand(program: Command) {
  program
    .command("serve")
    .description("The HTTP API (production: run several against one PostgreSQL)")
    .action(async () => {
      const opened = await openLongRunning();
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
}
