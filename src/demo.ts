import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import type { ServiceContext } from "./context.js";
import { findOrCreateWalletAccount } from "./domains/accounts/service.js";
import {
  authenticateApiKey,
  createApiKey,
  listApiKeys,
  MAX_ACTIVE_API_KEYS,
  revokeApiKey,
} from "./domains/keys/service.js";
import { grantCredits } from "./domains/ledger/service.js";
import { AppError } from "./errors.js";
import { creditUnits } from "./lib/credits.js";

/** Anvil's first public test account: the demo account signs in with its well-known key. */
export const DEMO_WALLET = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
const DEMO_KEY_NAME = "demo";

/**
 * The demo account and a working sk_test_ key for `polyforge dev`. Keys are stored hashed, so
 * the key itself is kept in the local data directory to print again after a restart.
 */
export const DEMO_CREDITS = 1_000n;

export async function ensureDemoAccess(ctx: ServiceContext, dataDir: string) {
  const account = await findOrCreateWalletAccount(ctx, DEMO_WALLET, "demo");
  // Granted once: the transfer id makes every later start a replay.
  await grantCredits(ctx, {
    id: `demo-grant:${account.id}`,
    ownerId: account.id,
    network: "test",
    amount: creditUnits(DEMO_CREDITS),
    reason: "demo credits",
  });
  const keyFile = path.join(dataDir, "demo-key");
  const saved = (await readFile(keyFile, "utf8").catch(() => "")).trim();
  if (saved) {
    const caller = await authenticateApiKey(ctx, saved).catch((err: unknown) => {
      if (err instanceof AppError) return undefined;
      throw err;
    });
    if (caller?.accountId === account.id) return { account, key: saved };
  }

  // The cap counts both networks: make room by revoking the oldest demo key, if any.
  const everyKey = { accountId: account.id };
  const active = await listApiKeys(ctx, everyKey);
  if (active.length >= MAX_ACTIVE_API_KEYS) {
    const oldestDemo = active.filter((k) => k.name === DEMO_KEY_NAME).at(-1);
    if (!oldestDemo) {
      throw new Error(
        `The demo account ${account.id} already has ${MAX_ACTIVE_API_KEYS} active keys; revoke one with \`polyforge keys revoke\`.`,
      );
    }
    await revokeApiKey(ctx, everyKey, oldestDemo.id);
  }
  const { key } = await createApiKey(
    ctx,
    { accountId: account.id, network: "test" },
    { name: DEMO_KEY_NAME },
  );
  await mkdir(dataDir, { recursive: true });
  await writeFile(keyFile, `${key}\n`, { mode: 0o600 });
  return { account, key };
}
