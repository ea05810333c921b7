import { sql } from "drizzle-orm";
import type { ServiceContext } from "../../context.js";
import { AppError } from "../../errors.js";
import { signResource } from "../../lib/signed-urls.js";
import type { NetworkScope } from "../accounts/caller.js";
import { deleteScheduled, forgetAndDelete } from "../storage/deletions.js";
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
 * Expires the outputs of results that finished more than OUTPUT_RETENTION_DAYS ago: one
 * statement clears each result's key and sets output_expired_at (its download then answers
 * 410 output_expired, its status shows no URL), and the same transaction schedules the object
 * for deletion; the objects are deleted only after that commits. So no result ever points at
 * a deleted object, and an object whose delete fails is retried by the next sweep (see
 * storage/deletions.ts). Keys are unique per result and run (`<generation>/<position>-<run>`),
 * so a scheduled key is never one a later run writes. Returns how many results it expired;
 * nothing is expired when no retention is configured, but earlier scheduled deletes still run.
 */
export async function expireOldOutputs(ctx: ServiceContext, limit = 500): Promise<number> {
  const days = ctx.config.storage.outputRetentionDays;
  if (days === undefined) {
    await deleteScheduled(ctx);
    return 0;
  }
  const now = ctx.clock();
  const cutoff = new Date(now.getTime() - days * 24 * 3600 * 1000);
  const expired = await forgetAndDelete(ctx, limit, async (db) => {
    // Served by generation_results_output_finished_idx; skip locked lets a second sweep (or a
    // slow one) take other rows instead of waiting.
    const { rows } = await db.execute<{ output_key: string }>(sql`
      with picked as (
        select id, output_key from generation_results
        where output_key is not null and status = 'completed' and finished_at < ${cutoff}
        order by finished_at limit ${limit} for update skip locked)
      update generation_results r set output_key = null, output_expired_at = ${now}
      from picked where r.id = picked.id
      returning picked.output_key`);
    return rows.map((r) => r.output_key);
  });
  if (expired) ctx.logger.info({ expired, retentionDays: days }, "outputs expired");
  return expired;
}
