import { sql } from "drizzle-orm";
import type { ServiceContext } from "../../context.js";
import { AppError } from "../../errors.js";
import { signResource } from "../../lib/signed-urls.js";
import type { NetworkScope } from "../accounts/caller.js";
import { type Download, storedDownload } from "../storage/downloads.js";

export const outputResource = (generationId: string, model: string) =>
  `output:${generationId}:${model}`;
/** How long a result's public URL works; each status read hands out a fresh one. */
export const OUTPUT_URL_TTL_SECONDS = 24 * 3600;

/** A completed result's download URL, signed so it opens without the API key. */
export function outputUrl(
  ctx: Pick<ServiceContext, "config" | "clock">,
  generationId: string,
  model: string,
): string {
  const signature = signResource(
    ctx.config,
    outputResource(generationId, model),
    ctx.clock(),
    OUTPUT_URL_TTL_SECONDS,
  );
  return `${ctx.config.http.publicUrl}/v1/download?id=${encodeURIComponent(generationId)}&model=${encodeURIComponent(model)}&${signature}`;
}

/** Where a completed result's output is stored, and its type: to its owner, or through a signed URL. */
export async function findOutput(
  ctx: ServiceContext,
  owner: NetworkScope | "signed",
  generationId: string,
  model: string,
): Promise<{ key: string; contentType: string }> {
  const { rows } = await ctx.db.execute<{
    output_key: string | null;
    content_type: string | null;
    status: string;
  }>(sql`
    select r.output_key, r.content_type, r.status::text from generations g join generation_results r on r.generation_id = g.id
    where g.id = ${generationId} and r.model = ${model}
      ${owner === "signed" ? sql`` : sql`and g.account_id = ${owner.accountId} and g.network = ${owner.network}::network`}`);
  const row = rows[0];
  if (row?.status !== "completed") {
    throw new AppError("not_found", "No finished output for that generation and model.");
  }
  // A completed result without its key is one whose output the retention sweep deleted.
  if (!row.output_key) throw outputExpired(ctx);
  return { key: row.output_key, contentType: row.content_type ?? "application/octet-stream" };
}

const outputExpired = (ctx: Pick<ServiceContext, "config">) => {
  const days = ctx.config.storage.outputRetentionDays;
  return new AppError(
    "output_expired",
    `The output was deleted after the retention period${days === undefined ? "" : ` of ${days} day${days === 1 ? "" : "s"}`}.`,
  );
};

/** A completed result's stored output (its bytes and type): to its owner, or through a signed URL. */
export async function readOutput(
  ctx: ServiceContext,
  owner: NetworkScope | "signed",
  generationId: string,
  model: string,
): Promise<{ bytes: Buffer; contentType: string }> {
  const { key, contentType } = await findOutput(ctx, owner, generationId, model);
  const bytes = await ctx.storage.get(key);
  if (!bytes) throw outputGone();
  return { bytes, contentType };
}

/** A completed result's download: its bytes, or a presigned URL of them (STORAGE_DOWNLOADS). */
export async function downloadOutput(
  ctx: ServiceContext,
  owner: NetworkScope | "signed",
  generationId: string,
  model: string,
): Promise<Download> {
  const { key, contentType } = await findOutput(ctx, owner, generationId, model);
  return storedDownload(ctx, key, contentType, outputGone);
}

const outputGone = () => new AppError("not_found", "The output is no longer stored.");

/**
 * Deletes from storage the outputs of results that finished more than OUTPUT_RETENTION_DAYS
 * ago, and marks each such result by clearing its key: its download then answers 410
 * output_expired. The object goes first, so a crash in between leaves a key whose object is
 * gone, which the next sweep deletes again (a missing object is no error) and clears. Returns
 * how many it expired; nothing when no retention is configured.
 */
export async function expireOldOutputs(ctx: ServiceContext, limit = 500): Promise<number> {
  const days = ctx.config.storage.outputRetentionDays;
  if (days === undefined) return 0;
  const cutoff = new Date(ctx.clock().getTime() - days * 24 * 3600 * 1000);
  let expired = 0;
  for (;;) {
    const { rows } = await ctx.db.execute<{ id: string; output_key: string }>(sql`
      select id, output_key from generation_results
      where status = 'completed' and output_key is not null and finished_at < ${cutoff}
      order by finished_at limit ${limit}`);
    for (const row of rows) {
      await ctx.storage.delete(row.output_key);
      await ctx.db.execute(sql`
        update generation_results set output_key = null
        where id = ${row.id} and output_key = ${row.output_key}`);
    }
    expired += rows.length;
    if (rows.length < limit) break;
  }
  if (expired) ctx.logger.info({ expired, retentionDays: days }, "expired outputs deleted");
  return expired;
}
