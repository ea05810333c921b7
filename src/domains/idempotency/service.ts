import { sql } from "drizzle-orm";
import type { ServiceContext } from "../../context.js";
import { sha256Hex } from "../../lib/secrets.js";

export const IDEMPOTENCY_TTL_HOURS = 24;
/** An in-flight record older than this is presumed abandoned (its process died). */
export const IDEMPOTENCY_LEASE_SECONDS = 60;

type Work = { token: string } | { value: unknown };

/**
 * JSON with sorted keys, so the same body always hashes the same. Built with its own stack
 * rather than recursion: no body, however deep, can overflow the call stack here.
 */
export function canonicalJson(value: unknown): string {
  const out: string[] = [];
  const work: Work[] = [{ value }];
  for (let item = work.pop(); item; item = work.pop()) {
    if ("token" in item) {
      out.push(item.token);
      continue;
    }
    const v = item.value;
    // What follows is pushed in reverse, so it comes off the stack in order.
    if (Array.isArray(v)) {
      work.push({ token: "]" });
      for (let i = v.length - 1; i >= 0; i--) {
        work.push({ value: v[i] });
        if (i > 0) work.push({ token: "," });
      }
      work.push({ token: "[" });
    } else if (v && typeof v === "object") {
      const entries = Object.entries(v as Record<string, unknown>).sort(([a], [b]) =>
        a < b ? -1 : 1,
      );
      work.push({ token: "}" });
      for (let i = entries.length - 1; i >= 0; i--) {
        const [k, child] = entries[i] as [string, unknown];
        work.push({ value: child });
        work.push({ token: `${i > 0 ? "," : ""}${JSON.stringify(k)}:` });
      }
      work.push({ token: "{" });
    } else {
      out.push(JSON.stringify(v) ?? "null");
    }
  }
  return out.join("");
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
