import { creditsToJson } from "../../lib/credits.js";
import type { GenerationView } from "./history.js";

export interface QuoteBreakdown {
  models: Array<{ model: string; credits: bigint }>;
  passFees: Array<{ passId: string; fee: bigint; uses: number; credits: bigint }>;
  total: bigint;
}

/** A quote's breakdown on the wire (credits as JSON numbers). */
export function quoteJson(q: QuoteBreakdown) {
  return {
    models: q.models.map((m) => ({ model: m.model, credits: creditsToJson(m.credits) })),
    passFees: q.passFees.map((p) => ({
      passId: p.passId,
      fee: creditsToJson(p.fee),
      uses: p.uses,
      credits: creditsToJson(p.credits),
    })),
    total: creditsToJson(q.total),
  };
}

/** A generation as the API shows it: the status endpoint, history, webhooks and SSE. */
export function generationJson({ position: _position, ...g }: GenerationView) {
  return {
    ...g,
    cost: {
      quoted: creditsToJson(g.cost.quoted),
      charged: creditsToJson(g.cost.charged),
      refunded: creditsToJson(g.cost.refunded),
    },
    quote: quoteJson(g.quote),
    results: g.results.map((r) => ({
      ...r,
      cost: creditsToJson(r.cost),
      charged: creditsToJson(r.charged),
      refunded: creditsToJson(r.refunded),
    })),
  };
}

/**
 * GET /v1/generate/status's answer, as the public docs have it: the generations found, keyed by
 * id in the order asked; every other id asked for (unknown, or not the caller's) in `notFound`.
 */
export function statusJson(found: GenerationView[], asked: string[]) {
  const generations: Record<string, ReturnType<typeof generationJson>> = {};
  for (const g of found) generations[g.generationId] = generationJson(g);
  const seen = new Set(found.map((g) => g.generationId));
  return { generations, notFound: asked.filter((id) => !seen.has(id)) };
}
