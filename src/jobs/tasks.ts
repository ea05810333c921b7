import type { TaskList } from "graphile-worker";
import type { AppContext } from "../context.js";
import { deleteExpiredSignInState } from "../domains/accounts/signin.js";

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
  };
}

/** Recurring tasks, in graphile-worker's crontab format. */
export const crontab = ["*/15 * * * * auth_cleanup"].join("\n");
