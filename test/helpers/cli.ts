import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { tmpdir } from "node:os";
import path from "node:path";

export const repoRoot = path.resolve(import.meta.dirname, "../..");
// Spawned commands run outside the repository, so a developer's .env there cannot leak in.
const outside = tmpdir();
const bin = path.join(repoRoot, "bin/polyforge.js");

/** The environment for a spawned `polyforge`: the test's own, minus anything that configures it. */
export function cliEnv(overrides: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of ["DATABASE_URL", "PORT", "PUBLIC_URL", "NODE_ENV", "POLYFORGE_DATA_DIR"])
    delete env[name];
  // Any free port for the local chain of `dev` and `chain`, so parallel tests do not collide.
  return { ...env, LOG_LEVEL: "warn", LOCAL_CHAIN_PORT: "0", ...overrides };
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(
  args: string[],
  env: Record<string, string>,
  cwd = repoRoot,
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd, env: cliEnv(env) });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** A long-running `polyforge` command, with its output so far and a way to wait for a line. */
export function startCli(args: string[], env: Record<string, string>, cwd = outside) {
  const child: ChildProcessWithoutNullStreams = spawn(process.execPath, [bin, ...args], {
    cwd,
    env: cliEnv(env),
  });
  let output = "";
  child.stdout.on("data", (d) => (output += d));
  child.stderr.on("data", (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
  return {
    child,
    output: () => output,
    exited,
    async waitFor(text: string, timeoutMs = 60_000): Promise<string> {
      const deadline = Date.now() + timeoutMs;
      while (!output.includes(text)) {
        if (child.exitCode !== null) throw new Error(`polyforge exited early:\n${output}`);
        if (Date.now() > deadline) throw new Error(`timed out waiting for "${text}":\n${output}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      return output;
    },
  };
}
