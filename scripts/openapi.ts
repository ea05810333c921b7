/**
 * Writes openapi.json, the OpenAPI document built from the routes' contracts, so the committed
 * copy cannot drift from what the code serves at /openapi.json. `--check` fails instead of
 * writing.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { openApiDocument } from "../src/http/openapi/routes.js";

export const OPENAPI_FILE = "openapi.json";

export const openApiJson = () => `${JSON.stringify(openApiDocument(), null, 2)}\n`;

if (import.meta.url === `file://${process.argv[1]}`) {
  const wanted = openApiJson();
  let current: string | undefined;
  try {
    current = readFileSync(OPENAPI_FILE, "utf8");
  } catch {
    current = undefined;
  }
  if (current !== wanted) {
    if (process.argv.includes("--check")) {
      console.error(`${OPENAPI_FILE} is out of date: run npm run openapi`);
      process.exitCode = 1;
    } else {
      writeFileSync(OPENAPI_FILE, wanted);
      console.log(`wrote ${OPENAPI_FILE}`);
    }
  }
}
