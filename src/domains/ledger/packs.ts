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

/** The best tier among the packs bought; free without any. */
export function tierOf(bought: Iterable<string>): MembershipTier {
  let best = 0;
  for (const pack of bought) {
    const tier = packs[pack as PackId]?.tier;
    if (tier) best = Math.max(best, tiers.indexOf(tier));
  }
  return tiers[best] ?? "free";
}
