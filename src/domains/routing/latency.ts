import { sql } from "drizzle-orm";
import type { ServiceContext } from "../../context.js";
import type { Channel } from "./channels.js";

/**
 * Each channel's measured latency for each model (how long a successful call took, from the
 * call to its answer: an image, a speech file, a chat reply's first text), kept beside its
 * health (channel_latency) as an exponentially weighted moving average, for a caller's
 * `sort: "latency"`. Per model, because one channel serving images and chat would otherwise
 * mix seconds with milliseconds. A healthy channel's success costs no write (see the router),
 * and measuring must not cost the caller one either: each process folds a second's calls into
 * their mean and writes that once (the first call at once), without the call waiting for it.
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

/** Notes one call's latency; the write, when one is due, is not waited for and never throws. */
export function noteLatency(
  ctx: ServiceContext,
  channels: readonly Channel[],
  measured: { channel: string; model: string; ms: number },
): void {
  const book = books.get(channels) ?? new Map<string, Unwritten>();
  books.set(channels, book);
  const name = `${measured.channel}\n${measured.model}`;
  const entry = book.get(name) ?? { sum: 0, count: 0, writtenAt: Number.NEGATIVE_INFINITY };
  book.set(name, entry);
  entry.sum += measured.ms;
  entry.count++;
  const now = performance.now();
  if (now - entry.writtenAt < WRITE_EVERY_MS) return;
  const mean = entry.sum / entry.count;
  Object.assign(entry, { sum: 0, count: 0, writtenAt: now });
  ctx.db
    .execute(sql`
      insert into channel_latency as l (channel_id, model, latency_ms, updated_at)
      values (${measured.channel}, ${measured.model}, ${mean}, ${ctx.clock()})
      on conflict (channel_id, model) do update set updated_at = excluded.updated_at,
        latency_ms = l.latency_ms * ${1 - WEIGHT_OF_NEW} + excluded.latency_ms * ${WEIGHT_OF_NEW}`)
    .catch((err: unknown) =>
      ctx.logger.warn({ err, channel: measured.channel }, "channel latency not recorded"),
    );
}

/** The measured latency, in milliseconds, of each of these channels for this model. */
export async function measuredLatencies(
  ctx: ServiceContext,
  model: string,
  channelIds: readonly string[],
): Promise<Map<string, number>> {
  const { rows } = await ctx.db.execute<{ channel_id: string; latency_ms: number }>(sql`
    select channel_id, latency_ms from channel_latency
    where model = ${model} and channel_id = any(${sql.param([...channelIds])}::text[])`);
  return new Map(rows.map((r) => [r.channel_id, Number(r.latency_ms)]));
}
