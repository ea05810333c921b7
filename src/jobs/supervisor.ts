import { setTimeout as sleep } from "node:timers/promises";
import type { Runner, WorkerEvents } from "graphile-worker";
import type { Logger } from "../logger.js";

export interface SupervisorOptions {
  logger: Logger;
  /** The events emitter every runner is given, so a pool's shutdown is seen as it begins. */
  events: WorkerEvents;
  /** Starts one graphile-worker runner (its pool and its cron) on `events`. */
  start: () => Promise<Runner>;
  /** Resolves once PostgreSQL answers a query; throws otherwise. */
  databaseAnswers: () => Promise<void>;
  /**
   * Frees the jobs a runner that has ended still holds locked: their completion or failure
   * could not be written (the database was gone), and without this they would wait about
   * four hours for graphile-worker to presume the lock dead.
   */
  releaseLocks: (poolIds: string[]) => Promise<void>;
  /** Backoff between attempts while the database does not answer. */
  retry?: { minMs: number; maxMs: number };
}

/**
 * Keeps a graphile-worker runner alive for the life of the process. graphile-worker 0.17 does
 * not retry a refused or terminated connection when it writes a job's completion: its pool then
 * shuts itself down (and with it the cron that runs the sweepers). Whenever the running pool
 * starts shutting down without being asked to, this waits (with bounded backoff) until
 * PostgreSQL answers and starts a new runner at once, while the old one lets its jobs finish;
 * once the old one has ended, the jobs it still holds are unlocked so they run again.
 * The returned Runner's `stop()` stops every runner and waits for their jobs, like graphile's.
 */
export async function superviseRunner(options: SupervisorOptions): Promise<Runner> {
  const { logger, events } = options;
  const { minMs, maxMs } = options.retry ?? { minMs: 250, maxMs: 5_000 };
  let stopping = false;
  let current: { runner: Runner; poolIds: string[] } | undefined;
  /** Runners that stopped on their own, until their last jobs finish and their locks are freed. */
  const draining = new Set<Promise<void>>();
  let starting: string[] | undefined;
  let restart: Promise<void> | undefined;
  let resolveStopped = () => {};
  const stopped = new Promise<void>((resolve) => {
    resolveStopped = resolve;
  });

  // Emitted synchronously while run() builds its pool: the ids of the pool being started.
  events.on("pool:create", ({ workerPool }) => {
    starting?.push(workerPool.id);
  });
  // Jobs each pool has in hand: an ended pool's locks are freed once none of its jobs runs.
  const inFlight = new Map<string, number>();
  const idleWaiters = new Map<string, () => void>();
  events.on("job:start", ({ worker }) => {
    const id = worker.workerPool.id;
    inFlight.set(id, (inFlight.get(id) ?? 0) + 1);
  });
  events.on("job:complete", ({ worker }) => {
    const id = worker.workerPool.id;
    const left = (inFlight.get(id) ?? 1) - 1;
    inFlight.set(id, left);
    if (left === 0) idleWaiters.get(id)?.();
  });
  const idle = (poolIds: string[]) =>
    Promise.all(
      poolIds.map(
        (id) =>
          new Promise<void>((resolve) => {
            if (!inFlight.get(id)) resolve();
            else idleWaiters.set(id, resolve);
          }),
      ),
    ).then(() => {});
  events.on("pool:gracefulShutdown", ({ workerPool, message }) => {
    if (!stopping && current?.poolIds.includes(workerPool.id)) {
      logger.error({ reason: message }, "job runner is stopping on its own: starting another");
      replace(current);
    }
  });

  const backoff = (attempt: number) => Math.min(maxMs, minMs * 2 ** attempt);

  /** One attempt: a runner if the database answers and it starts, else the error. */
  async function startRunner(): Promise<void> {
    await options.databaseAnswers();
    starting = [];
    const runner = await options.start();
    const poolIds = starting;
    starting = undefined;
    const entry = { runner, poolIds };
    current = entry;
    // Any end of the runner (the gracefulShutdown event normally comes first) starts another.
    runner.promise.then(
      () => {
        if (!stopping && current === entry) replace(entry);
      },
      (err: unknown) => {
        if (!stopping && current === entry) {
          logger.error({ err }, "job runner failed: starting another");
          replace(entry);
        }
      },
    );
    if (stopping) await runner.stop();
  }

  async function startWithRetries(firstAttempt = 0): Promise<void> {
    for (let attempt = firstAttempt; !stopping; attempt++) {
      try {
        await startRunner();
        if (attempt > 0) logger.info("job runner started again");
        return;
      } catch (err) {
        starting = undefined;
        const delayMs = backoff(attempt);
        logger.warn(
          { err, retryInMs: delayMs },
          "job runner cannot start: the database does not answer",
        );
        await sleep(delayMs);
      }
    }
  }

  function replace(entry: { runner: Runner; poolIds: string[] }) {
    if (current === entry) current = undefined;
    // The old runner's cron stops now; its pool lets the jobs in hand finish. Deferred: the
    // event comes just before the pool marks itself inactive, and stopping it before that
    // would ask it to shut down a second time.
    setImmediate(() => entry.runner.stop().catch(() => {}));
    // Its last job has returned (or, if that is never reported, the runner has ended): what
    // it still holds locked is a completion or failure the database did not take.
    const drained = Promise.race([entry.runner.promise.catch(() => {}), idle(entry.poolIds)])
      .then(() => unlockWhenPossible(entry.poolIds))
      .finally(() => {
        draining.delete(drained);
        for (const id of entry.poolIds) {
          inFlight.delete(id);
          idleWaiters.delete(id);
        }
      });
    draining.add(drained);
    restart ??= startWithRetries(1).finally(() => {
      restart = undefined;
    });
  }

  async function unlockWhenPossible(poolIds: string[]): Promise<void> {
    if (poolIds.length === 0) return;
    for (let attempt = 0; !stopping; attempt++) {
      try {
        await options.releaseLocks(poolIds);
        return;
      } catch {
        await sleep(backoff(attempt));
      }
    }
  }

  await startWithRetries();

  const stopAll = async () => {
    stopping = true;
    await restart;
    const entry = current;
    current = undefined;
    await Promise.allSettled([entry?.runner.stop(), ...draining]);
    resolveStopped();
  };
  let stoppingAll: Promise<void> | undefined;

  return {
    events,
    promise: stopped,
    stop: () => {
      stoppingAll ??= stopAll();
      return stoppingAll;
    },
    kill: async (reason) => {
      stopping = true;
      await current?.runner.kill(reason);
      resolveStopped();
    },
    addJob: (...args) => {
      if (!current) throw new Error("the job runner is restarting: try again shortly");
      return current.runner.addJob(...args);
    },
  };
}
