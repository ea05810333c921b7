import { sql } from "drizzle-orm";
import type { Executor } from "../../db/client.js";

/** The worker task that moves a workflow run forward (src/jobs/tasks.ts). */
export const ADVANCE_WORKFLOW_RUN_TASK = "advance_workflow_run";

/** One pending advance per run: a newer one replaces a queued one, and follows a running one. */
export const advanceJobKey = (runId: string) => `${ADVANCE_WORKFLOW_RUN_TASK}:${runId}`;

/**
 * Called by the generations domain in the transaction that settles one of a generation's
 * results: when the generation is a workflow step, its run's advance is queued in that same
 * transaction, so a settled step can never be left without an advance. Otherwise it does
 * nothing (one indexed lookup).
 */
export async function queueWorkflowAdvance(db: Executor, generationId: string): Promise<void> {
  await db.execute(sql`
    select graphile_worker.add_job(${ADVANCE_WORKFLOW_RUN_TASK}, json_build_object('runId', run_id),
                                   job_key => ${`${ADVANCE_WORKFLOW_RUN_TASK}:`} || run_id, max_attempts => 25)
    from workflow_run_steps where generation_id = ${generationId}`);
}
