/**
 * Generates the client's types from the repository's openapi.json: src/schema.ts (openapi-typescript,
 * formatted by Biome) and src/operations.ts (the POST routes that take an Idempotency-Key).
 * `npm run client:types` writes them; the client-package test compares them with a fresh run.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import openapiTS, { astToString, COMMENT_HEADER } from "openapi-typescript";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
export const schemaFile = path.join(root, "packages/client/src/schema.ts");
export const operationsFile = path.join(root, "packages/client/src/operations.ts");

function format(source: string, file: string): string {
  return execFileSync(
    path.join(root, "node_modules/.bin/biome"),
    ["format", `--stdin-file-path=${file}`],
    { input: source, cwd: root, encoding: "utf8" },
  );
}

interface Operation {
  parameters?: { in?: string; name?: string }[];
}

/** The two generated files' text, as `npm run client:types` writes them. */
export async function generatedSources(): Promise<{ schema: string; operations: string }> {
  const document = JSON.parse(readFileSync(path.join(root, "openapi.json"), "utf8"));
  const schema = COMMENT_HEADER + astToString(await openapiTS(document));
  const paths = document.paths as Record<string, Record<string, Operation>>;
  const idempotent = Object.entries(paths)
    .filter(([, item]) =>
      (item.post?.parameters ?? []).some(
        (p) => p.in === "header" && p.name?.toLowerCase() === "idempotency-key",
      ),
    )
    .map(([p]) => p);
  const operations = `// Generated from openapi.json by packages/client/scripts/types.ts: do not edit.

/** The POST routes that take an Idempotency-Key header (the client sends one by default). */
export const IDEMPOTENT_POSTS: readonly string[] = ${JSON.stringify(idempotent)};
`;
  return {
    schema: format(schema, schemaFile),
    operations: format(operations, operationsFile),
  };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { schema, operations } = await generatedSources();
  writeFileSync(schemaFile, schema);
  writeFileSync(operationsFile, operations);
}
