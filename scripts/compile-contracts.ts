import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { CONTRACTS_DIR } from "../src/chain/artifacts.js";
import { compileContracts } from "../src/chain/compile.js";

/** `npm run contracts:compile`: writes contracts/artifacts/<Contract>.json from the sources. */
const dir = path.join(CONTRACTS_DIR, "artifacts");
mkdirSync(dir, { recursive: true });
for (const artifact of Object.values(compileContracts())) {
  writeFileSync(
    path.join(dir, `${artifact.contractName}.json`),
    `${JSON.stringify(artifact, null, 2)}\n`,
  );
  console.log(`${artifact.contractName}: ${(artifact.deployedBytecode.length - 2) / 2} bytes`);
}
