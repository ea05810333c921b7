import { z } from "zod";
import { type Network, networks } from "../../lib/network.js";

/**
 * Upstream channels: which provider adapter serves which catalog models, where, and in what
 * order. Configuration, not code (the CHANNELS variable). Lower priority is tried first;
 * channels of equal priority share load by weight.
 */
/** `anthropic` serves chat only; each door routes only to channels whose provider makes its call. */
export const providerNames = ["sandbox", "openai", "anthropic", "fal", "replicate"] as const;
export type ProviderName = (typeof providerNames)[number];

export const channelSchema = z
  .object({
    id: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/, "lowercase letters, digits, . _ -"),
    provider: z.enum(providerNames),
    baseUrl: z.url({ protocol: /^https?$/ }).optional(),
    apiKey: z.string().min(1).optional(),
    /** Test mode spends nothing real: real channels serve test keys only when listed here. */
    networks: z.array(z.enum(networks)).min(1),
    /** Catalog model id → the upstream's own model id; "*" serves every model under its own id. */
    models: z.union([z.literal("*"), z.record(z.string(), z.string().min(1))]),
    priority: z.number().int().min(0).default(0),
    weight: z.number().int().min(1).default(1),
    /**
     * What a call on this channel costs us, relative to the model's other channels (any one
     * unit, say US cents per image), for a caller's `sort: "price"`; unset sorts last. The
     * caller pays the catalog's price whatever channel serves.
     */
    cost: z.number().nonnegative().optional(),
  })
  .strict()
  .refine((c) => c.provider === "sandbox" || c.baseUrl, {
    message: "baseUrl is required for HTTP providers",
  });

export type Channel = z.infer<typeof channelSchema>;

export const channelsSchema = z.array(channelSchema).superRefine((list, ctx) => {
  const seen = new Set<string>();
  for (const c of list) {
    if (seen.has(c.id)) ctx.addIssue({ code: "custom", message: `duplicate channel id ${c.id}` });
    seen.add(c.id);
  }
});

/** With no CHANNELS configured: two sandbox channels (primary and backup) for test mode only. */
export const defaultChannels: Channel[] = [
  {
    id: "sandbox-primary",
    provider: "sandbox",
    networks: ["test"],
    models: "*",
    priority: 0,
    weight: 1,
  },
  {
    id: "sandbox-backup",
    provider: "sandbox",
    networks: ["test"],
    models: "*",
    priority: 1,
    weight: 1,
  },
];

export function upstreamModelOf(channel: Channel, model: string): string | undefined {
  return channel.models === "*" ? model : channel.models[model];
}

/**
 * The channels that may serve a model on a network, in the order to try them: by priority,
 * and within one priority a weighted random order so load spreads.
 */
export function channelsFor(
  channels: readonly Channel[],
  model: string,
  network: Network,
  random: () => number = Math.random,
): Channel[] {
  const eligible = channels.filter(
    (c) => c.networks.includes(network) && upstreamModelOf(c, model),
  );
  const byPriority = new Map<number, Channel[]>();
  for (const c of eligible) byPriority.set(c.priority, [...(byPriority.get(c.priority) ?? []), c]);
  return [...byPriority.keys()]
    .sort((a, b) => a - b)
    .flatMap((priority) => weightedOrder(byPriority.get(priority) ?? [], random));
}

function weightedOrder(group: Channel[], random: () => number): Channel[] {
  const left = [...group];
  const ordered: Channel[] = [];
  while (left.length) {
    const total = left.reduce((sum, c) => sum + c.weight, 0);
    const target = random() * total;
    let cumulative = 0;
    const index = left.findIndex((c) => {
      cumulative += c.weight;
      return target < cumulative;
    });
    ordered.push(...left.splice(index < 0 ? left.length - 1 : index, 1));
  }
  return ordered;
}
