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
 *   once, and its posted and released parts match its transfers;
 * - a hold's transfers move the right accounts: funding from its owner into holds, posts out
 *   of holds, releases from holds back to its owner.
 */
export async function checkLedgerInvariants(ctx: ServiceContext): Promise<string[]> {
  const query = async (text: ReturnType<typeof sql>) =>
    (await ctx.db.execute<{ violation: string }>(text)).rows.map((r) => r.violation);

  // One pass over the transfers, not one lookup per account: this runs on big ledgers too.
  const derived = sql`
    flows as (
      select account_id, sum(delta) as sum from (
        select credit_account_id as account_id, amount as delta from ledger_transfers
        union all
        select debit_account_id, -amount from ledger_transfers) f
      group by account_id),
    derived as (
      select a.id, a.network, a.kind, a.balance, coalesce(f.sum, 0) as sum
      from ledger_accounts a left join flows f on f.account_id = a.id)`;

  return [
    ...(await query(sql`with ${derived}
      select 'network ' || network || ': balances sum to ' || sum(coalesce(balance, sum)) || ', not 0' as violation
      from derived group by network having sum(coalesce(balance, sum)) <> 0`)),
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
      with t as (
        select hold_id,
               coalesce(sum(amount) filter (where kind = 'hold_post'), 0) as posted,
               coalesce(sum(amount) filter (where kind = 'hold_release'), 0) as released,
               count(*) filter (where kind = 'hold_post') as posts,
               count(*) filter (where kind = 'hold_release') as releases,
               coalesce(sum(amount) filter (where kind = 'hold'), 0) as funded
        from ledger_transfers where hold_id is not null group by hold_id),
      c as (
        select parent_hold_id, sum(amount) as children
        from ledger_holds where parent_hold_id is not null group by parent_hold_id)
      select 'hold ' || h.id || ': ' || problem as violation
      from ledger_holds h
      left join t on t.hold_id = h.id
      left join c on c.parent_hold_id = h.id,
      lateral (values
        (case when h.amount <> h.available + h.drawn + h.posted + h.released then 'not conserved' end),
        (case when h.status <> 'pending' and h.available <> 0 then 'resolved with credits still available' end),
        (case when h.status = 'pending' and (h.posted <> 0 or h.released <> 0) then 'pending but already paid out' end),
        (case when coalesce(t.posted, 0) <> h.posted then 'posted ' || h.posted || ' but post transfers sum to ' || coalesce(t.posted, 0) end),
        (case when coalesce(t.released, 0) <> h.released then 'released ' || h.released || ' but release transfers sum to ' || coalesce(t.released, 0) end),
        (case when t.posts > 1 or t.releases > 1 then 'resolved more than once' end),
        (case when h.parent_hold_id is null and coalesce(t.funded, 0) <> h.amount then 'funded with ' || coalesce(t.funded, 0) || ', not ' || h.amount end),
        (case when h.parent_hold_id is not null and coalesce(t.funded, 0) <> 0 then 'drawn from a reservation but also funded' end),
        (case when coalesce(c.children, 0) <> h.drawn then 'drawn ' || h.drawn || ' but its holds sum to ' || coalesce(c.children, 0) end)
      ) as p(problem)
      where problem is not null`)),
    ...(await query(sql`
      select 'transfer ' || t.id || ': a ' || t.kind || ' of hold ' || h.id || ' moves the wrong accounts' as violation
      from ledger_transfers t join ledger_holds h on h.id = t.hold_id
      where (t.kind = 'hold' and (t.debit_account_id <> h.account_id or t.credit_account_id <> 'holds:' || h.network))
         or (t.kind = 'hold_post' and t.debit_account_id <> 'holds:' || h.network)
         or (t.kind = 'hold_release' and (t.debit_account_id <> 'holds:' || h.network or t.credit_account_id <> h.account_id))`)),
  ];
}
