import type { TaskList } from "graphile-worker";
import { z } from "zod";
import type { AppContext } from "../context.js";
import { deleteExpiredSignInState } from "../domains/accounts/signin.js";
import { runResult, sweepStrandedResults } from "../domains/generations/run.js";
import { deleteExpiredIdempotencyKeys } from "../domains/idempotency/service.js";
import { expireHolds } from "../domains/ledger/service.js";
import { reconcilePayments, resolvePayment } from "../domains/payments/reconcile.js";
import { reconcilePayouts } from "../domains/payouts/service.js";
import { purgeRateLimitCounters } from "../domains/ratelimits/service.js";
import { deliverWebhook, requeueStalledWebhooks } from "../domains/webhooks/service.js";
import { advanceWorkflowRun } from "../domains/workflows/service.js";

/**
 * The worker's task list. Each task is a thin call into a domain service; tasks run at least
 * once, so every service called here is idempotent.
 */
export function taskList(ctx: AppContext): TaskList {
  return {
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
      const { resultId } = runGenerationPayload.parse(payload);
      await runResult(ctx, ctx.generations, resultId);
    },
    advance_workflow_run: async (payload) => {
      const { runId } = advanceWorkflowRunPayload.parse(payload);
      await advanceWorkflowRun(
        ctx,
        { channels: ctx.config.channels, storage: ctx.generations.storage },
        runId,
      );
    },
    deliver_webhook: async (payload) => {
      const { deliveryId } = deliverWebhookPayload.parse(payload);
      await deliverWebhook(ctx, deliveryId);
    },
    webhooks_requeue: async () => {
      await requeueStalledWebhooks(ctx);
    },
    generations_sweep: async () => {
      await sweepStrandedResults(ctx);
    },
    resolve_payment: async (payload) => {
      const { paymentId } = resolvePaymentPayload.parse(payload);
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
}

/** Recurring tasks, in graphile-worker's crontab format. */
export const crontab = [
  "*/15 * * * * auth_cleanup",
  "* * * * * ledger_expire_holds",
  "* * * * * generations_sweep",
  "*/5 * * * * webhooks_requeue",
  "*/10 * * * * payments_reconcile",
  "* * * * * payouts_reconcile",
  "*/5 * * * * rate_limits_purge",
].join("\n");

const runGenerationPayload = z.object({ resultId: z.string().min(1) });
const advanceWorkflowRunPayload = z.object({ runId: z.string().min(1) });
const deliverWebhookPayload = z.object({ deliveryId: z.string().min(1) });
const resolvePaymentPayload = z.object({ paymentId: z.string().min(1) });
