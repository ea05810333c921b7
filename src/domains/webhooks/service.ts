import { createHmac, randomBytes } from "node:crypto";
import { eq, sql } from "drizzle-orm";
import type { ServiceContext } from "../../context.js";
import { AppError } from "../../errors.js";
import { enqueue, enqueueSql } from "../../jobs/definitions.js";
import { newId } from "../../lib/ids.js";
import { safeFetch } from "../../lib/safe-fetch.js";
import {
  getGenerationForWebhook,
  type SettledResult,
  type SettlementHooks,
} from "../generations/settlement.js";
import { generationJson } from "../generations/wire.js";
import { webhookSecrets } from "./schema.js";

/**
 * Webhooks per the Standard Webhooks spec (standardwebhooks.com): each terminal generation is
 * one message, POSTed with `webhook-id` (the same on every attempt), `webhook-timestamp` and
 * `webhook-signature` = `v1,` + base64 HMAC-SHA256 of `id.timestamp.body`, keyed with the
 * account's `whsec_` secret. Only a 2xx counts; redirects are not followed; failures are
 * retried by graphile-worker on a growing delay for well over a day.
 */

export const MAX_WEBHOOK_ATTEMPTS = 11;
const MAX_RETRY_DELAY_MS = 12 * 3600_000;
/** After a rotation the old secret still signs, so receivers can switch without losing events. */
export const PREVIOUS_SECRET_GRACE_MS = 24 * 3600_000;

const newSecret = () => `whsec_${randomBytes(24).toString("base64")}`;

/** The account's signing secret, made on first use. */
export async function getWebhookSecret(ctx: ServiceContext, accountId: string) {
  await ctx.db
    .insert(webhookSecrets)
    .values({ accountId, secret: newSecret(), createdAt: ctx.clock() })
    .onConflictDoNothing();
  const [row] = await ctx.db
    .select()
    .from(webhookSecrets)
    .where(eq(webhookSecrets.accountId, accountId));
  if (!row) throw new Error("webhook secret vanished");
  return row;
}

/** A new secret; the current one keeps signing (alongside) for a day. */
export async function rotateWebhookSecret(ctx: ServiceContext, accountId: string) {
  const now = ctx.clock();
  const [row] = await ctx.db
    .insert(webhookSecrets)
    .values({ accountId, secret: newSecret(), createdAt: now, rotatedAt: now })
    .onConflictDoUpdate({
      target: webhookSecrets.accountId,
      set: {
        previousSecret: sql`${webhookSecrets.secret}`,
        previousValidUntil: new Date(now.getTime() + PREVIOUS_SECRET_GRACE_MS),
        secret: sql`excluded.secret`,
        rotatedAt: now,
      },
    })
    .returning();
  if (!row) throw new Error("webhook secret not stored");
  return row;
}

export function secretView(row: typeof webhookSecrets.$inferSelect, now: Date) {
  const previousActive = row.previousValidUntil !== null && row.previousValidUntil > now;
  return {
    secret: row.secret,
    createdAt: row.rotatedAt ?? row.createdAt,
    previousSecretValidUntil: previousActive ? row.previousValidUntil : null,
  };
}

/** The `webhook-signature` header: one `v1,` signature per secret, space-separated. */
export function signWebhook(secrets: string[], id: string, timestamp: number, body: string) {
  return secrets
    .map((secret) => {
      const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
      return `v1,${createHmac("sha256", key).update(`${id}.${timestamp}.${body}`).digest("base64")}`;
    })
    .join(" ");
}

/**
 * Run in the transaction that settles one of a generation's results (a settlement hook): when
 * the generation has a webhook URL and that was its last open result, records its one message
 * and queues the delivery. generationFinished locks the generation's row first, so of two
 * results settling at once the second sees the first and exactly one of them queues the
 * message (and the unique generation_id of a message makes a second one impossible anyway).
 * A generation without a webhook is not locked.
 */
export async function queueWebhookIfFinished(
  tx: ServiceContext,
  settled: SettledResult,
): Promise<void> {
  if (!settled.webhookUrl || !(await settled.generationFinished())) return;
  await tx.db.execute(sql`
    with message as (
      insert into webhook_deliveries (id, generation_id, account_id, url, created_at)
      values (${newId("msg")}, ${settled.generationId}, ${settled.accountId}, ${settled.webhookUrl}, ${tx.clock()})
      on conflict (generation_id) do nothing
      returning id)
    select ${enqueueSql("deliver_webhook", { deliveryId: sql`id` }, { jobKey: sql`id` })}
    from message`);
}

/** What the webhooks domain does when a result settles (registered in createAppContext). */
export const webhookSettlementHooks: Partial<SettlementHooks> = {
  onResultSettled: [queueWebhookIfFinished],
};

/**
 * Messages whose retry chain broke (the delivery job itself failed 5 times, say on a database
 * outage) are queued again. The job key is the message id and existing jobs keep their run
 * time, so a healthy chain is never doubled or hurried.
 */
export async function requeueStalledWebhooks(ctx: ServiceContext, limit = 500): Promise<number> {
  const stalledBefore = new Date(ctx.clock().getTime() - 10 * 60_000);
  const { rows } = await ctx.db.execute<{ id: string }>(sql`
    select ${enqueueSql("deliver_webhook", { deliveryId: sql`d.id` }, { jobKey: sql`d.id`, jobKeyMode: "preserve_run_at" })},
           d.id
    from webhook_deliveries d
    where d.status = 'pending' and coalesce(d.next_attempt_at, d.created_at) < ${stalledBefore}
      and not exists (select 1 from graphile_worker.jobs j where j.key = d.id and j.attempts < j.max_attempts)
    limit ${limit}`);
  if (rows.length)
    ctx.logger.warn({ requeued: rows.length }, "stalled webhook deliveries requeued");
  return rows.length;
}

/** Delay before attempt n+1 after n failed ones: base·4^(n-1), capped at 12 h, ±10% jitter. */
export function retryDelayMs(baseMs: number, failedAttempts: number): number {
  const delay = Math.min(baseMs * 4 ** (failedAttempts - 1), MAX_RETRY_DELAY_MS);
  return Math.round(delay * (0.9 + Math.random() * 0.2));
}

type DeliveryOutcome = "delivered" | "retrying" | "failed" | "skipped";

/** One attempt at a message (the deliver_webhook job). */
export async function deliverWebhook(
  ctx: ServiceContext,
  deliveryId: string,
): Promise<DeliveryOutcome> {
  const { rows } = await ctx.db.execute<{
    url: string;
    attempts: number;
    status: string;
    account_id: string;
    generation_id: string;
  }>(sql`
    select url, attempts, status, account_id, generation_id from webhook_deliveries
    where id = ${deliveryId}`);
  const delivery = rows[0];
  if (delivery?.status !== "pending") return "skipped";

  const now = ctx.clock();
  const generation = await getGenerationForWebhook(ctx, {
    generationId: delivery.generation_id,
    accountId: delivery.account_id,
  });
  if (!generation) return "skipped";
  const keys = await getWebhookSecret(ctx, delivery.account_id);
  const secrets = [keys.secret];
  if (keys.previousSecret && secretView(keys, now).previousSecretValidUntil)
    secrets.push(keys.previousSecret);

  const timestamp = Math.floor(now.getTime() / 1000);
  const body = JSON.stringify({
    type: `generation.${generation.status}`,
    timestamp: now.toISOString(),
    data: generationJson(generation),
  });
  let statusCode: number | null = null;
  let error: string | null = null;
  try {
    const res = await safeFetch(delivery.url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "user-agent": "Polyforge-Webhooks/1.0",
        "webhook-id": deliveryId,
        "webhook-timestamp": String(timestamp),
        "webhook-signature": signWebhook(secrets, deliveryId, timestamp, body),
      },
      body,
      maxBytes: 1024 * 1024,
      timeoutMs: ctx.config.webhooks.timeoutMs,
      followRedirects: false,
      allowHosts: ctx.config.ssrfAllowHosts,
    });
    statusCode = res.status;
    if (res.status < 200 || res.status >= 300) error = `answered ${res.status}`;
  } catch (err) {
    error = err instanceof AppError ? err.message : "the request failed";
  }

  const attempts = delivery.attempts + 1;
  const outcome: DeliveryOutcome =
    error === null ? "delivered" : attempts >= MAX_WEBHOOK_ATTEMPTS ? "failed" : "retrying";
  const nextAt =
    outcome === "retrying"
      ? new Date(now.getTime() + retryDelayMs(ctx.config.webhooks.retryBaseMs, attempts))
      : null;
  await ctx.db.transaction(async (tx) => {
    const { rowCount } = await tx.execute(sql`
      update webhook_deliveries
      set attempts = ${attempts}, status = ${outcome === "retrying" ? "pending" : outcome},
          last_status_code = ${statusCode}, last_error = ${error?.slice(0, 500) ?? null},
          next_attempt_at = ${nextAt}, delivered_at = ${outcome === "delivered" ? now : null}
      where id = ${deliveryId} and status = 'pending' and attempts = ${delivery.attempts}`);
    // The next attempt is a new job, queued with this update or not at all.
    if (rowCount && nextAt) {
      await enqueue(tx, "deliver_webhook", { deliveryId }, { runAt: nextAt, jobKey: deliveryId });
    }
  });
  ctx.logger.info({ deliveryId, attempts, statusCode, outcome }, "webhook attempt");
  return outcome;
}
