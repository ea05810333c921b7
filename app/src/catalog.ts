import { useQuery } from "@tanstack/react-query";
import { api } from "./api";
import type { CatalogModel, UsageModel } from "./types";

/**
 * The public catalog's image and video models (no key needed): what the suite generates with.
 * Text and audio models, listed beside them since the catalog has four types, are left out.
 */
export function useModels() {
  return useQuery({
    queryKey: ["models"],
    queryFn: async () =>
      (
        await api<{ data: Array<CatalogModel | { type: "text" | "audio" }> }>("/v1/models")
      ).data.filter((m): m is CatalogModel => m.type === "image" || m.type === "video"),
    staleTime: 5 * 60_000,
  });
}

/** A model's price for a resolution (and a video's duration), from its price table. */
export function priceOf(model: CatalogModel, resolution?: string, duration?: number) {
  const rows = model.pricing.table.filter(
    (row) =>
      (!resolution || row.resolution === resolution) &&
      (duration === undefined || row.duration === undefined || row.duration === duration),
  );
  return rows[0]?.credits;
}

/** The catalog's text and audio models: billed by usage, for the chat and pricing screens. */
export function useUsageModels() {
  return useQuery({
    queryKey: ["models", "usage"],
    queryFn: async () =>
      (await api<{ data: Array<{ type: string }> }>("/v1/models")).data.filter(
        (m): m is UsageModel => m.type === "text" || m.type === "audio",
      ),
    staleTime: 5 * 60_000,
  });
}

/** A usage-billed model's price in words: "35 in / 210 out per 1M tokens", "2.1 per clip". */
export const usagePrice = (m: UsageModel) =>
  m.type === "text"
    ? `${m.pricing.input} in / ${m.pricing.output} out credits per ${m.pricing.per}`
    : `${m.pricing.credits} credits per ${m.pricing.per}`;
