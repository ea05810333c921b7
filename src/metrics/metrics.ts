import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { Network } from "../lib/network.js";
import type { Routing } from "../ports.js";

/**
 * Prometheus metrics of one application context. Each context owns its registry, so several
 * apps in one process (the tests) never share a series. Counters and histograms here are this
 * process's own; the gauges read from PostgreSQL at scrape time are in database-gauges.ts.
 *
 * Every label takes values from a bounded set (express route patterns, catalog models,
 * configured channels, task names, networks, fixed outcomes): never a raw URL, id or address.
 */

/**
 * What a settle call ended in: settled on chain; pending (maybe broadcast, outcome unknown, so
 * reconciliation decides from the chain); failed (the facilitator refused it, nothing moved).
 */
export type SettleOutcome = "settled" | "pending" | "failed";

type PaymentPurpose = "pack" | "generation";

/** A refused payment whose offer could not be matched has no network of its own. */
export type PaymentMetricNetwork = Network | "unknown";

const SECONDS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
// Jobs may wait for a free worker for minutes under load; settlement waits for a block.
const JOB_LAG_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900];
const SETTLE_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60];

export class Metrics {
  readonly registry = new Registry();

  private readonly httpRequestDuration = new Histogram({
    name: "polyforge_http_request_duration_seconds",
    help: "HTTP requests by route pattern (unmatched requests share one label), method and status.",
    labelNames: ["method", "route", "status"] as const,
    buckets: SECONDS_BUCKETS,
    registers: [this.registry],
  });

  private readonly generationResults = new Counter({
    name: "polyforge_generation_results_total",
    help: "Per-model generation results settled by this process, by final status and the channel that served (or last refused) it; none when no channel answered.",
    labelNames: ["model", "status", "channel"] as const,
    registers: [this.registry],
  });

  private readonly failovers = new Counter({
    name: "polyforge_routing_failovers_total",
    help: "Moves from one upstream channel to the next while routing one model's result (after retries, or past an open circuit).",
    labelNames: ["model", "from", "to"] as const,
    registers: [this.registry],
  });

  private readonly jobStartLag = new Histogram({
    name: "polyforge_job_start_lag_seconds",
    help: "How long a job waited between becoming runnable (its run_at) and a worker of this process starting it.",
    labelNames: ["task"] as const,
    buckets: JOB_LAG_BUCKETS,
    registers: [this.registry],
  });

  private readonly jobsRunning = new Gauge({
    name: "polyforge_worker_jobs_running",
    help: "Jobs this process's worker is running now, by task: each holds one of WORKER_CONCURRENCY's slots, and one waiting on its upstream holds no database connection.",
    labelNames: ["task"] as const,
    registers: [this.registry],
  });

  private readonly payments = new Counter({
    name: "polyforge_payments_total",
    help: "x402 payments presented to this process: refused before settling (malformed, not matching the offer, failed verification, reused), or the settle call's outcome (settled, pending, failed).",
    labelNames: ["network", "purpose", "outcome"] as const,
    registers: [this.registry],
  });

  private readonly settleDuration = new Histogram({
    name: "polyforge_payment_settle_duration_seconds",
    help: "Duration of the facilitator's settle call (broadcast and receipt), by its outcome.",
    labelNames: ["network", "outcome"] as const,
    buckets: SETTLE_BUCKETS,
    registers: [this.registry],
  });

  private readonly groupCommitSize = new Histogram({
    name: "polyforge_group_commit_size",
    help: "Calls carried by one group-committed statement (one commit), by what it writes.",
    labelNames: ["statement"] as const,
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
    registers: [this.registry],
  });

  constructor() {
    // Process and Node.js metrics under their standard names (process_*, nodejs_*), so common
    // dashboards work unchanged.
    collectDefaultMetrics({ register: this.registry });
  }

  httpRequest(labels: { method: string; route: string; status: number }, seconds: number) {
    this.httpRequestDuration.observe({ ...labels, status: String(labels.status) }, seconds);
  }

  generationResult(labels: {
    model: string;
    status: "completed" | "failed";
    channel: string | null | undefined;
  }) {
    this.generationResults.inc({ ...labels, channel: labels.channel ?? "none" });
  }

  /** Counts each change of channel in a result's attempts, skips past open circuits included. */
  routed(model: string, routing: Routing) {
    let from: string | undefined;
    for (const { channel } of routing.attempts) {
      if (from !== undefined && channel !== from) this.failovers.inc({ model, from, to: channel });
      from = channel;
    }
  }

  /** One group-committed statement (see GroupCommit) and how many calls it carried. */
  groupCommitted(statement: "generation_submit" | "rate_limit_consume", size: number) {
    this.groupCommitSize.observe({ statement }, size);
  }

  jobStarted(task: string, runAt: Date, now: Date) {
    // Clocks of the worker and the database may differ a little: never a negative wait.
    this.jobStartLag.observe({ task }, Math.max(0, now.getTime() - runAt.getTime()) / 1000);
    this.jobsRunning.inc({ task });
  }

  jobFinished(task: string) {
    this.jobsRunning.dec({ task });
  }

  /**
   * The database pool as it is when scraped: its connections in use and idle (together at
   * most DATABASE_POOL_MAX), and the callers waiting for one, served first come first served.
   */
  watchPool(pool: { totalCount: number; idleCount: number; waitingCount: number }) {
    new Gauge({
      name: "polyforge_db_pool_connections",
      help: "This process's database connections, by state: in_use (a statement, a transaction, or held for LISTEN or the worker's heartbeat) and idle. At most DATABASE_POOL_MAX.",
      labelNames: ["state"] as const,
      registers: [this.registry],
      collect() {
        this.set({ state: "in_use" }, pool.totalCount - pool.idleCount);
        this.set({ state: "idle" }, pool.idleCount);
      },
    });
    new Gauge({
      name: "polyforge_db_pool_waiting",
      help: "Statements and transactions of this process waiting for one of the pool's connections.",
      registers: [this.registry],
      collect() {
        this.set(pool.waitingCount);
      },
    });
  }

  /** A payment refused before settlement: nothing was broadcast. */
  paymentRefused(labels: { network: PaymentMetricNetwork; purpose: PaymentPurpose }) {
    this.payments.inc({ ...labels, outcome: "refused" });
  }

  /** A settle call's outcome and how long the facilitator took. */
  paymentSettled(
    labels: { network: Network; purpose: PaymentPurpose; outcome: SettleOutcome },
    seconds: number,
  ) {
    this.payments.inc(labels);
    this.settleDuration.observe({ network: labels.network, outcome: labels.outcome }, seconds);
  }
}
