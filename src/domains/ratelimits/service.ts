import { sql } from "drizzle-orm";
import type { ServiceContext } from "../../context.js";
import { AppError } from "../../errors.js";
import type { Network } from "../../lib/network.js";
import { userLedgerAccount } from "../ledger/accounts.js";
import { type MembershipTier, tierOfRank, tierRankSql } from "../ledger/packs.js";
import { RATE_LIMIT_WINDOW_SECONDS, type RateLimitBucket, requestsPerMinute } from "./limits.js";

/**
 * Who a limit counts against: an account on one network (an API key's, or the account of a
 * wallet paying with x402), whose tier follows the packs it bought there; or, for a request
 * that names nobody, its client address at the free tier.
 */
export type RateLimitSubject =
  | { kind: "account"; accountId: string; network: Network }
  | { kind: "address"; address: string };

export interface RateLimitDecision {
  subject: RateLimitSubject;
  /** The window the request was counted in. */
  windowStart: Date;
  allowed: boolean;
  bucket: RateLimitBucket;
  tier: MembershipTier;
  limit: number;
  remaining: number;
  /** Whole seconds until the window resets (and, when refused, until a retry can succeed). */
  resetSeconds: number;
}

const subjectKey = (s: RateLimitSubject) =>
  s.kind === "account" ? `account:${s.network}:${s.accountId}` : `address:${s.address}`;

/**
 * Counts one request against the subject's limit in the bucket, in one round trip: the tier
 * lookup and the counter's upsert are one statement. Windows are fixed minutes of the
 * caller's clock; a request from a process whose clock lags (an older window than the row's)
 * counts in the newer window rather than resetting it.
 */
export async function consumeRateLimit(
  ctx: ServiceContext,
  subject: RateLimitSubject,
  bucket: RateLimitBucket,
): Promise<RateLimitDecision> {
  const now = ctx.clock().getTime();
  const windowMs = RATE_LIMIT_WINDOW_SECONDS * 1000;
  const windowStart = new Date(Math.floor(now / windowMs) * windowMs);
  const tierAccount =
    subject.kind === "account" ? userLedgerAccount(subject.accountId, subject.network) : null;
  const { rows } = await ctx.db.execute<{ count: number; rank: number }>(sql`
    with hit as (
      insert into rate_limit_counters as c (subject, bucket, window_start, count)
      values (${subjectKey(subject)}, ${bucket}, ${windowStart}, 1)
      on conflict (subject, bucket) do update set
        count = case when excluded.window_start > c.window_start then 1 else c.count + 1 end,
        window_start = greatest(c.window_start, excluded.window_start)
      returning count, window_start
    )
    select hit.count, ${tierRankSql(tierAccount)} as rank from hit`);
  const row = rows[0];
  if (!row) throw new Error("rate limit upsert returned no row");
  const tier = tierOfRank(row.rank);
  const limit = requestsPerMinute[tier][bucket];
  return {
    subject,
    windowStart,
    allowed: row.count <= limit,
    bucket,
    tier,
    limit,
    remaining: Math.max(0, limit - row.count),
    resetSeconds: Math.max(1, Math.ceil((windowStart.getTime() + windowMs - now) / 1000)),
  };
}

/** The response headers of a limited request (IETF RateLimit fields, plus Retry-After when refused). */
export function rateLimitHeaders(d: RateLimitDecision): Record<string, string> {
  return {
    "RateLimit-Limit": String(d.limit),
    "RateLimit-Remaining": String(d.remaining),
    "RateLimit-Reset": String(d.resetSeconds),
    "RateLimit-Policy": `${d.limit};w=${RATE_LIMIT_WINDOW_SECONDS}`,
    ...(d.allowed ? {} : { "Retry-After": String(d.resetSeconds) }),
  };
}

export function rateLimited(d: RateLimitDecision): AppError {
  return new AppError(
    "rate_limited",
    `Rate limit reached: ${d.limit} ${d.bucket} requests per minute on the ${d.tier} tier. Retry in ${d.resetSeconds} s.`,
    { bucket: d.bucket, tier: d.tier, limit: d.limit, retryAfterSeconds: d.resetSeconds },
    { headers: rateLimitHeaders(d) },
  );
}

/** Counts the request and throws 429 rate_limited when it is over the limit; off when disabled. */
export async function enforceRateLimit(
  ctx: ServiceContext,
  subject: RateLimitSubject,
  bucket: RateLimitBucket,
): Promise<RateLimitDecision | undefined> {
  if (!ctx.config.rateLimits.enabled) return undefined;
  const decision = await consumeRateLimit(ctx, subject, bucket);
  if (!decision.allowed) throw rateLimited(decision);
  return decision;
}

/**
 * Gives back a request counted by `consumeRateLimit` that started no work (refused, or an
 * idempotent replay), so only work counts against a limit. Counted first and given back after,
 * rather than counted after, so concurrent requests can never pass the limit between the two.
 * A window that has moved on meanwhile is left alone.
 */
export async function releaseRateLimit(ctx: ServiceContext, d: RateLimitDecision): Promise<void> {
  await ctx.db.execute(sql`
    update rate_limit_counters set count = count - 1
    where subject = ${subjectKey(d.subject)} and bucket = ${d.bucket}
      and window_start = ${d.windowStart} and count > 0`);
}

/** Drops the counters of windows that have ended (the rate_limits_purge cron). */
export async function purgeRateLimitCounters(ctx: ServiceContext): Promise<number> {
  const cutoff = new Date(ctx.clock().getTime() - RATE_LIMIT_WINDOW_SECONDS * 1000);
  const { rowCount } = await ctx.db.execute(
    sql`delete from rate_limit_counters where window_start < ${cutoff}`,
  );
  return rowCount ?? 0;
}
