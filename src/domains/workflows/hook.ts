import { sql } from "drizzle-orm";
import type { Executor } from "../../db/client.js";
import { enqueue, enqueueSql } from "../../jobs/definitions.js";
import type { SettlementHooks } from "../generations/settlement.js";

/**
 * Called by the generations domain in the transaction that settles one of a generation's
 * results: when the generation is a workflow step, its run's advance is queued in that same
 * transaction, so a settled step can never be left without an advance. Otherwise it does
 * nothing (one indexed lookup).
 *
 * One job per settlement, deliberately without a job_key: graphile-worker's key replacement
 * has a window where a job being locked by a worker absorbs the new one (its ON CONFLICT ...
 * WHERE locked_at IS NULL turns false once that lock commits), and the advance that started
 * before this transaction committed would then be the last one, blind to this result. Extra
 * advances cost a lock and a read: advancing is idempotent and serialized per run.
 */
export async function queueWorkflowAdvance(db: Executor, generationId: string): Promise<void> {
  await db.execute(sql`
    select ${enqueueSql("advance_workflow_run", { runId: sql`run_id` })}
    from workflow_run_steps where generation_id = ${generationId}`);
}

/** What the workflows domain does when a result settles (registered in createAppContext). */
export const workflowSettlementHooks: Partial<SettlementHooks> = {
  onResultSettled: [(tx, settled) => queueWorkflowAdvance(tx.db, settled.generationId)],
};

/** Queues an advance of one run, inside the caller's transaction. */
export async function queueRunAdvance(db: Executor, runId: string): Promise<void> {
  await enqueue(db, "advance_workflow_run", { runId });
}
