import type { Command } from "commander";
import { findAccount, findOrCreateWalletAccount } from "../domains/accounts/service.js";
import { createApiKey, listApiKeys, revokeApiKey } from "../domains/keys/service.js";
import type { Network } from "../lib/network.js";
import { oneShot } from "./open.js";
import { accountOption, networkOption, print } from "./options.js";

export function addKeysCommands(program: Command) {
  const keys = program.command("keys").description("Manage API keys as an operator");

  keys
    .command("create")
    .description(
      "Issue a key; it is printed once. A wallet address gets an account if it has none.",
    )
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
}
