import type { TaskList } from "graphile-worker";
import type { AppContext } from "../context.js";
import { deleteExpiredSignInState } from "../domains/accounts/signin.js";
import { expireHolds } from "../domains/ledger/service.js";

/**
 * The worker's task list. Each task is a thin call into a domain service; tasks run at least
 * once, so every service called here is idempotent.
 */
export function taskList(ctx: AppContext): TaskList {
  return {
    auth_cleanup: async (_payload, helpers) => {
      const removed = await deleteExpiredSignInState(ctx);
      helpers.logger.debug("expired sign-in state removed", removed);
    },
    ledger_expire_holds: async () => {
      // Drain in batches, so a backlog after downtime clears in one run.
      while ((await expireHolds(ctx, 500)) === 500) {}
    },
  };
}

/** Recurring tasks, in graphile-worker's crontab format. */
export const crontab = ["*/15 * * * * auth_cleanup", "* * * * * ledger_expire_holds"].join("\n");
