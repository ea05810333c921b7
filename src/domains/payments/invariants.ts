import { sql } from "drizzle-orm";
import type { ServiceContext } from "../../context.js";

/**
 * Credits come from USDC only through settled payments: each settled payment minted exactly its
 * credits to its own account on its own network, and every USDC mint belongs to a settled
 * payment. Returns one line per violation.
 */
export async function checkPaymentInvariants(ctx: ServiceContext): Promise<string[]> {
  const { rows } = await ctx.db.execute<{ violation: string }>(sql`
    select 'payment ' || p.id || ' is settled but minted ' || coalesce(t.amount::text, 'nothing')
           || ' of its ' || p.credits || ' credits' as violation
    from payments p left join ledger_transfers t on t.id = 'payment:' || p.id
    where p.status = 'settled'
      and (t.id is null or t.amount <> p.credits or t.network <> p.network
           or t.credit_account_id <> 'credits:' || p.network || ':' || p.account_id
           or t.kind <> case p.purpose when 'pack' then 'pack_purchase' else 'payment' end)
    union all
    select 'transfer ' || t.id || ' mints USDC credits without a settled payment'
    from ledger_transfers t left join payments p on t.id = 'payment:' || p.id
    where t.kind in ('pack_purchase', 'payment') and (p.id is null or p.status <> 'settled')`);
  return rows.map((r) => r.violation);
}
