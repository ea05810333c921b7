import type { AppContext } from "../context.js";
import { type Database, dedicatedConnection } from "../db/client.js";
import { recordHeartbeat, releaseDeadWorkers, releaseWorkers } from "../domains/workers/service.js";

/**
 * This process's worker heartbeat, and the release of dead workers' jobs that every live
 * worker takes part in, every WORKER_HEARTBEAT_SECONDS. A failed beat (the database away) is
 * logged and tried again on the next tick. It runs on a connection of its own (one of the
 * pool's, kept out), so a worker whose thousand jobs queue for the others still beats on time,
 * and is not presumed dead because it is busy; its release on stop does not queue either.
 */
export function startHeartbeat(ctx: AppContext, pools: () => string[]) {
  const { heartbeatMs, deadAfterMs } = ctx.config.worker;
  const connection = dedicatedConnection(ctx.pool);
  const onConnection = <T>(fn: (own: AppContext) => Promise<T>) =>
    connection.run((db: Database) => fn({ ...ctx, db }));
  const beaten = new Set<string>();
  // When this process last (re)gained the database: see the release below.
  let connectedSince: number | undefined;
  let stopped = false;
  const tick = async () => {
    const ids = pools();
    try {
      const inserted = await onConnection((own) => recordHeartbeat(own, ids));
      for (const id of inserted.filter((id) => beaten.has(id))) {
        ctx.logger.warn(
          { pool: id },
          "this worker was presumed dead (no heartbeat for too long): jobs it runs may also run elsewhere; each settles once",
        );
      }
      for (const id of ids) beaten.add(id);
      connectedSince ??= performance.now();
      // After a database outage every heartbeat is old. Only a worker that has beaten for a
      // whole dead-after period releases others, so the live ones have beaten again by then.
      if (performance.now() - connectedSince < deadAfterMs) return;
      const released = await onConnection((own) => releaseDeadWorkers(own, deadAfterMs));
      if (released.pools.length) {
        ctx.logger.warn(released, "released the jobs of workers with no heartbeat: they run again");
      }
    } catch (err) {
      connectedSince = undefined;
      ctx.logger.warn({ err }, "worker heartbeat not recorded");
    }
  };
  let running = tick();
  const timer = setInterval(() => {
    running = running.then(tick);
  }, heartbeatMs);
  timer.unref();
  return {
    /**
     * Stops beating, forgets this process's pools and releases any job they still hold (none
     * after a graceful stop; the cut-off ones otherwise), returning how many it released.
     */
    async stop(): Promise<number> {
      if (stopped) return 0;
      stopped = true;
      clearInterval(timer);
      await running;
      try {
        return await onConnection((own) => releaseWorkers(own, pools()));
      } finally {
        await connection.close();
      }
    },
  };
}
