import { sql } from "drizzle-orm";
import type { ServiceContext } from "../../context.js";
import type { Channel } from "./channels.js";

/**
 * Each channel's measured latency (how long a successful call took, from the call to its
 * answer), kept beside its health (channel_latency) as an exponentially weighted moving average, for a caller's
 * `sort: "latency"`. A healthy channel's success costs no write (see the router), so neither
 * should its latency: each process folds the calls of one second into their mean and writes
 * that once, the first call of a channel at once.
 */
const WEIGHT_OF_NEW = 0.2;
const WRITE_EVERY_MS = 1000;

interface Unwritten {
  sum: number;
  count: number;
  writtenAt: number;
}

/** One book per channel list (one per app), so apps sharing a process keep their own. */
const books = new WeakMap<readonly Channel[], Map<string, Unwritten>>();

export async function noteLatency(
  ctx: ServiceContext,
  channels: readonly Channel[],
  channelId: string,
  ms: number,
): Promise<void> {
  const book = books.get(channels) ?? new Map<string, Unwritten>();
  books.set(channels, book);
  const entry = book.get(channelId) ?? { sum: 0, count: 0, writtenAt: Number.NEGATIVE_INFINITY };
  book.set(channelId, entry);
  entry.sum += ms;
  entry.count++;
  const now = performance.now();
  if (now - entry.writtenAt < WRITE_EVERY_MS) return;
  const mean = entry.sum / entry.count;
  Object.assign(entry, { sum: 0, count: 0, writtenAt: now });
  await ctx.db.execute(sql`
    insert into channel_latency as l (channel_id, latency_ms, updated_at) values (${channelId}, ${mean}, ${ctx.clock()})
    on conflict (channel_id) do update set updated_at = excluded.updated_at,
      latency_ms = l.latency_ms * ${1 - WEIGHT_OF_NEW} + excluded.latency_ms * ${WEIGHT_OF_NEW}`);
}

/** The measured latency of each of these channels that has one, in milliseconds. */
export async function measuredLatencies(
  ctx: ServiceContext,
  channelIds: readonly string[],
): Promise<Map<string, number>> {
  const { rows } = await ctx.db.execute<{ channel_id: string; latency_ms: number }>(sql`
    select channel_id, latency_ms from channel_latency
    where channel_id = any(${sql.param([...channelIds])}::text[])`);
  return new Map(rows.map((r) => [r.channel_id, Number(r.latency_ms)]));
}
