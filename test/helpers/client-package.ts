import { execFile } from "node:child_process";
import { cp, mkdir, mkdtemp, readFile, rename, rm } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { repoRoot } from "./cli.js";

const run = promisify(execFile);

export interface PackedClient {
  /** A directory in the repository whose node_modules holds the unpacked package. */
  dir: string;
  /** The package's entry point (its `exports["."].import`), to import(). */
  entry: string;
  remove(): Promise<void>;
}

/**
 * @polyforge/client as published: `npm pack` (its prepack builds dist), unpacked where its own
 * imports resolve from the repository's node_modules, without a registry. The pack runs on a
 * copy of packages/client, so test files packing at once never write the same dist.
 */
export async function packClient(): Promise<PackedClient> {
  const dir = await mkdtemp(path.join(repoRoot, ".client-package-"));
  const source = path.join(dir, "source");
  const from = path.join(repoRoot, "packages/client");
  await mkdir(source);
  for (const item of ["package.json", "tsconfig.json", "README.md", "src"])
    await cp(path.join(from, item), path.join(source, item), { recursive: true });
  const { stdout } = await run("npm", ["pack", "--silent", "--pack-destination", dir], {
    cwd: source,
    encoding: "utf8",
  });
  const tarball = stdout.trim().split("\n").at(-1) as string;
  await run("tar", ["-xzf", path.join(dir, tarball), "-C", dir]);
  await rm(source, { recursive: true, force: true });
  const installed = path.join(dir, "node_modules/@polyforge/client");
  await mkdir(path.dirname(installed), { recursive: true });
  await rename(path.join(dir, "package"), installed);
  const manifest = JSON.parse(await readFile(path.join(installed, "package.json"), "utf8"));
  return {
    dir,
    entry: path.join(installed, manifest.exports["."].import),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
