import { execFile } from "node:child_process";
import path from "node:path";
import { expect, it } from "vitest";
import { cliEnv, repoRoot } from "../helpers/cli.js";

// CI trusts the test runner's exit code; nothing the suite loads (embedded PostgreSQL hooks
// process exit) may turn a failure into success.
it("a failing test makes the test command exit non-zero", async () => {
  const vitest = path.join(repoRoot, "node_modules/vitest/vitest.mjs");
  const code = await new Promise<number | null>((resolve) => {
    execFile(
      process.execPath,
      [vitest, "run", "--config", "test/fixtures/vitest.fixtures.config.ts"],
      { cwd: repoRoot, env: cliEnv({}) },
      (err) => resolve(err ? ((err as { code?: number }).code ?? null) : 0),
    );
  });
  expect(code).toBe(1);
});
