import { sql } from "drizzle-orm";
import type { ServiceContext } from "../../context.js";
import type { Network } from "../../lib/network.js";
import type {
  SettlementHook as PortSettlementHook,
  SettlementHooks as PortSettlementHooks,
} from "../../ports.js";
import { type GenerationView, getGenerations } from "./history.js";

/**
 * The settlement seam: what other domains (webhooks, workflows, passes) do when one of a
 * generation's results settles, and what they may read of a generation then. The generations
 * domain runs the hooks; it imports none of those domains. The hooks are part of the
 * application context (see createAppContext), so every process and test that builds one runs
 * the same hooks, in the same order.
 */

export type { SettledResult } from "../../ports.js";

/** The hooks, run with the settling transaction's service context. */
export type SettlementHook = PortSettlementHook<ServiceContext>;
export type SettlementHooks = PortSettlementHooks<ServiceContext>;

/** The hooks of several domains, run in the order given. */
export function settlementHooks(...listeners: Partial<SettlementHooks>[]): SettlementHooks {
  return {
    onResultSettled: listeners.flatMap((l) => l.onResultSettled ?? []),
    onResultCharged: listeners.flatMap((l) => l.onResultCharged ?? []),
  };
}

/** See SettledResult.generationFinished: locks the row, then looks (two statements, on purpose). */
export function generationFinished(tx: ServiceContext, generationId: string) {
  let finished: Promise<boolean> | undefined;
  return () => {
    finished ??= (async () => {
      // A statement of its own: a later statement's snapshot then includes whatever the
      // transaction we waited for committed (READ COMMITTED).
      await tx.db.execute(sql`select 1 from generations where id = ${generationId} for update`);
      const { rows } = await tx.db.execute<{ finished: boolean }>(sql`
        select not exists (select 1 from generation_results r
                           where r.generation_id = ${generationId} and r.status in ('pending', 'processing')) as finished`);
      return rows[0]?.finished === true;
    })();
    return finished;
  };
}

/** A pass as a generation recorded it (generation_passes), with the fee each of its results pays for it as quoted. */
export interface GenerationPass {
  passId: string;
  creatorId: string;
  fee: bigint;
}

/** The passes a generation applied, in its order. */
export async function appliedPasses(
  ctx: ServiceContext,
  generationId: string,
): Promise<GenerationPass[]> {
  const { rows } = await ctx.db.execute<{ pass_id: string; creator_id: string; fee: string }>(sql`
    select pass_id, creator_id, fee::text from generation_passes
    where generation_id = ${generationId} order by position`);
  return rows.map((r) => ({ passId: r.pass_id, creatorId: r.creator_id, fee: BigInt(r.fee) }));
}

/** A generation as its owner's webhook reports it, found by id and owner alone. */
export async function getGenerationForWebhook(
  ctx: ServiceContext,
  generation: { generationId: string; accountId: string },
): Promise<GenerationView | undefined> {
  const { rows } = await ctx.db.execute<{ network: Network }>(sql`
    select network::text as network from generations
    where id = ${generation.generationId} and account_id = ${generation.accountId}`);
  const network = rows[0]?.network;
  if (!network) return undefined;
  const { data } = await getGenerations(ctx, { accountId: generation.accountId, network }, [
    generation.generationId,
  ]);
  return data[0];
}
