import { sql } from "drizzle-orm";
import type { ServiceContext } from "../../context.js";

/**
 * Every payout agrees with its ledger hold (same id, on its owner's earnings, for its credits):
 * undecided payouts hold their credits; a paid one posted them all to the issuance account,
 * naming its transaction; a failed one returned them all. Returns one line per violation.
 */
export async function checkPayoutInvariants(ctx: ServiceContext): Promise<string[]> {
  const { rows } = await ctx.db.execute<{ violation: string }>(sql`
    select 'payout ' || p.id || ': ' || problem as violation
    from payouts p
    left join ledger_holds h on h.id = p.id
    left join ledger_transfers post on post.hold_id = p.id and post.kind = 'hold_post',
    lateral (values
      (case when h.id is null then 'has no hold' end),
      (case when h.id is not null and (h.kind <> 'payout' or h.network <> p.network
              or h.account_id <> 'earnings:' || p.network || ':' || p.account_id or h.amount <> p.credits)
            then 'its hold is not its earnings for its credits' end),
      (case when p.status in ('pending', 'broadcast') and h.status <> 'pending' then 'undecided but its hold is ' || h.status end),
      (case when p.status = 'paid' and (h.status <> 'posted' or h.posted <> p.credits) then 'paid but its hold is ' || h.status || ' with ' || h.posted || ' posted' end),
      (case when p.status = 'paid' and (post.id is null or post.credit_account_id <> 'issuance:' || p.network
              or post.reference is distinct from p.tx_hash) then 'paid but no post to issuance names its transaction' end),
      (case when p.status = 'failed' and (h.status <> 'voided' or h.released <> p.credits) then 'failed but its hold is ' || h.status || ' with ' || h.released || ' released' end)
    ) as v(problem)
    where problem is not null`);
  return rows.map((r) => r.violation);
}
