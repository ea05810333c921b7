import { sql } from "drizzle-orm";
import type { ServiceContext } from "../../context.js";

/**
 * Royalties agree with what was charged. Returns one line per violation:
 * - a completed result has one use per pass its generation applied, at the quoted fee; a result
 *   that is not completed has none;
 * - a use's royalty is paid by exactly one royalty transfer of that amount, from the network's
 *   revenue into the pass creator's earnings; a use without royalty has no transfer;
 * - every royalty transfer belongs to a use.
 */
export async function checkRoyaltyInvariants(ctx: ServiceContext): Promise<string[]> {
  const { rows } = await ctx.db.execute<{ violation: string }>(sql`
    select 'result ' || coalesce(r.id, u.result_id) || ' (' || coalesce(r.status::text, 'not completed') || ') and pass ' || coalesce(gp.pass_id, u.pass_id) || ': '
           || case when u.result_id is null then 'charged without its use'
                   when gp.pass_id is null then 'a use of a result not charged, or of a pass it did not apply'
                   else 'a use at fee ' || u.fee || ' where ' || gp.fee || ' was quoted' end as violation
    from generation_results r
    join generation_passes gp on gp.generation_id = r.generation_id and r.status = 'completed'
    full join pass_uses u on u.result_id = r.id and u.pass_id = gp.pass_id
    where u.result_id is null or gp.pass_id is null or u.fee <> gp.fee
    union all
    select 'use ' || u.result_id || '/' || u.pass_id || ': royalty ' || u.royalty || ' paid by '
           || count(t.id) || ' transfer(s) of ' || coalesce(sum(t.amount), 0)
    from pass_uses u
    left join ledger_transfers t on t.kind = 'royalty' and t.id = 'royalty:' || u.result_id || ':' || u.pass_id
         and t.debit_account_id = 'revenue:' || u.network
         and t.credit_account_id = 'earnings:' || u.network || ':' || u.creator_id
    group by u.result_id, u.pass_id, u.royalty
    having (u.royalty > 0 and (count(t.id) <> 1 or sum(t.amount) <> u.royalty)) or (u.royalty = 0 and count(t.id) > 0)
    union all
    select 'royalty transfer ' || t.id || ' belongs to no use'
    from ledger_transfers t
    where t.kind = 'royalty'
      and not exists (select 1 from pass_uses u where t.id = 'royalty:' || u.result_id || ':' || u.pass_id)`);
  return rows.map((r) => r.violation);
}
