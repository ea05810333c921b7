import { sql } from "drizzle-orm";
import type { ServiceContext } from "../../context.js";

/**
 * Verifies the ledger from its history, per network. Returns one line per violation; an empty
 * list means every rule holds:
 * - the balances of a network sum to zero (double entry);
 * - every stored balance equals the sum of its account's transfers;
 * - no user balance is below zero;
 * - the holds account holds exactly what pending holds have available;
 * - every hold is conserved (amount = available + drawn + posted + released), resolved at most
 *   once, and its posted and released parts match its transfers.
 */
export async function checkLedgerInvariants(ctx: ServiceContext): Promise<string[]> {
  const query = async (text: ReturnType<typeof sql>) =>
    (await ctx.db.execute<{ violation: string }>(text)).rows.map((r) => r.violation);

  const derived = sql`
    derived as (
      select a.id, a.network, a.kind, a.balance,
             coalesce((select sum(amount) from ledger_transfers where credit_account_id = a.id), 0)
           - coalesce((select sum(amount) from ledger_transfers where debit_account_id = a.id), 0) as sum
      from ledger_accounts a)`;

  return [
    ...(await query(sql`with ${derived}
      select 'network ' || network || ': balances sum to ' || sum(sum) || ', not 0' as violation
      from derived group by network having sum(sum) <> 0`)),
    ...(await query(sql`with ${derived}
      select 'account ' || id || ': stored balance ' || balance || ' but transfers sum to ' || sum as violation
      from derived where balance is not null and balance <> sum`)),
    ...(await query(sql`
      select 'account ' || id || ': balance ' || balance || ' is below zero' as violation
      from ledger_accounts where balance < 0`)),
    ...(await query(sql`with ${derived}
      select 'network ' || d.network || ': holds account has ' || d.sum || ' but pending holds have '
             || coalesce(p.available, 0) as violation
      from derived d
      left join (select network, sum(available) as available from ledger_holds where status = 'pending'
                 group by network) p on p.network = d.network
      where d.kind = 'holds' and d.sum <> coalesce(p.available, 0)`)),
    ...(await query(sql`
      select 'hold ' || h.id || ': ' || problem as violation
      from ledger_holds h,
      lateral (select
        coalesce((select sum(amount) from ledger_transfers where hold_id = h.id and kind = 'hold_post'), 0) as posted,
        coalesce((select sum(amount) from ledger_transfers where hold_id = h.id and kind = 'hold_release'), 0) as released,
        (select count(*) from ledger_transfers where hold_id = h.id and kind = 'hold_post') as posts,
        (select count(*) from ledger_transfers where hold_id = h.id and kind = 'hold_release') as releases,
        coalesce((select sum(amount) from ledger_transfers where hold_id = h.id and kind = 'hold'), 0) as funded,
        coalesce((select sum(amount) from ledger_holds c where c.parent_hold_id = h.id), 0) as children
      ) t,
      lateral (values
        (case when h.amount <> h.available + h.drawn + h.posted + h.released then 'not conserved' end),
        (case when h.status <> 'pending' and h.available <> 0 then 'resolved with credits still available' end),
        (case when h.status = 'pending' and (h.posted <> 0 or h.released <> 0) then 'pending but already paid out' end),
        (case when t.posted <> h.posted then 'posted ' || h.posted || ' but post transfers sum to ' || t.posted end),
        (case when t.released <> h.released then 'released ' || h.released || ' but release transfers sum to ' || t.released end),
        (case when t.posts > 1 or t.releases > 1 then 'resolved more than once' end),
        (case when h.parent_hold_id is null and t.funded <> h.amount then 'funded with ' || t.funded || ', not ' || h.amount end),
        (case when h.parent_hold_id is not null and t.funded <> 0 then 'drawn from a reservation but also funded' end),
        (case when t.children <> h.drawn then 'drawn ' || h.drawn || ' but its holds sum to ' || t.children end)
      ) as p(problem)
      where problem is not null`)),
  ];
}
