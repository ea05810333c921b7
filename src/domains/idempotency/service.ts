import { sql } from "drizzle-orm";
import type { ServiceContext } from "../../context.js";

export const IDEMPOTENCY_TTL_HOURS = 24;

/** Drops keys past their 24 hours (cron). */
export async function deleteExpiredIdempotencyKeys(ctx: ServiceContext): Promise<number> {
  const expired = new Date(ctx.clock().getTime() - IDEMPOTENCY_TTL_HOURS * 3600_000);
  const { rowCount } = await ctx.db.execute(
    sql`delete from idempotency_keys where created_at < ${expired}`,
  );
  return rowCount ?? 0;
}
