import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** Compiled contracts, committed under contracts/artifacts (see src/chain/compile.ts). */
export const CONTRACTS_DIR = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  "../../contracts",
);

export interface Artifact {
  contractName: string;
  compiler: string;
  abi: unknown[];
  bytecode: `0x${string}`;
  deployedBytecode: `0x${string}`;
}

export function artifact(name: string): Artifact {
  return JSON.parse(
    readFileSync(path.join(CONTRACTS_DIR, "artifacts", `${name}.json`), "utf8"),
  ) as Artifact;
}
