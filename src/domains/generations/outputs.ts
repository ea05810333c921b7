import { sql } from "drizzle-orm";
import type { ServiceContext } from "../../context.js";
import { AppError } from "../../errors.js";
import { signResource } from "../../lib/signed-urls.js";
import type { NetworkScope } from "../accounts/caller.js";

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

/** A completed result's stored output (its bytes and type): to its owner, or through a signed URL. */
export async function readOutput(
  ctx: ServiceContext,
  owner: NetworkScope | "signed",
  generationId: string,
  model: string,
): Promise<{ bytes: Buffer; contentType: string }> {
  const { rows } = await ctx.db.execute<{
    output_key: string | null;
    content_type: string | null;
    status: string;
  }>(sql`
    select r.output_key, r.content_type, r.status::text from generations g join generation_results r on r.generation_id = g.id
    where g.id = ${generationId} and r.model = ${model}
      ${owner === "signed" ? sql`` : sql`and g.account_id = ${owner.accountId} and g.network = ${owner.network}::network`}`);
  const row = rows[0];
  if (row?.status !== "completed" || !row.output_key) {
    throw new AppError("not_found", "No finished output for that generation and model.");
  }
  const bytes = await ctx.storage.get(row.output_key);
  if (!bytes) throw new AppError("not_found", "The output is no longer stored.");
  return { bytes, contentType: row.content_type ?? "application/octet-stream" };
}
