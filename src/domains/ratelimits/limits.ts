import type { MembershipTier } from "../ledger/packs.js";

/**
 * Requests per minute by membership tier, as the public docs publish them. "generate" is every
 * endpoint that starts a generation; "batch" is POST /v1/generate/batch; "poll" is every status,
 * history and download read.
 */
export const rateLimitBuckets = ["generate", "batch", "poll"] as const;
export type RateLimitBucket = (typeof rateLimitBuckets)[number];

export const requestsPerMinute: Record<MembershipTier, Record<RateLimitBucket, number>> = {
  free: { generate: 5, batch: 25, poll: 50 },
  creator: { generate: 15, batch: 75, poll: 150 },
  pro: { generate: 30, batch: 150, poll: 300 },
};

export const RATE_LIMIT_WINDOW_SECONDS = 60;
