import { sql } from "drizzle-orm";
import type { ServiceContext } from "../../context.js";
import { AppError } from "../../errors.js";
import type { Network } from "../../lib/network.js";
import { appliedPasses, type SettlementHooks } from "../generations/settlement.js";
import { systemLedgerAccount, userLedgerAccount } from "../ledger/accounts.js";
import { transferMany } from "../ledger/service.js";

export const royaltyTransferId = (resultId: string, passId: string) =>
  `royalty:${resultId}:${passId}`;

/**
 * Pays the royalties of one charged model result, inside the transaction that charges it (the
 * caller's `tx`), so a result is charged with its royalties or not at all. Each pass the
 * generation applied gets a use row, keyed by (result, pass): a second call for the same result
 * records nothing and pays nothing. The creator's share of the quoted fee moves from the
 * network's revenue (where the charge posted the whole cost) to the creator's earnings; the
 * platform's share (ROYALTY_PLATFORM_SHARE_BPS) stays in revenue, and the creator's part is
 * rounded down to whole credits. A creator's own pass was quoted at no fee: a use, no royalty.
 */
export async function payRoyalties(
  tx: ServiceContext,
  charged: { resultId: string; generationId: string; network: Network; userId: string },
): Promise<void> {
  const bps = tx.config.creators.platformShareBps;
  // The fees as quoted at submission, never the passes' current ones.
  const passes = await appliedPasses(tx, charged.generationId);
  if (passes.length === 0) return;
  const { rows } = await tx.db.execute<{ pass_id: string; creator_id: string; royalty: string }>(
    sql`
    with used as (
      insert into pass_uses (result_id, pass_id, network, creator_id, user_id, fee, royalty, created_at)
      select ${charged.resultId}, gp.pass_id, ${charged.network}::network, gp.creator_id, ${charged.userId}, gp.fee,
             gp.fee * (10000 - ${bps}::bigint) / 10000, ${tx.clock()}
      from unnest(${sql.param(passes.map((p) => p.passId))}::text[],
                  ${sql.param(passes.map((p) => p.creatorId))}::text[],
                  ${sql.param(passes.map((p) => p.fee.toString()))}::bigint[]) as gp(pass_id, creator_id, fee)
      on conflict do nothing
      returning pass_id, creator_id, royalty)
    select pass_id, creator_id, royalty::text from used order by pass_id`,
  );
  if (rows.length === 0) return;
  // The popularity counter, its rows locked in id order so concurrent charges cannot deadlock.
  // FOR NO KEY UPDATE, the lock the update itself takes, not FOR UPDATE: the use rows inserted
  // above hold FOR KEY SHARE on their passes (their foreign key), which FOR UPDATE waits for.
  // Two charges of one pass that had both inserted their use would each wait for the other's.
  await tx.db.execute(sql`
    update style_passes set uses = uses + 1
    where id in (select id from style_passes where id = any(${sql.param(rows.map((r) => r.pass_id))}::text[])
                 order by id for no key update)`);
  const royalties = rows.filter((r) => BigInt(r.royalty) > 0n);
  if (royalties.length === 0) return;
  const paid = await transferMany(
    tx,
    royalties.map((r) => ({
      id: royaltyTransferId(charged.resultId, r.pass_id),
      network: charged.network,
      debit: systemLedgerAccount(charged.network, "revenue"),
      credit: userLedgerAccount(r.creator_id, charged.network, "earnings"),
      amount: BigInt(r.royalty),
      kind: "royalty" as const,
      reference: r.pass_id,
      metadata: { generationId: charged.generationId, resultId: charged.resultId },
    })),
  );
  const failure = paid.find((r) => r instanceof AppError);
  if (failure) throw failure;
}

/**
 * What the passes domain does when a result settles (registered in createAppContext): a
 * completed result that applied passes pays their royalties, after its charge posted and in
 * its transaction.
 */
export const royaltySettlementHooks: Partial<SettlementHooks> = {
  onResultCharged: [
    async (tx, charged) => {
      if (!charged.hasPasses) return;
      await payRoyalties(tx, {
        resultId: charged.resultId,
        generationId: charged.generationId,
        network: charged.network,
        userId: charged.accountId,
      });
    },
  ],
};
