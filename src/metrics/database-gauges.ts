import { Gauge } from "prom-client";
import type { ServiceContext } from "../context.js";
import { openHoldTotals } from "../domains/ledger/service.js";
import { circuitStates } from "../domains/routing/breaker.js";
import { jobCounts, oldestRunnableJobAgeSeconds } from "../jobs/queue.js";
import { creditsToJson } from "../lib/credits.js";

/**
 * Gauges read from PostgreSQL when scraped, one cheap query each. The state they show (circuits,
 * the job queue, holds) is shared by every process, so every API and worker process reports the
 * same values: aggregate them with max(), not sum().
 */

const CIRCUIT_STATES = ["closed", "open", "half_open"] as const;

type GaugeRead = (gauge: Gauge<string>) => Promise<void>;

/**
 * A gauge filled by `read` at scrape time. A failed read (the database is down) is logged and
 * leaves the gauge empty for that scrape, so the rest of the scrape still answers and no stale
 * value is reported as current.
 */
function databaseGauge(
  ctx: ServiceContext,
  config: { name: string; help: string; labelNames: string[] },
  read: GaugeRead,
) {
  return new Gauge({
    ...config,
    registers: [ctx.metrics.registry],
    async collect() {
      this.reset();
      try {
        await read(this);
      } catch (err) {
        this.reset();
        ctx.logger.warn({ err, metric: config.name }, "metric not collected");
      }
    },
  });
}

/** Shares one in-flight call among the gauges a single scrape collects together. */
function sharedPerScrape<T>(load: () => Promise<T>): () => Promise<T> {
  let inFlight: Promise<T> | undefined;
  return () => {
    inFlight ??= load().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  };
}

export function registerDatabaseGauges(ctx: ServiceContext) {
  databaseGauge(
    ctx,
    {
      name: "polyforge_channel_circuit_state",
      help: "Circuit breaker of each configured upstream channel: 1 for its current state (closed, open, half_open), 0 for the others.",
      labelNames: ["channel", "state"],
    },
    async (gauge) => {
      const current = new Map((await circuitStates(ctx)).map((c) => [c.channel_id, c.state]));
      for (const { id } of ctx.channels) {
        // A channel that never failed has no row: its circuit is closed.
        const state = current.get(id) ?? "closed";
        for (const s of CIRCUIT_STATES) gauge.set({ channel: id, state: s }, s === state ? 1 : 0);
      }
    },
  );

  databaseGauge(
    ctx,
    {
      name: "polyforge_jobs",
      help: "Jobs in the graphile-worker queue by task and state: runnable (due, waiting for a worker), scheduled (due later), running, failed (attempts spent).",
      labelNames: ["task", "state"],
    },
    async (gauge) => {
      for (const { task, state, jobs } of await jobCounts(ctx)) gauge.set({ task, state }, jobs);
    },
  );

  databaseGauge(
    ctx,
    {
      name: "polyforge_job_oldest_runnable_age_seconds",
      help: "How long the oldest runnable job has waited for a worker; 0 when none waits.",
      labelNames: [],
    },
    async (gauge) => gauge.set(await oldestRunnableJobAgeSeconds(ctx)),
  );

  const holds = sharedPerScrape(() => openHoldTotals(ctx));
  databaseGauge(
    ctx,
    {
      name: "polyforge_ledger_open_holds",
      help: "Pending ledger holds (generations in flight, studio reservations) by network.",
      labelNames: ["network"],
    },
    async (gauge) => {
      for (const { network, holds: count } of await holds()) gauge.set({ network }, count);
    },
  );
  databaseGauge(
    ctx,
    {
      name: "polyforge_ledger_held_credits",
      help: "Credits held by pending holds (not yet spent or returned) by network.",
      labelNames: ["network"],
    },
    async (gauge) => {
      for (const { network, credits } of await holds())
        gauge.set({ network }, creditsToJson(credits));
    },
  );
}
