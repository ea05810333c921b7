import type { ServiceContext } from "../../context.js";
import { leaseJobs } from "../../jobs/queue.js";
import { type GenerationRuntime, runResult } from "./run.js";

/**
 * Generations the API process runs itself, for the doors that wait for their output (the
 * OpenAI images endpoint, the MCP generate tools): no queue pickup, no worker, no wake-up
 * between the upstream's answer and the caller's. Money and crash safety are the queued
 * path's, because it is the same run (runResult) of the same rows:
 * - the submit queues each result's job as always, only not runnable for a lease
 *   (INLINE_LEASE_SECONDS), so that the workers leave it to this process;
 * - while a run goes on, its lease is renewed, for every run at once in one statement;
 * - a run that ends (settled, or thrown) has its job removed, or handed to the workers at once
 *   if it threw, on the next renewal, not on the caller's time;
 * - a process that dies stops renewing: its jobs become runnable and a worker resumes them
 *   (an upstream job recorded by the run is polled, not paid for again); a run that outlives
 *   its hold is refunded by the sweeper, as on the queued path;
 * - a process that shuts down hands what it still runs to the workers at once (release).
 * Two runs of one result (a lease that lapsed under load) settle it once.
 */
export class InlineRuns {
  private readonly running = new Map<string, number>();
  private finished: string[] = [];
  private failed: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private renewing: Promise<void> = Promise.resolve();
  private released = false;

  constructor(
    private readonly ctx: ServiceContext,
    private readonly runtime: GenerationRuntime,
  ) {}

  /**
   * Runs these results now, in this process; resolves when every one has settled or given up
   * (a run that throws is left to the workers, which retry it). Never rejects.
   */
  run(resultIds: string[]): Promise<void> {
    if (this.released) {
      // Shutting down: the workers run them.
      this.failed.push(...resultIds);
      this.scheduleRenewal();
      return Promise.resolve();
    }
    return Promise.all(resultIds.map((id) => this.runOne(id))).then(() => undefined);
  }

  private async runOne(resultId: string): Promise<void> {
    this.running.set(resultId, (this.running.get(resultId) ?? 0) + 1);
    this.scheduleRenewal();
    let threw = false;
    try {
      await runResult(this.ctx, this.runtime, resultId);
    } catch (err) {
      threw = true;
      this.ctx.logger.warn({ err, resultId }, "generation run failed here: a worker retries it");
    } finally {
      const left = (this.running.get(resultId) ?? 1) - 1;
      if (left > 0) this.running.set(resultId, left);
      else {
        this.running.delete(resultId);
        (threw ? this.failed : this.finished).push(resultId);
      }
    }
  }

  /** The renewal timer runs while anything is running or waits to be removed. */
  private scheduleRenewal() {
    if (this.timer) return;
    const every = Math.max(50, Math.floor(this.ctx.config.generation.inlineLeaseMs / 3));
    this.timer = setInterval(() => void this.renew(), every);
    this.timer.unref();
  }

  /** One statement for every run: renew the running, remove the settled, hand back the failed. */
  renew(): Promise<void> {
    this.renewing = this.renewing.then(async () => {
      const finished = this.finished;
      const failed = this.failed;
      this.finished = [];
      this.failed = [];
      const running = [...this.running.keys()];
      if (running.length === 0 && finished.length === 0 && failed.length === 0) {
        clearInterval(this.timer);
        this.timer = undefined;
        return;
      }
      try {
        const lease = this.released ? 0 : this.ctx.config.generation.inlineLeaseMs;
        await leaseJobs(this.ctx, this.released ? [] : running, finished, lease);
        // Failed here, or still running at shutdown: the workers take them now.
        const handBack = this.released ? [...failed, ...running] : failed;
        if (handBack.length) await leaseJobs(this.ctx, handBack, [], 0);
      } catch (err) {
        // Tried again on the next tick; meanwhile a lapsing lease only lets a worker run a
        // result a second time, which still settles once.
        this.finished.push(...finished);
        this.failed.push(...failed);
        this.ctx.logger.warn({ err }, "inline generation leases not renewed");
      }
    });
    return this.renewing;
  }

  /**
   * At shutdown, before the database closes: what still runs here is handed to the workers at
   * once (its run here may still finish first; the result settles once either way).
   */
  async release(): Promise<void> {
    this.released = true;
    await this.renew();
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
