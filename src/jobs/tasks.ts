import type { Task, TaskList } from "graphile-worker";
import type { AppContext } from "../context.js";
import { deleteExpiredSignInState } from "../domains/accounts/signin.js";
import { expireOldOutputs } from "../domains/generations/outputs.js";
import { runResult, sweepStrandedResults } from "../domains/generations/run.js";
import { deleteExpiredIdempotencyKeys } from "../domains/idempotency/service.js";
import { expireHolds } from "../domains/ledger/service.js";
import { reconcilePayments, resolvePayment } from "../domains/payments/reconcile.js";
import { reconcilePayouts } from "../domains/payouts/service.js";
import { purgeRateLimitCounters } from "../domains/ratelimits/service.js";
import { deliverWebhook, requeueStalledWebhooks } from "../domains/webhooks/service.js";
import { advanceWorkflowRun } from "../domains/workflows/service.js";
import { parseJobPayload, type TaskName } from "./definitions.js";

/**
 * The worker's task list. Each task is a thin call into a domain service; tasks run at least
 * once, so every service called here is idempotent. Names and payload schemas are declared in
 * definitions.ts: every task declared there has its handler here, and no other.
 */
export function taskList(ctx: AppContext): TaskList {
  const tasks: { [T in TaskName]: Task } = {
    auth_cleanup: async (_payload, helpers) => {
      const removed = await deleteExpiredSignInState(ctx);
      helpers.logger.debug("expired sign-in state removed", removed);
      await deleteExpiredIdempotencyKeys(ctx);
    },
    rate_limits_purge: async () => {
      await purgeRateLimitCounters(ctx);
    },
    run_generation: async (payload) => {
      // Queued jobs may carry an old shape: check it again at run time.
      const { resultId } = parseJobPayload("run_generation", payload);
      await runResult(ctx, ctx.generations, resultId);
    },
    advance_workflow_run: async (payload) => {
      const { runId } = parseJobPayload("advance_workflow_run", payload);
      await advanceWorkflowRun(ctx, runId);
    },
    deliver_webhook: async (payload) => {
      const { deliveryId } = parseJobPayload("deliver_webhook", payload);
      await deliverWebhook(ctx, deliveryId);
    },
    webhooks_requeue: async () => {
      await requeueStalledWebhooks(ctx);
    },
    generations_sweep: async () => {
      await sweepStrandedResults(ctx);
    },
    outputs_retention: async () => {
      await expireOldOutputs(ctx);
    },
    resolve_payment: async (payload) => {
      const { paymentId } = parseJobPayload("resolve_payment", payload);
      const resolution = await resolvePayment(ctx, paymentId);
      // Thrown so graphile-worker retries with its backoff; reconciliation also keeps trying.
      if (resolution === "waiting") throw new Error(`payment ${paymentId} is not decided yet`);
    },
    payments_reconcile: async () => {
      for (const network of ctx.payments.networks()) {
        const report = await reconcilePayments(ctx, network);
        const log = report.ok
          ? ctx.logger.info.bind(ctx.logger)
          : ctx.logger.error.bind(ctx.logger);
        log(
          { report },
          report.ok ? "payments reconcile with the chain" : "payments differ from the chain",
        );
      }
    },
    payouts_reconcile: async () => {
      // Payouts a crash or an unanswered RPC left pending or broadcast, decided from the chain.
      await reconcilePayouts(ctx);
    },
    ledger_expire_holds: async () => {
      // Drain in batches, so a backlog after downtime clears in one run.
      while ((await expireHolds(ctx, 500)) === 500) {}
    },
  };
  return tasks;
}
