import { z } from "zod";
import type { Channel } from "./channels.js";

const channelId = z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/, "a channel id");
const channelList = z.array(channelId).min(1).max(32);

/**
 * A caller's routing preferences (after OpenRouter's `provider` object): `only` and `ignore`
 * narrow the model's channels, `order` puts the named ones first in that order, `sort` orders
 * the rest by price or measured latency, `allowFailover: false` tries only the first one.
 * Not yet wired into the doors or routeCall: see the branch's report.
 */
export const routingPreferences = z
  .strictObject({
    order: channelList.optional(),
    only: channelList.optional(),
    ignore: channelList.optional(),
    sort: z.enum(["price", "latency"]).optional(),
    allowFailover: z.boolean().optional(),
  })
  .meta({ id: "RoutingPreferences" });

export type RoutingPreferences = z.infer<typeof routingPreferences>;

/** What sorting needs per channel: a relative cost, and the measured latency if any. */
export interface ChannelMeasures {
  cost?: (channel: Channel) => number;
  latencyMs?: (channel: Channel) => number | undefined;
}

/**
 * The candidates (already in default order: priority, then weighted) as the preferences have
 * them: filtered by only/ignore, `order`'s channels first in its order, the rest by `sort`
 * (stable: ties keep the default order; a channel with no measured latency goes last), and
 * only the first one when failover is not allowed.
 */
export function applyPreferences(
  candidates: readonly Channel[],
  prefs: RoutingPreferences | undefined,
  measures: ChannelMeasures = {},
): Channel[] {
  if (!prefs) return [...candidates];
  const only = prefs.only && new Set(prefs.only);
  const ignore = new Set(prefs.ignore ?? []);
  let left = candidates.filter((c) => (!only || only.has(c.id)) && !ignore.has(c.id));
  const key =
    prefs.sort === "price"
      ? (c: Channel) => measures.cost?.(c) ?? 0
      : prefs.sort === "latency"
        ? (c: Channel) => measures.latencyMs?.(c) ?? Number.POSITIVE_INFINITY
        : undefined;
  if (key) {
    left = left
      .map((c, i) => ({ c, i, k: key(c) }))
      .sort((a, b) => a.k - b.k || a.i - b.i)
      .map((x) => x.c);
  }
  const ordered: Channel[] = [];
  for (const id of prefs.order ?? []) {
    const at = left.findIndex((c) => c.id === id);
    if (at >= 0) ordered.push(...left.splice(at, 1));
  }
  const result = [...ordered, ...left];
  return prefs.allowFailover === false ? result.slice(0, 1) : result;
}

/** The ids the preferences name that are not among `served` (the model's channel ids). */
export function unknownChannels(prefs: RoutingPreferences, served: readonly string[]): string[] {
  const known = new Set(served);
  const named = [...(prefs.order ?? []), ...(prefs.only ?? []), ...(prefs.ignore ?? [])];
  return [...new Set(named)].filter((id) => !known.has(id));
}
