import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import solc from "solc";
import { type Artifact, CONTRACTS_DIR } from "./artifacts.js";

/**
 * Build time only (solc is a dev dependency; nothing at run time imports this file).
 * Compiles contracts/src offline with the npm solc (solcjs), imports resolved from
 * node_modules. The settings are fixed, so the same sources give the same artifacts: the
 * committed ones in contracts/artifacts are checked against a fresh compile in the tests.
 */

const require = createRequire(import.meta.url);
export const SOURCES = ["DevUSDC.sol", "Multicall3.sol"];

interface SolcOutput {
  errors?: Array<{ severity: string; formattedMessage: string }>;
  contracts: Record<
    string,
    Record<
      string,
      {
        abi: unknown[];
        evm: { bytecode: { object: string }; deployedBytecode: { object: string } };
      }
    >
  >;
}

export function compileContracts(): Record<string, Artifact> {
  const input = {
    language: "Solidity",
    sources: Object.fromEntries(
      SOURCES.map((file) => [
        file,
        { content: readFileSync(path.join(CONTRACTS_DIR, "src", file), "utf8") },
      ]),
    ),
    settings: {
      optimizer: { enabled: true, runs: 200 },
      evmVersion: "cancun",
      // No metadata hash: the bytecode then depends on the sources alone, not on file paths.
      metadata: { bytecodeHash: "none", appendCBOR: false },
      outputSelection: {
        "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] },
      },
    },
  };
  const findImports = (importPath: string) => {
    try {
      return { contents: readFileSync(require.resolve(importPath), "utf8") };
    } catch {
      return { error: `not found: ${importPath}` };
    }
  };
  const output = JSON.parse(
    solc.compile(JSON.stringify(input), { import: findImports }),
  ) as SolcOutput;
  const errors = (output.errors ?? []).filter((e) => e.severity === "error");
  if (errors.length) throw new Error(errors.map((e) => e.formattedMessage).join("\n"));
  const artifacts: Record<string, Artifact> = {};
  for (const file of SOURCES) {
    for (const [contractName, c] of Object.entries(output.contracts[file] ?? {})) {
      if (!c.evm.bytecode.object) continue; // abstract
      artifacts[contractName] = {
        contractName,
        compiler: `solc ${solc.version()}`,
        abi: c.abi,
        bytecode: `0x${c.evm.bytecode.object}`,
        deployedBytecode: `0x${c.evm.deployedBytecode.object}`,
      };
    }
  }
  return artifacts;
}
