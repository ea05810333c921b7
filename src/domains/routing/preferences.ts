import { z } from "zod";
import { AppError } from "../../errors.js";
import type { Network } from "../../lib/network.js";
import { type Channel, channelsFor } from "./channels.js";

const channelId = z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/, "a channel id");
const channelList = z.array(channelId).min(1).max(32);

/**
 * A caller's routing preferences (after OpenRouter's `provider` object): `only` and `ignore`
 * narrow the model's channels, `order` puts the named ones first in that order, `sort` orders
 * the rest by price or measured latency, `allowFailover: false` tries only the first one.
 * Every generation door takes it as `routing`; routeCall applies it, and the result's routing
 * record repeats it as `preferences`.
 */
export const routingPreferences = z
  .strictObject({
    order: channelList
      .optional()
      .describe("Channels to try first, in this order; the others follow (unless `only`)."),
    only: channelList.optional().describe("Use these channels and no others."),
    ignore: channelList.optional().describe("Never use these channels."),
    sort: z
      .enum(["price", "latency"])
      .optional()
      .describe(
        "Order the channels `order` does not place: by what the channel costs upstream, or by its measured latency (a moving average kept with channel health; unmeasured channels last). Without it, the configured priority and weights.",
      ),
    allowFailover: z
      .boolean()
      .optional()
      .describe(
        "false: only the first channel is tried (with its retries); if it fails, the request fails and is refunded. Default true.",
      ),
  })
  .describe(
    "Routing preferences. Channel ids are what results name in `routing.upstream` and `routing.attempts`; a 400 unknown_channel lists those serving the request's models (`served`). A channel that serves none of the request's models is 400 unknown_channel; preferences that leave a model no channel are 400 no_channel_left.",
  )
  .meta({ id: "RoutingPreferences" });

export type RoutingPreferences = z.infer<typeof routingPreferences>;

/** What sorting needs per channel: its cost (unset: last), and the measured latency if any. */
export interface ChannelMeasures {
  cost?: (channel: Channel) => number | undefined;
  latencyMs?: (channel: Channel) => number | undefined;
}

/**
 * The candidates (already in default order: priority, then weighted) as the preferences have
 * them: filtered by only/ignore, `order`'s channels first in its order, the rest by `sort`
 * (stable: ties keep the default order; a channel with no measured latency or cost goes last).
 * An `order` entry that `only` or `ignore` excludes is dropped. Failover: triedChannels.
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
      ? (c: Channel) => measures.cost?.(c) ?? Number.POSITIVE_INFINITY
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
  return result;
}

/**
 * Without failover, only the first channel is tried: the router cuts the list after putting
 * first a channel that already holds the call's upstream job (a rerun after a crash), so that
 * job is polled rather than paid for again on another channel.
 */
export const triedChannels = (ordered: Channel[], prefs: RoutingPreferences | undefined) =>
  prefs?.allowFailover === false ? ordered.slice(0, 1) : ordered;

/**
 * The ids the preferences name that cannot apply: in `order` or `only`, one not among `served`
 * (the channels of the request's models); in `ignore`, one not among `configured` at all (a
 * channel to avoid is harmless where it does not serve, but a name no channel has is a typo).
 */
export function unknownChannels(
  prefs: RoutingPreferences,
  served: readonly string[],
  configured: readonly string[] = served,
): string[] {
  const known = new Set(served);
  const exists = new Set(configured);
  const unknown = [
    ...[...(prefs.order ?? []), ...(prefs.only ?? [])].filter((id) => !known.has(id)),
    ...(prefs.ignore ?? []).filter((id) => !exists.has(id)),
  ];
  return [...new Set(unknown)];
}

/**
 * Refuses, before anything is held or paid, preferences that cannot be honoured for these
 * models on this network: a named channel that serves none of them (400 unknown_channel), or a
 * model left with no channel (400 no_channel_left). A channel named that serves only some of the
 * models applies to those; `serves` narrows to the channels whose provider makes the door's call.
 */
export function checkPreferences(
  channels: readonly Channel[],
  models: readonly string[],
  network: Network,
  prefs: RoutingPreferences | undefined,
  serves: (channel: Channel) => boolean = () => true,
): void {
  if (!prefs) return;
  const byModel = models.map((model) => ({
    model,
    served: channelsFor(channels, model, network).filter(serves),
  }));
  const served = [...new Set(byModel.flatMap((m) => m.served.map((c) => c.id)))];
  const unknown = unknownChannels(
    prefs,
    served,
    channels.map((c) => c.id),
  );
  if (unknown.length > 0) {
    throw new AppError(
      "unknown_channel",
      `routing names ${unknown.join(", ")}, which serves none of these models on ${network}; they are served by ${served.join(", ") || "no channel"}.`,
      { field: "routing", channels: unknown, served },
    );
  }
  for (const { model, served } of byModel) {
    if (served.length > 0 && applyPreferences(served, prefs).length === 0) {
      throw new AppError(
        "no_channel_left",
        `routing leaves no channel for ${model}: only and ignore exclude all of them.`,
        { field: "routing", model },
      );
    }
  }
}
