import { sql } from "drizzle-orm";
import type { ServiceContext } from "../../context.js";
import type { NetworkScope } from "../accounts/caller.js";
import { outputUrl } from "./outputs.js";

export type ResultStatus = "pending" | "processing" | "completed" | "failed";

interface ResultRow {
  generation_id: string;
  media_type: "image" | "video" | "audio";
  prompt: string;
  /** As PostgreSQL printed it, to the microsecond (drizzle hands timestamps over as text). */
  created_at: string;
  quoted: string;
  reservation_id: string | null;
  id: string;
  model: string;
  position: number;
  status: ResultStatus;
  progress: number | null;
  cost: string;
  charged: string;
  refunded: string;
  routing: Record<string, unknown> | null;
  error_code: string | null;
  error_message: string | null;
  finished_at: string | null;
  /** When the retention sweep deleted the output; null while it is kept. */
  output_expired_at: string | null;
  /** A video result's frame rate, as quoted. */
  fps: number | null;
  template_id: string | null;
  /** The passes applied, in order, with the fee each result pays for each. */
  passes: Array<{ passId: string; fee: string }>;
  [key: string]: unknown;
}

export function statusOf(statuses: ResultStatus[]): ResultStatus {
  const terminal = statuses.every((s) => s === "completed" || s === "failed");
  if (terminal) return statuses.includes("completed") ? "completed" : "failed";
  return statuses.some((s) => s !== "pending") ? "processing" : "pending";
}

export function generationView(rows: ResultRow[], ctx: Pick<ServiceContext, "config" | "clock">) {
  const first = rows[0] as ResultRow;
  const sum = (f: (r: ResultRow) => string) => rows.reduce((total, r) => total + BigInt(f(r)), 0n);
  const mediaKey = ({ image: "imageUrl", video: "videoUrl", audio: "audioUrl" } as const)[
    first.media_type
  ];
  const passes = first.passes.map((p) => ({ passId: p.passId, fee: BigInt(p.fee) }));
  const passFeesPerResult = passes.reduce((total, p) => total + p.fee, 0n);
  const ordered = [...rows].sort((a, b) => a.position - b.position);
  return {
    generationId: first.generation_id,
    status: statusOf(rows.map((r) => r.status)),
    mediaType: first.media_type,
    prompt: first.prompt,
    createdAt: new Date(first.created_at),
    /** The exact creation time, for history cursors. */
    position: { createdAt: first.created_at, id: first.generation_id },
    reservationId: first.reservation_id,
    templateId: first.template_id,
    stylePassIds: passes.map((p) => p.passId),
    cost: {
      quoted: BigInt(first.quoted),
      charged: sum((r) => r.charged),
      refunded: sum((r) => r.refunded),
    },
    /** What was quoted and held: each model's price, and each pass's fee on every result. */
    quote: {
      models: ordered.map((r) => ({ model: r.model, credits: BigInt(r.cost) - passFeesPerResult })),
      passFees: passes.map((p) => ({
        passId: p.passId,
        fee: p.fee,
        uses: rows.length,
        credits: p.fee * BigInt(rows.length),
      })),
      total: BigInt(first.quoted),
    },
    results: ordered.map((r) => ({
      model: r.model,
      status: r.status,
      /** 0–100 where the upstream tells it; null when unknown. */
      progress: r.progress,
      // No URL for an output the retention sweep deleted: it would only answer 410.
      [mediaKey]:
        r.status === "completed" && !r.output_expired_at
          ? outputUrl(ctx, r.generation_id, r.model)
          : null,
      // Undefined (left out of the JSON) on an image result.
      fps: first.media_type === "video" ? r.fps : undefined,
      cost: BigInt(r.cost),
      charged: BigInt(r.charged),
      refunded: BigInt(r.refunded),
      routing: r.routing,
      error: r.error_code ? { code: r.error_code, message: r.error_message } : null,
      finishedAt: r.finished_at ? new Date(r.finished_at) : null,
      expiredAt: r.output_expired_at ? new Date(r.output_expired_at) : null,
    })),
  };
}
export type GenerationView = ReturnType<typeof generationView>;

const resultColumns = sql`g.id as generation_id, g.media_type::text, g.prompt, g.created_at, g.quoted, g.reservation_id,
  r.id, r.model, r.position, r.status::text, r.progress, r.cost, r.charged, r.refunded, r.routing, r.error_code, r.error_message, r.finished_at, r.output_expired_at,
  g.request->>'templateId' as template_id, (g.request->'frameRates'->>r.model)::int as fps,
  (select coalesce(json_agg(json_build_object('passId', gp.pass_id, 'fee', gp.fee::text) order by gp.position), '[]'::json)
   from generation_passes gp where gp.generation_id = g.id) as passes`;

function group(rows: ResultRow[], ctx: Pick<ServiceContext, "config" | "clock">): GenerationView[] {
  const byGeneration = new Map<string, ResultRow[]>();
  for (const row of rows)
    byGeneration.set(row.generation_id, [...(byGeneration.get(row.generation_id) ?? []), row]);
  return [...byGeneration.values()].map((r) => generationView(r, ctx));
}

/** The caller's generations among `ids`; ids that are unknown or someone else's are reported as not found. */
export async function getGenerations(ctx: ServiceContext, scope: NetworkScope, ids: string[]) {
  const { rows } = await ctx.db.execute<ResultRow>(sql`
    select ${resultColumns} from generations g join generation_results r on r.generation_id = g.id
    where g.id = any(${sql.param(ids)}::text[]) and g.account_id = ${scope.accountId} and g.network = ${scope.network}::network`);
  const found = group(rows, ctx);
  const order = new Map(ids.map((id, i) => [id, i]));
  found.sort((a, b) => (order.get(a.generationId) ?? 0) - (order.get(b.generationId) ?? 0));
  const seen = new Set(found.map((g) => g.generationId));
  return { data: found, notFound: ids.filter((id) => !seen.has(id)) };
}

export interface HistoryFilter {
  limit: number;
  before?: { createdAt: string; id: string } | undefined;
  mediaType?: "image" | "video" | "audio" | undefined;
  status?: ResultStatus | undefined;
  model?: string | undefined;
  from?: Date | undefined;
  to?: Date | undefined;
}

/** The caller's generations, newest first, filtered; `before` is the last one of the previous page. */
export async function listGenerations(
  ctx: ServiceContext,
  scope: NetworkScope,
  filter: HistoryFilter,
) {
  const derived = sql`(select case
      when bool_and(x.status in ('completed', 'failed')) then
        case when bool_or(x.status = 'completed') then 'completed' else 'failed' end
      when bool_or(x.status <> 'pending') then 'processing' else 'pending' end
    from generation_results x where x.generation_id = g.id)`;
  const page = sql`
    select g.id from generations g
    where g.account_id = ${scope.accountId} and g.network = ${scope.network}::network
      ${filter.before ? sql`and (g.created_at, g.id) < (${filter.before.createdAt}::timestamptz, ${filter.before.id})` : sql``}
      ${filter.mediaType ? sql`and g.media_type = ${filter.mediaType}::media_type` : sql``}
      ${filter.from ? sql`and g.created_at >= ${filter.from}` : sql``}
      ${filter.to ? sql`and g.created_at < ${filter.to}` : sql``}
      ${filter.model ? sql`and exists (select 1 from generation_results m where m.generation_id = g.id and m.model = ${filter.model})` : sql``}
      ${filter.status ? sql`and ${derived} = ${filter.status}` : sql``}
    order by g.created_at desc, g.id desc limit ${filter.limit}`;
  const { rows } = await ctx.db.execute<ResultRow>(sql`
    select ${resultColumns} from generations g join generation_results r on r.generation_id = g.id
    where g.id in (${page}) order by g.created_at desc, g.id desc, r.position`);
  return group(rows, ctx);
}
