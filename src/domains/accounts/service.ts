import { eq } from "drizzle-orm";
import { getAddress, isAddress } from "viem";
import type { ServiceContext } from "../../context.js";
import { notFound } from "../../errors.js";
import { newId } from "../../lib/ids.js";
import type { Scope } from "./caller.js";
import { accounts } from "./schema.js";

export type Account = typeof accounts.$inferSelect;

/** The wallet's account, created on first use. Safe under concurrent first sign-ins. */
export async function findOrCreateWalletAccount(
  ctx: ServiceContext,
  address: string,
  name?: string,
): Promise<Account> {
  const walletAddress = getAddress(address);
  // Most calls find the account (every paid call makes one): one round trip for those.
  const [found] = await ctx.db
    .select()
    .from(accounts)
    .where(eq(accounts.walletAddress, walletAddress));
  if (found) return found;
  const [created] = await ctx.db
    .insert(accounts)
    .values({ id: newId("acc"), walletAddress, name, createdAt: ctx.clock() })
    .onConflictDoNothing({ target: accounts.walletAddress })
    .returning();
  if (created) {
    ctx.logger.info({ accountId: created.id, walletAddress }, "account created");
    return created;
  }
  const [existing] = await ctx.db
    .select()
    .from(accounts)
    .where(eq(accounts.walletAddress, walletAddress));
  if (!existing) throw new Error(`account for ${walletAddress} vanished after a conflict`);
  return existing;
}

/** An account by its id or its wallet address (operators use either). */
export async function findAccount(ctx: ServiceContext, idOrAddress: string): Promise<Account> {
  const where = isAddress(idOrAddress, { strict: false })
    ? eq(accounts.walletAddress, getAddress(idOrAddress))
    : eq(accounts.id, idOrAddress);
  const [account] = await ctx.db.select().from(accounts).where(where);
  if (!account) throw notFound("Account");
  return account;
}

/**
 * Locks the account's row until the caller's transaction ends, so that changes to what the
 * account owns (its active keys) queue behind each other. 404 when there is no such account.
 */
export async function lockAccount(ctx: ServiceContext, accountId: string): Promise<void> {
  const [account] = await ctx.db
    .select({ id: accounts.id })
    .from(accounts)
    .where(eq(accounts.id, accountId))
    .for("update");
  if (!account) throw notFound("Account");
}

/** The caller's own account, as seen from its scope. */
export async function getAccount(ctx: ServiceContext, scope: Scope) {
  const account = await findAccount(ctx, scope.accountId);
  return {
    id: account.id,
    walletAddress: account.walletAddress,
    name: account.name,
    createdAt: account.createdAt,
    network: scope.network ?? null,
  };
}
