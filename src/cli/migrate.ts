import type { Command } from "commander";
import { migrateDatabase } from "../db/migrate.js";
import { oneShot } from "./open.js";

export function addMigrateCommand(program: Command) {
  program
    .command("migrate")
    .description("Apply the database migrations (ours and graphile-worker's)")
    .action(() => oneShot(({ ctx, logger }) => migrateDatabase(ctx.pool, logger)));
}
