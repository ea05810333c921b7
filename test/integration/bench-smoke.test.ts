import { spawn } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { cliEnv, repoRoot } from "../helpers/cli.js";
import { freePort } from "../helpers/ports.js";

/**
 * Every benchmark in scripts/bench runs end to end in its smoke mode (about a second a row):
 * it exits 0 and prints its table. The figures are not checked (speed is what the benchmarks
 * are for); that each phase passed is, since a benchmark exits 1 when one fails, passes its
 * deadline or has most of its requests fail. Each run has its own embedded PostgreSQL on a
 * free port. Three run at a time: each is about one core's work, and its rows last a fixed time.
 */
const RUNS_AT_ONCE = 3;
/** A smoke run takes 5–35 s alone; past this it is killed and fails. */
const RUN_LIMIT_MS = 120_000;

let running = 0;
const queue: Array<() => void> = [];
async function slot<T>(fn: () => Promise<T>): Promise<T> {
  if (running >= RUNS_AT_ONCE) await new Promise<void>((resolve) => queue.push(resolve));
  running++;
  try {
    return await fn();
  } finally {
    running--;
    queue.shift()?.();
  }
}

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function runBench(script: string, args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", path.join(repoRoot, "scripts/bench", script), ...args],
      { cwd: repoRoot, env: cliEnv({}) },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), RUN_LIMIT_MS);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

// Longest first, so the two lanes end close together.
const benchmarks = [
  { script: "generations.ts", header: "| table | what | ops/s | vs baseline |", rows: 18 },
  { script: "ledger.ts", header: "| scenario | clients | runner | debits/s |", rows: 18 },
  { script: "rolling-restart.ts", header: "| restart signal | clients | restarts |", rows: 2 },
  { script: "recovery.ts", header: "| run | submit → completed, s", rows: 2 },
  { script: "payments.ts", header: "| what | p50 ms | p99 ms | p50 vs baseline |", rows: 7 },
  { script: "rate-limits.ts", header: "| route | limits off p50 ms |", rows: 2 },
  { script: "auth.ts", header: "| key lookup | req/s | vs uncached |", rows: 2 },
  { script: "images-trace.ts", header: "| starts at ms | round trip ms |", rows: 8 },
  { script: "chat.ts", header: "| what | in flight | p50 ms | p99 ms | req/s |", rows: 5 },
];

describe.concurrent("benchmarks in smoke mode", () => {
  for (const { script, header, rows } of benchmarks) {
    it(
      `${script} runs end to end, exits 0 and prints its table`,
      async () => {
        const run = await slot(async () =>
          runBench(script, ["--smoke", "--pg-port", String(await freePort())]),
        );
        const output = `stdout:\n${run.stdout}\nstderr:\n${run.stderr}`;
        expect(run.signal, output).toBeNull();
        expect(run.code, output).toBe(0);
        expect(run.stderr, output).not.toContain("FAILED");
        // Everything it started was closed: the process ended by itself, not by the fallback.
        expect(run.stderr, output).not.toContain("still held the process open");
        const lines = run.stdout.split("\n");
        const at = lines.findIndex((line) => line.startsWith(header));
        expect(at, output).toBeGreaterThanOrEqual(0);
        expect(lines[at + 1], output).toMatch(/^\|(---\|)+$/);
        // Its rows follow, each with as many cells as the header.
        const cells = (line: string) => line.split("|").length;
        const body = lines.slice(at + 2).filter((line) => line.startsWith("|"));
        expect(body.length, output).toBeGreaterThanOrEqual(rows);
        for (const line of body) expect(cells(line), line).toBe(cells(lines[at] ?? ""));
      },
      // Includes the wait for a free slot: up to three runs ahead of this one in its lane.
      4 * RUN_LIMIT_MS,
    );
  }
});
