/**
 * Ledger debit throughput and latency: the service's transfer() against the same SQL call from
 * a raw driver loop (the ceiling), and pgbench when it is installed, in one run on one fresh
 * embedded PostgreSQL with default durability. Prints a markdown table; BENCHMARKS.md keeps it.
 *
 *   npx tsx scripts/bench/ledger.ts [--seconds 4] [--smoke] [--pg-port 54399]
 */
import { execFileSync, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { cpus, tmpdir, totalmem } from "node:os";
import path from "node:path";
import { createAppContext } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { createDatabaseClient } from "../../src/db/client.js";
import { startEmbeddedPostgres } from "../../src/db/embedded.js";
import { migrateDatabase } from "../../src/db/migrate.js";
import { systemLedgerAccount, userLedgerAccount } from "../../src/domains/ledger/accounts.js";
import { TransferBatcher } from "../../src/domains/ledger/batcher.js";
import { checkLedgerInvariants } from "../../src/domains/ledger/invariants.js";
import { grantCredits, type TransferInput, transfer } from "../../src/domains/ledger/service.js";
import { AppError } from "../../src/errors.js";
import { createLogger } from "../../src/logger.js";
import { benchOptions, load, runBench } from "./harness.js";

const options = benchOptions({ seconds: { full: 4, smoke: 1 } }, 54_399);
const SECONDS = options.seconds;
const CONCURRENCY = [1, 4, 16];
const SPREAD_ACCOUNTS = 10_000;
const logger = createLogger({ logLevel: "warn" });

interface Cell {
  scenario: string;
  clients: number;
  runner: string;
  ops: number;
  refused: number;
  errors: number;
  perSecond: number;
  p50: number;
  p99: number;
}

await runBench(async (bench) => {
  const { server, client, ctx, dir } = await bench.phase("setup", 120_000, async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "polyforge-bench-"));
    bench.defer("remove the data directory", () => rm(dir, { recursive: true, force: true }));
    await chmod(dir, 0o755);
    const server = await startEmbeddedPostgres({
      dataDir: path.join(dir, "postgres"),
      port: options.pgPort,
      logger,
    });
    bench.defer("stop PostgreSQL", () => server.stop());
    // No HTTP and no generations here: the rate limits and the in-flight cap play no part.
    const config = loadConfig({ NODE_ENV: "test", DATABASE_URL: server.url, LOG_LEVEL: "warn" });
    const client = createDatabaseClient(server.url, { poolMax: 20, logger });
    bench.defer("close the database pool", () => client.close());
    const ctx = createAppContext(config, logger, client);
    await migrateDatabase(client.pool, logger);
    // Owners: one hot account, and SPREAD_ACCOUNTS accounts for the spread scenario.
    await client.pool.query(
      `insert into accounts (id) select 'acc_bench_' || g from generate_series(0, $1) g`,
      [SPREAD_ACCOUNTS],
    );
    await grantCredits(ctx, {
      id: "bench-hot",
      ownerId: owner(0),
      network: "test",
      amount: 10n ** 12n,
      reason: "bench",
    });
    await client.pool.query(
      `select ledger_transfer('bench-grant-' || g, 'test', 'issuance:test', 'credits:test:acc_bench_' || g,
                              1000000, 'grant', 'bench', '{}', null, null)
       from generate_series(1, $1) g`,
      [SPREAD_ACCOUNTS],
    );
    return { server, client, ctx, dir };
  });
  const cells: Cell[] = [];
  const revenue = systemLedgerAccount("test", "revenue");
  const accountFor = (scenario: string) =>
    scenario === "hot" ? () => 0 : () => 1 + Math.floor(Math.random() * SPREAD_ACCOUNTS);
  // The raw loop still gets its pool from the one database client: its error listener keeps a
  // connection that PostgreSQL's shutdown terminates while the pool is closing from crashing.
  const rawClient = createDatabaseClient(server.url, { poolMax: 20, logger });
  bench.defer("close the raw pool", () => rawClient.close());
  const raw = rawClient.pool;

  for (const scenario of ["hot", "spread"]) {
    const pickOwner = accountFor(scenario);
    for (const clients of CONCURRENCY) {
      const tag = `${scenario}-${clients}`;
      // A debit through the service: true when it went through, false when refused.
      const debitWith =
        (submit: (input: TransferInput) => Promise<unknown>, prefix: string) =>
        async (c: number, i: number) => {
          try {
            await submit({
              id: `${prefix}-${tag}-${c}-${i}`,
              network: "test",
              debit: userLedgerAccount(owner(pickOwner()), "test"),
              credit: revenue,
              amount: 1n,
              kind: "spend",
            });
            return true;
          } catch (err) {
            if (err instanceof AppError && err.code === "insufficient_credits") return false;
            throw err;
          }
        };
      const measure = async (runner: string, op: (c: number, i: number) => Promise<boolean>) => {
        const name = `${tag}, ${runner}`;
        const result = await bench.phase(name, SECONDS * 1000 + 30_000, (signal) =>
          load({ clients, seconds: SECONDS, signal }, op),
        );
        bench.check(name, result);
        cells.push({ scenario, clients, runner, ...result });
      };
      await measure(
        "service transfer()",
        debitWith((input) => transfer(ctx, input), "svc"),
      );
      const batcher = new TransferBatcher(ctx);
      await measure(
        "service, batched",
        debitWith((input) => batcher.submit(input), "bat"),
      );
      await measure("raw driver loop", async (c, i) => {
        const { rows } = await raw.query(
          "select outcome from ledger_transfer($1, 'test', $2, $3, 1, 'spend', null, '{}', null, null)",
          [`raw-${tag}-${c}-${i}`, userLedgerAccount(owner(pickOwner()), "test"), revenue],
        );
        return rows[0]?.outcome === "created";
      });
      const result = await bench.phase(`${tag}, pgbench`, SECONDS * 1000 + 30_000, async () =>
        pgbench(server.port, scenario, clients, dir),
      );
      if (result) cells.push({ scenario, clients, runner: "pgbench", ...result });
    }
  }
  const { violations, transfers } = await bench.phase("invariants", 120_000, async () => {
    const violations = await checkLedgerInvariants(ctx);
    const { rows } = await client.pool.query("select count(*)::int as n from ledger_transfers");
    return { violations, transfers: rows[0].n as number };
  });
  print(cells, violations, transfers);
  if (violations.length) bench.failures.push(`${violations.length} ledger invariant violations`);
});

function owner(i: number) {
  return `acc_bench_${i}`;
}

/** pgbench running the same SQL, when the machine has it (Debian: postgresql-client). */
function pgbench(port: number, scenario: string, clients: number, dir: string) {
  if (spawnSync("pgbench", ["--version"]).status !== 0) return undefined;
  const script = path.join(dir, `${scenario}.sql`);
  const debit =
    scenario === "hot" ? "'credits:test:acc_bench_0'" : "'credits:test:acc_bench_' || :a";
  writeFileSync(
    script,
    [
      `\\set a random(1, ${SPREAD_ACCOUNTS})`,
      `select outcome from ledger_transfer(gen_random_uuid()::text, 'test', ${debit}, 'revenue:test', 1, 'spend', null, '{}', null, null);`,
    ].join("\n"),
  );
  const out = execFileSync(
    "pgbench",
    [
      "-h",
      "127.0.0.1",
      "-p",
      String(port),
      "-U",
      "postgres",
      "-n",
      "-c",
      String(clients),
      "-j",
      String(Math.min(clients, 2)),
      "-T",
      String(Math.max(1, Math.round(SECONDS))),
      "-f",
      script,
      "polyforge",
    ],
    {
      env: { ...process.env, PGPASSWORD: "postgres" },
      encoding: "utf8",
      // Synchronous (nothing else runs meanwhile), so bounded here rather than by the phase.
      timeout: SECONDS * 1000 + 30_000,
    },
  );
  const tps = Number(/tps = ([\d.]+)/.exec(out)?.[1] ?? 0);
  const ops = Number(/number of transactions actually processed: (\d+)/.exec(out)?.[1] ?? 0);
  const avg = Number(/latency average = ([\d.]+) ms/.exec(out)?.[1] ?? 0);
  // A failed transaction aborts its pgbench client, and pgbench then exits non-zero: execFileSync
  // throws and the phase fails.
  return { ops, refused: 0, errors: 0, perSecond: tps, p50: avg, p99: Number.NaN };
}

function print(cells: Cell[], violations: string[], transfers: number) {
  const fmt = (n: number, d = 0) => (Number.isNaN(n) ? "—" : n.toFixed(d));
  const lines = [
    `Machine: ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), ${Math.round(totalmem() / 2 ** 30)} GiB; PostgreSQL ${"18 (embedded, default durability)"}; ${SECONDS} s per cell.`,
    "",
    "| scenario | clients | runner | debits/s | vs ceiling | p50 ms (pgbench: mean) | p99 ms | refused | errors |",
    "|---|---|---|---|---|---|---|---|---|",
  ];
  for (const cell of cells) {
    const ceiling = cells.find(
      (c) =>
        c.scenario === cell.scenario &&
        c.clients === cell.clients &&
        c.runner === "raw driver loop",
    );
    const ratio = ceiling ? cell.perSecond / ceiling.perSecond : Number.NaN;
    lines.push(
      `| ${cell.scenario} | ${cell.clients} | ${cell.runner} | ${fmt(cell.perSecond)} | ${fmt(ratio, 2)} | ${fmt(cell.p50, 2)} | ${fmt(cell.p99, 2)} | ${cell.refused} | ${cell.errors} |`,
    );
  }
  lines.push(
    "",
    `Transfers in the ledger after the run: ${transfers}. Invariant violations: ${violations.length}.`,
  );
  for (const v of violations) lines.push(`- ${v}`);
  console.log(lines.join("\n"));
}
