import { sql } from "drizzle-orm";
import type { ServiceContext } from "../../context.js";
import { groupCommitFor } from "../../db/group-commit.js";
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

/** One request to count: who, in which bucket, and the window of the caller's clock. */
interface Hit {
  subject: string;
  bucket: RateLimitBucket;
  windowStart: Date;
  /** The ledger account whose pack purchases give the tier (none at the free tier). */
  tierAccount: string | null;
}

/** What counting a hit found: its place in the window's count, the window, and the tier. */
interface Counted {
  count: number;
  windowStart: Date;
  rank: number;
}

/**
 * Counts hits in ONE statement: one counter upsert per (subject, bucket), by as many as it has
 * hits, each hit then given its own place in the count, as if counted one by one. Rows go in
 * key order, so two statements that touch the same counters lock them in the same order. A hit
 * whose window is older than its counter's (a lagging clock) counts in the newer window.
 */
async function countHits(db: ServiceContext["db"], hits: Hit[]): Promise<Counted[]> {
  const counters = new Map<string, Hit & { hits: number[] }>();
  hits.forEach((hit, i) => {
    const key = `${hit.subject}\n${hit.bucket}`;
    const counter = counters.get(key);
    if (!counter) counters.set(key, { ...hit, hits: [i] });
    else {
      counter.hits.push(i);
      if (hit.windowStart > counter.windowStart) counter.windowStart = hit.windowStart;
    }
  });
  const rows = [...counters.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const param = <T>(f: (c: Hit & { hits: number[] }) => T) => sql.param(rows.map(([, c]) => f(c)));
  const { rows: counted } = await db.execute<{
    ord: string;
    count: number;
    window_start: Date;
    rank: number;
  }>(sql`
    with hit as (
      select * from unnest(
        ${param((c) => c.subject)}::text[], ${param((c) => c.bucket)}::text[],
        ${param((c) => c.windowStart.toISOString())}::timestamptz[], ${param((c) => c.hits.length)}::int[],
        ${param((c) => c.tierAccount)}::text[]
      ) with ordinality as h(subject, bucket, window_start, n, tier_account, ord)
    ), counter as (
      insert into rate_limit_counters as c (subject, bucket, window_start, count)
      select subject, bucket, window_start, n from hit order by ord
      on conflict (subject, bucket) do update set
        count = case when excluded.window_start > c.window_start then excluded.count
                     else c.count + excluded.count end,
        window_start = greatest(c.window_start, excluded.window_start)
      returning subject, bucket, count, window_start
    )
    select hit.ord, counter.count, counter.window_start,
      ${tierRankSql(sql`hit.tier_account`)} as rank
    from counter join hit using (subject, bucket)`);
  const out: Counted[] = new Array(hits.length);
  for (const row of counted) {
    const counter = (rows[Number(row.ord) - 1] as [string, Hit & { hits: number[] }])[1];
    // The counter's hits take the last places of its count, in the order they came.
    counter.hits.forEach((hitIndex, j) => {
      out[hitIndex] = {
        count: row.count - counter.hits.length + 1 + j,
        windowStart: new Date(row.window_start),
        rank: row.rank,
      };
    });
  }
  return out;
}

/**
 * Counts one request against the subject's limit in the bucket, in one round trip: the tier
 * lookup and the counter's upsert are one statement, shared with the requests counted at the
 * same time (a group commit: under load, one statement for many requests). Windows are fixed
 * minutes of the caller's clock.
 */
export async function consumeRateLimit(
  ctx: ServiceContext,
  subject: RateLimitSubject,
  bucket: RateLimitBucket,
): Promise<RateLimitDecision> {
  const now = ctx.clock().getTime();
  const windowMs = RATE_LIMIT_WINDOW_SECONDS * 1000;
  const hit: Hit = {
    subject: subjectKey(subject),
    bucket,
    windowStart: new Date(Math.floor(now / windowMs) * windowMs),
    tierAccount:
      subject.kind === "account" ? userLedgerAccount(subject.accountId, subject.network) : null,
  };
  const { db, metrics } = ctx;
  const group = groupCommitFor<Hit, Counted>(
    db,
    "rate_limit_consume",
    (hits) => countHits(db, hits),
    (size) => metrics.groupCommitted("rate_limit_consume", size),
  );
  const { count, windowStart, rank } = await group.submit(hit);
  const tier = tierOfRank(rank);
  const limit = requestsPerMinute[tier][bucket];
  return {
    subject,
    windowStart,
    allowed: count <= limit,
    bucket,
    tier,
    limit,
    remaining: Math.max(0, limit - count),
    // The caller's own window: a lagging clock's request may have counted in a newer one.
    resetSeconds: Math.max(1, Math.ceil((hit.windowStart.getTime() + windowMs - now) / 1000)),
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
