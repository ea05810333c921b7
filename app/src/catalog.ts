import { useQuery } from "@tanstack/react-query";
import { api } from "./api";
import type { CatalogModel, TextModel } from "./types";

/** The public catalog: no key needed. */
export function useModels() {
  return useQuery({
    queryKey: ["models"],
    queryFn: async () => (await api<{ data: CatalogModel[] }>("/v1/models")).data,
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

/** The catalog's text models, for the chat screen. */
export function useTextModels() {
  return useQuery({
    queryKey: ["models", "text"],
    queryFn: async () =>
      (await api<{ data: Array<{ type: string }> }>("/v1/models")).data.filter(
        (m): m is TextModel => m.type === "text",
      ),
    staleTime: 5 * 60_000,
  });
}
