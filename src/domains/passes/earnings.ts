import { sql } from "drizzle-orm";
import type { ServiceContext } from "../../context.js";
import type { NetworkScope } from "../accounts/caller.js";
import { getBalance } from "../ledger/service.js";
import { payoutTotals } from "../payouts/service.js";

/**
 * A creator's royalties on one network: what each pass earned (from its uses), what of it is
 * still available in the earnings account, and what payouts have sent or are sending as USDC.
 */
export async function getEarnings(ctx: ServiceContext, scope: NetworkScope) {
  const { rows } = await ctx.db.execute<{
    pass_id: string;
    name: string;
    uses: string;
    fees: string;
    earned: string;
  }>(sql`
    select p.id as pass_id, p.name, count(u.result_id)::text as uses,
           coalesce(sum(u.fee), 0)::text as fees, coalesce(sum(u.royalty), 0)::text as earned
    from style_passes p left join pass_uses u on u.pass_id = p.id
    where p.creator_id = ${scope.accountId} and p.network = ${scope.network}::network
    group by p.id order by p.created_at, p.id`);
  const balance = await getBalance(ctx, scope.accountId, scope.network);
  const payouts = await payoutTotals(ctx, scope);
  const passes = rows.map((r) => ({
    passId: r.pass_id,
    name: r.name,
    uses: BigInt(r.uses),
    feesCharged: BigInt(r.fees),
    earned: BigInt(r.earned),
  }));
  return {
    network: scope.network,
    totalEarned: passes.reduce((sum, p) => sum + p.earned, 0n),
    available: balance.earnings,
    /** On its way to the creator's wallet: held from earnings until the chain decides. */
    pendingPayout: payouts.pending,
    paidOut: payouts.paidOut,
    passes,
  };
}

export const analyticsRanges = { "7d": 7, "30d": 30 } as const;
export type AnalyticsRange = keyof typeof analyticsRanges;

const DAY_MS = 24 * 3600 * 1000;

/**
 * Per pass and per UTC day of the range (today included): uses, distinct users and credits
 * earned, every day present (zeros on quiet days), with the range's totals per pass.
 */
export async function getPassAnalytics(
  ctx: ServiceContext,
  scope: NetworkScope,
  range: AnalyticsRange,
) {
  const days = analyticsRanges[range];
  const today = Math.floor(ctx.clock().getTime() / DAY_MS) * DAY_MS;
  const from = new Date(today - (days - 1) * DAY_MS);
  const to = new Date(today + DAY_MS);
  const own = sql`p.creator_id = ${scope.accountId} and p.network = ${scope.network}::network`;
  const { rows: daily } = await ctx.db.execute<{
    pass_id: string;
    day: string;
    uses: number;
    users: number;
    earned: string;
  }>(sql`
    select p.id as pass_id, to_char(d.start at time zone 'UTC', 'YYYY-MM-DD') as day,
           count(u.result_id)::int as uses, count(distinct u.user_id)::int as users,
           coalesce(sum(u.royalty), 0)::text as earned
    from style_passes p
    cross join lateral (select ${from}::timestamptz + make_interval(days => i) as start
                        from generate_series(0, ${days - 1}) as i) d
    left join pass_uses u on u.pass_id = p.id and u.created_at >= d.start and u.created_at < d.start + interval '1 day'
    where ${own}
    group by p.id, d.start order by p.id, d.start`);
  const { rows: totals } = await ctx.db.execute<{
    pass_id: string;
    name: string;
    uses: number;
    users: number;
    earned: string;
  }>(sql`
    select p.id as pass_id, p.name, count(u.result_id)::int as uses,
           count(distinct u.user_id)::int as users, coalesce(sum(u.royalty), 0)::text as earned
    from style_passes p
    left join pass_uses u on u.pass_id = p.id and u.created_at >= ${from} and u.created_at < ${to}
    where ${own}
    group by p.id order by p.created_at, p.id`);
  return {
    network: scope.network,
    range,
    from: from.toISOString().slice(0, 10),
    to: new Date(today).toISOString().slice(0, 10),
    passes: totals.map((t) => ({
      passId: t.pass_id,
      name: t.name,
      uses: t.uses,
      uniqueUsers: t.users,
      earned: BigInt(t.earned),
      days: daily
        .filter((d) => d.pass_id === t.pass_id)
        .map((d) => ({
          date: d.day,
          uses: d.uses,
          uniqueUsers: d.users,
          earned: BigInt(d.earned),
        })),
    })),
  };
}
