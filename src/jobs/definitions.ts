import { is, SQL, sql } from "drizzle-orm";
import { z } from "zod";

/**
 * Every worker task, declared once: its name, and for a queued task the schema of its payload
 * and how many attempts it gets. Domains enqueue through `enqueue`/`enqueueSql` below, inside
 * their own transaction; the task list (tasks.ts) parses each payload again with the same
 * schema at run time, because a queued job can carry the shape of an older release.
 *
 * This module imports no domain, so any domain can import it without a loop through the task
 * list, which imports them all.
 */
const id = z.string().min(1);

export const queuedTasks = {
  /** Runs one model's result of a generation (generations/run.ts). */
  run_generation: { payload: z.object({ resultId: id }), maxAttempts: 10 },
  /** Moves a workflow run forward after one of its steps settled (workflows/service.ts). */
  advance_workflow_run: { payload: z.object({ runId: id }), maxAttempts: 25 },
  /** One attempt at a webhook message; the next attempt is a new job (webhooks/service.ts). */
  deliver_webhook: { payload: z.object({ deliveryId: id }), maxAttempts: 5 },
  /** Decides from the chain a payment whose settlement outcome is unknown (payments/reconcile.ts). */
  resolve_payment: { payload: z.object({ paymentId: id }), maxAttempts: 25 },
} as const;

/** Recurring tasks and their schedules, in graphile-worker's crontab format. */
export const recurringTasks = {
  auth_cleanup: "*/15 * * * *",
  ledger_expire_holds: "* * * * *",
  generations_sweep: "* * * * *",
  webhooks_requeue: "*/5 * * * *",
  payments_reconcile: "*/10 * * * *",
  payouts_reconcile: "* * * * *",
  rate_limits_purge: "*/5 * * * *",
  /**
   * Deletes outputs older than OUTPUT_RETENTION_DAYS (when set), and retries deletes that
   * failed.
   */
  outputs_retention: "23 * * * *",
} as const;

export type QueuedTask = keyof typeof queuedTasks;
export type RecurringTask = keyof typeof recurringTasks;
export type TaskName = QueuedTask | RecurringTask;
export type JobPayload<T extends QueuedTask> = z.infer<(typeof queuedTasks)[T]["payload"]>;

/** The crontab graphile-worker runs, one line per recurring task. */
export const crontab = Object.entries(recurringTasks)
  .map(([task, schedule]) => `${schedule} ${task}`)
  .join("\n");

/** A queued job's payload checked against its task's schema (throws a ZodError otherwise). */
export function parseJobPayload<T extends QueuedTask>(task: T, payload: unknown): JobPayload<T> {
  return queuedTasks[task].payload.parse(payload) as JobPayload<T>;
}

/**
 * A payload given as SQL expressions, one per field, evaluated per row of the statement the
 * job is queued from (say `{ resultId: sql\`id\` }` over the rows an insert returns). Its field
 * names are checked here; the values they take are checked by the tests that queue them.
 */
export type JobPayloadSql<T extends QueuedTask> = { [K in keyof JobPayload<T>]-?: SQL };

export interface EnqueueOptions {
  /** graphile-worker's job_key: a second job with the same key replaces the queued one. */
  jobKey?: string | SQL;
  /** `preserve_run_at`: a replaced job keeps its run time. Default `replace`. */
  jobKeyMode?: "replace" | "preserve_run_at";
  /** When the job may run; default now. */
  runAt?: Date | SQL;
}

/**
 * `graphile_worker.add_job(...)` for one task, as a fragment of a statement:
 * `select ${enqueueSql(...)} from rows`, so the job commits or rolls back with that statement's
 * transaction. A payload of values is checked against the schema here.
 */
export function enqueueSql<T extends QueuedTask>(
  task: T,
  payload: JobPayload<T> | JobPayloadSql<T>,
  options: EnqueueOptions = {},
): SQL {
  const args: SQL[] = [sql`${task}::text`, payloadSql(task, payload)];
  if (options.runAt !== undefined) args.push(sql`run_at => (${options.runAt})::timestamptz`);
  args.push(sql`max_attempts => ${queuedTasks[task].maxAttempts}::int`);
  if (options.jobKey !== undefined) args.push(sql`job_key => (${options.jobKey})::text`);
  if (options.jobKeyMode !== undefined) {
    args.push(sql`job_key_mode => ${options.jobKeyMode}::text`);
  }
  return sql`graphile_worker.add_job(${sql.join(args, sql`, `)})`;
}

/** Anything that runs a statement: the database or the caller's transaction. */
export interface SqlExecutor {
  execute(query: SQL): Promise<unknown>;
}

/** Queues one job inside the caller's transaction (or on its own with the database). */
export async function enqueue<T extends QueuedTask>(
  db: SqlExecutor,
  task: T,
  payload: JobPayload<T>,
  options: EnqueueOptions = {},
): Promise<void> {
  await db.execute(sql`select ${enqueueSql(task, payload, options)}`);
}

function payloadSql<T extends QueuedTask>(task: T, payload: JobPayload<T> | JobPayloadSql<T>): SQL {
  const fields = Object.entries(payload);
  if (fields.length > 0 && fields.every(([, value]) => is(value, SQL))) {
    return sql`json_build_object(${sql.join(
      fields.map(([name, value]) => sql`${name}::text, ${value}`),
      sql`, `,
    )})`;
  }
  return sql`${JSON.stringify(parseJobPayload(task, payload))}::json`;
}
