import { sql } from "drizzle-orm";
import type { ServiceContext } from "../../context.js";
import { sha256Hex } from "../../lib/secrets.js";

export const IDEMPOTENCY_TTL_HOURS = 24;
/** An in-flight record older than this is presumed abandoned (its process died). */
export const IDEMPOTENCY_LEASE_SECONDS = 60;

/** JSON with sorted keys, so the same body always hashes the same. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) =>
      a < b ? -1 : 1,
    );
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

export const requestHash = (method: string, path: string, body: unknown) =>
  sha256Hex(`${method} ${path}\n${canonicalJson(body ?? null)}`);

/** Drops keys past their 24 hours (cron). */
export async function deleteExpiredIdempotencyKeys(ctx: ServiceContext): Promise<number> {
  const expired = new Date(ctx.clock().getTime() - IDEMPOTENCY_TTL_HOURS * 3600_000);
  const { rowCount } = await ctx.db.execute(
    sql`delete from idempotency_keys where created_at < ${expired}`,
  );
  return rowCount ?? 0;
}
