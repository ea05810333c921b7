/**
 * What every benchmark runs under, so that none can hang or pass quietly:
 *   - its options (`--smoke` for a run of about a second per row, `--pg-port` for the embedded
 *     PostgreSQL's port);
 *   - phases, each with a deadline: a phase that throws or passes its deadline stops the run and
 *     is named on stderr;
 *   - error counts: a phase where most requests failed is named too, after the table prints;
 *   - cleanups, each bounded in time, run in reverse order whatever happened;
 *   - an exit code: 0 only when every phase passed, and the process exits once main ends, by
 *     process.exit as a last resort when something still holds it open.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";

/** A phase that failed or passed its deadline: the run stops and names it. */
export class BenchFailure extends Error {}

/** What one timed load measured. */
export interface LoadResult {
  /** Calls made, failed ones included. */
  ops: number;
  errors: number;
  /** Calls whose operation answered `false` (an expected refusal, not an error). */
  refused: number;
  perSecond: number;
  p50: number;
  p99: number;
}

const CLEANUP_MS = 30_000;
/** How long the process may stay alive once main and the cleanups are done. */
const EXIT_GRACE_MS = 3_000;
/** One request's limit unless a phase sets another. */
export const REQUEST_MS = 10_000;

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

export const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;

/** The phase's signal and a per-request time limit together, for a fetch. */
export const requestSignal = (phase: AbortSignal, ms = REQUEST_MS) =>
  AbortSignal.any([phase, AbortSignal.timeout(ms)]);

/**
 * The benchmark's numeric options: each name given as `--name N`, else its smoke value under
 * `--smoke`, else its full value. `--pg-port` picks the embedded PostgreSQL's port.
 */
export function benchOptions<K extends string>(
  knobs: Record<K, { full: number; smoke: number }>,
  defaultPgPort: number,
): Record<K, number> & { smoke: boolean; pgPort: number } {
  const names = Object.keys(knobs) as K[];
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      options: {
        smoke: { type: "boolean" },
        "pg-port": { type: "string" },
        ...Object.fromEntries(names.map((name) => [name, { type: "string" as const }])),
      },
    }).values;
  } catch (err) {
    console.error(
      `${message(err)}\nOptions: --smoke, --pg-port N, ${names.map((n) => `--${n} N`).join(", ")}`,
    );
    process.exit(2);
  }
  const number = (name: string, raw: unknown, fallback: number) => {
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!(n > 0)) {
      console.error(`--${name} must be a positive number, not ${String(raw)}`);
      process.exit(2);
    }
    return n;
  };
  const smoke = values.smoke === true;
  const result = Object.fromEntries(
    names.map((name) => [
      name,
      number(name, values[name], smoke ? knobs[name].smoke : knobs[name].full),
    ]),
  ) as Record<K, number>;
  return { ...result, smoke, pgPort: number("pg-port", values["pg-port"], defaultPgPort) };
}

export class Bench {
  /** Phases where most requests failed; the run goes on, and exits 1 after printing. */
  readonly failures: string[] = [];
  private readonly cleanups: Array<{ name: string; run: () => unknown }> = [];

  /**
   * Runs `fn` as the phase `name`, given `ms` in all. Its signal aborts at the deadline (loops
   * stop on it, fetches take it through requestSignal), and the phase fails at once either way.
   */
  async phase<T>(name: string, ms: number, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const err = new BenchFailure(`phase "${name}" passed its ${ms / 1000} s deadline`);
        controller.abort(err);
        reject(err);
      }, ms);
    });
    try {
      return await Promise.race([fn(controller.signal), deadline]);
    } catch (err) {
      if (err instanceof BenchFailure) throw err;
      throw new BenchFailure(`phase "${name}" failed: ${message(err)}`, { cause: err });
    } finally {
      clearTimeout(timer);
      controller.abort(new Error(`phase "${name}" is over`));
    }
  }

  /** Counts the phase `name` failed when most of its calls failed, or none was made. */
  check(name: string, result: { ops: number; errors: number }): void {
    if (result.ops === 0 || result.errors * 2 > result.ops) {
      this.failures.push(`phase "${name}": ${result.errors} of ${result.ops} requests failed`);
    }
  }

  /** Runs `run` when the benchmark ends, after the ones deferred later (reverse order). */
  defer(name: string, run: () => unknown): void {
    this.cleanups.push({ name, run });
  }

  /** Runs the deferred cleanups, each within CLEANUP_MS; true when all of them succeeded. */
  async cleanup(): Promise<boolean> {
    let ok = true;
    for (const { name, run } of this.cleanups.splice(0).reverse()) {
      const limit = new AbortController();
      try {
        await Promise.race([
          Promise.resolve().then(run),
          sleep(CLEANUP_MS, undefined, { signal: limit.signal }).then(() => {
            throw new Error(`did not finish within ${CLEANUP_MS / 1000} s`);
          }),
        ]);
      } catch (err) {
        ok = false;
        console.error(`FAILED: cleanup "${name}": ${message(err)}`);
      } finally {
        limit.abort();
      }
    }
    return ok;
  }
}

/**
 * Runs `from` concurrent loops of `op` for `seconds` (or until `signal` aborts), timing each
 * call. A call that throws counts as an error; one that answers `false` as refused.
 */
export async function load(
  options: { clients: number; seconds: number; signal: AbortSignal },
  op: (client: number, i: number, signal: AbortSignal) => Promise<unknown>,
): Promise<LoadResult> {
  const { clients, seconds, signal } = options;
  const latencies: number[] = [];
  let errors = 0;
  let refused = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  await Promise.all(
    Array.from({ length: clients }, async (_, client) => {
      for (let i = 0; performance.now() < end && !signal.aborted; i++) {
        const t = performance.now();
        try {
          if ((await op(client, i, signal)) === false) refused++;
        } catch {
          errors++;
        }
        latencies.push(performance.now() - t);
      }
    }),
  );
  latencies.sort((a, b) => a - b);
  return {
    ops: latencies.length,
    errors,
    refused,
    perSecond: latencies.length / ((performance.now() - start) / 1000),
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
  };
}

/**
 * Runs a benchmark's main under a Bench: prints the failure that stopped it, runs the
 * cleanups, names the phases that failed, sets the exit code, and makes sure the process ends.
 */
export async function runBench(main: (bench: Bench) => Promise<void>): Promise<void> {
  const bench = new Bench();
  let ok = true;
  try {
    await main(bench);
  } catch (err) {
    ok = false;
    console.error(`\nFAILED: ${message(err)}`);
    if (!(err instanceof BenchFailure) && err instanceof Error && err.stack) {
      console.error(err.stack);
    }
  }
  if (!(await bench.cleanup())) ok = false;
  for (const failure of bench.failures) console.error(`FAILED: ${failure}`);
  const code = ok && bench.failures.length === 0 ? 0 : 1;
  process.exitCode = code;
  // Everything is closed by now; if something still holds the process open, end it anyway.
  setTimeout(() => {
    console.error("the benchmark ended but something still held the process open: exiting");
    process.exit(code);
  }, EXIT_GRACE_MS).unref();
}
