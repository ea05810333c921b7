import { sql } from "drizzle-orm";
import type { RequestHandler } from "express";
import type { ServiceContext } from "../context.js";
import { IDEMPOTENCY_TTL_HOURS } from "../domains/idempotency/service.js";
import { AppError } from "../errors.js";
import { sha256Hex } from "../lib/secrets.js";
import { callerOf } from "./auth.js";

const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

/** JSON with sorted keys, so the same body always hashes the same. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) =>
      a < b ? -1 : 1,
    );
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

/**
 * `Idempotency-Key` on a POST that creates something. Per account and network, kept 24 hours:
 * the same key and body replay the first successful response; the same key with another body
 * is 422 idempotency_key_reused; while the first is still running, 409. A failed first attempt
 * frees the key, so the client can retry it. (Routes that charge also store the key with what
 * they create, in the same transaction, so even a crash here cannot make a second charge.)
 */
export function idempotent(ctx: ServiceContext): RequestHandler {
  return async (req, res, next) => {
    const key = req.get("idempotency-key");
    if (key === undefined) return next();
    if (!KEY_PATTERN.test(key)) {
      throw new AppError(
        "invalid_request",
        "Idempotency-Key must be 1–255 visible ASCII characters.",
      );
    }
    const caller = callerOf(req);
    const owner = `${caller.accountId}:${caller.kind === "api_key" ? caller.network : "session"}`;
    const hash = sha256Hex(`${req.method} ${req.path}\n${canonical(req.body ?? null)}`);
    const now = ctx.clock();
    const expired = new Date(now.getTime() - IDEMPOTENCY_TTL_HOURS * 3600_000);

    await ctx.db.execute(
      sql`delete from idempotency_keys where account_id = ${owner} and key = ${key} and created_at < ${expired}`,
    );
    const { rows: inserted } = await ctx.db.execute(sql`
      insert into idempotency_keys (account_id, key, request_hash, created_at) values (${owner}, ${key}, ${hash}, ${now})
      on conflict do nothing returning key`);
    if (inserted.length === 0) {
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
      res.status(first.status_code).set("Idempotent-Replayed", "true").json(first.response);
      return;
    }

    // Keep the first successful answer; forget a failed one so a retry can run again.
    const send = res.json.bind(res);
    res.json = (body: unknown) => {
      const stored =
        res.statusCode < 300
          ? ctx.db.execute(sql`update idempotency_keys set status_code = ${res.statusCode}, response = ${JSON.stringify(body)}::jsonb
                               where account_id = ${owner} and key = ${key}`)
          : ctx.db.execute(
              sql`delete from idempotency_keys where account_id = ${owner} and key = ${key}`,
            );
      stored.then(
        () => send(body),
        (err: unknown) => {
          ctx.logger.error({ err }, "could not record an idempotent response");
          send(body);
        },
      );
      return res;
    };
    next();
  };
}
