import { type SQL, sql } from "drizzle-orm";

/**
 * Credit packs and the membership tier each one grants on its network. Prices are in USD
 * cents; 1 credit = $0.01, and packs are cheaper per credit than paying per call.
 */
export const packs = {
  starter: { credits: 1_000n, priceUsdCents: 800n, tier: "free" },
  creator: { credits: 3_000n, priceUsdCents: 2_400n, tier: "creator" },
  pro: { credits: 6_000n, priceUsdCents: 4_000n, tier: "pro" },
} as const;

export type PackId = keyof typeof packs;
export const tiers = ["free", "creator", "pro"] as const;
export type MembershipTier = (typeof tiers)[number];

const packNames = Object.keys(packs);
const packRanks = Object.values(packs).map((p) => tiers.indexOf(p.tier));

/**
 * A credits account's membership tier as one scalar SQL expression: the rank (index in
 * `tiers`) of the best pack it bought, 0 without any. One definition for the balance and the
 * rate limiter, which embed it in their own statements; the account is a value, or a column
 * of the embedding statement (SQL).
 */
export const tierRankSql = (creditsAccount: string | null | SQL): SQL => sql`(
  select coalesce(max(r.rank), 0)::int from ledger_transfers t
  join unnest(${sql.param(packNames)}::text[], ${sql.param(packRanks)}::int[]) as r(pack, rank)
    on r.pack = t.metadata->>'pack'
  where t.credit_account_id = ${creditsAccount} and t.kind = 'pack_purchase')`;

export const tierOfRank = (rank: number): MembershipTier => tiers[rank] ?? "free";
