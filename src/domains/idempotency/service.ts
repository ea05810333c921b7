import { sql } from "drizzle-orm";
import type { ServiceContext } from "../../context.js";
import { AppError } from "../../errors.js";
import { creditsToJson } from "../../lib/credits.js";
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
    } else if (typeof v === "bigint") {
      // A parsed body's bigint is a credit amount in ledger units: hashed as the credits the
      // caller sent, so a key's hash is what it was before the ledger's unit changed.
      out.push(JSON.stringify(creditsToJson(v)));
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

/** Whose key it is: an account on one network (or its session), as the HTTP layer names it. */
export interface IdempotencyClaim {
  owner: string;
  key: string;
  /** requestHash of what the request asks. */
  hash: string;
}

/** The first successful answer to a key, replayed to every later request with it. */
export interface StoredAnswer {
  statusCode: number;
  response: unknown;
}

/**
 * Claims a key for a request about to run: `claimed` when this request is now the first (its
 * record in flight), or the first request's stored answer to replay. A key past its 24 hours
 * is free again, and an in-flight record past its lease was abandoned by a process that died
 * and is taken over (routes that charge check their own records too). The same key with
 * another body is 422 idempotency_key_reused; while the first still runs, 409.
 */
export async function claimIdempotencyKey(
  ctx: ServiceContext,
  claim: IdempotencyClaim,
): Promise<"claimed" | StoredAnswer> {
  const { owner, key, hash } = claim;
  const now = ctx.clock();
  const expired = new Date(now.getTime() - IDEMPOTENCY_TTL_HOURS * 3600_000);
  const leaseExpired = new Date(now.getTime() - IDEMPOTENCY_LEASE_SECONDS * 1000);
  await ctx.db.execute(sql`
    delete from idempotency_keys where account_id = ${owner} and key = ${key}
      and (created_at < ${expired} or (status_code is null and created_at < ${leaseExpired}))`);
  const { rows: inserted } = await ctx.db.execute(sql`
    insert into idempotency_keys (account_id, key, request_hash, created_at) values (${owner}, ${key}, ${hash}, ${now})
    on conflict do nothing returning key`);
  if (inserted.length > 0) return "claimed";
  const { rows } = await ctx.db.execute<{
    request_hash: string;
    status_code: number | null;
    response: unknown;
  }>(sql`
    select request_hash, status_code, response from idempotency_keys where account_id = ${owner} and key = ${key}`);
  const first = rows[0];
  if (!first)
    throw new AppError(
      "idempotency_key_in_flight",
      "That Idempotency-Key is in use; retry shortly.",
    );
  if (first.request_hash !== hash) {
    throw new AppError(
      "idempotency_key_reused",
      "That Idempotency-Key was used with a different request.",
    );
  }
  if (first.status_code === null) {
    throw new AppError(
      "idempotency_key_in_flight",
      "A request with that Idempotency-Key is still in progress.",
    );
  }
  return { statusCode: first.status_code, response: first.response };
}

/** Keeps the claimed key's first successful answer, for replays. */
export async function completeIdempotencyKey(
  ctx: ServiceContext,
  claim: Pick<IdempotencyClaim, "owner" | "key">,
  answer: StoredAnswer,
): Promise<void> {
  await ctx.db.execute(sql`
    update idempotency_keys set status_code = ${answer.statusCode}, response = ${JSON.stringify(answer.response)}::jsonb
    where account_id = ${claim.owner} and key = ${claim.key}`);
}

/** Forgets a claimed key whose request failed, so a retry with it runs again. */
export async function releaseIdempotencyKey(
  ctx: ServiceContext,
  claim: Pick<IdempotencyClaim, "owner" | "key">,
): Promise<void> {
  await ctx.db.execute(
    sql`delete from idempotency_keys where account_id = ${claim.owner} and key = ${claim.key}`,
  );
}
