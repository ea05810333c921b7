/**
 * Writes .env.example and the README's configuration table from the config schema, so the
 * documentation cannot drift from what the code reads. `--check` fails instead of writing.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { configSchema } from "../src/config.js";

const README_START = "<!-- config:start -->";
const README_END = "<!-- config:end -->";

interface Variable {
  name: string;
  description: string;
  fallback: string | undefined;
}

function variables(): Variable[] {
  return Object.entries(configSchema.shape).map(([name, schema]) => {
    const fallback = schema.safeParse(undefined);
    return {
      name,
      description: schema.description ?? "",
      fallback: fallback.success && fallback.data !== undefined ? String(fallback.data) : undefined,
    };
  });
}

export function envExample(): string {
  const lines = [
    "# Polyforge configuration. Every variable is optional in development; copy to .env to use.",
    "# Generated from src/config.ts by `npm run config:docs`.",
    "",
  ];
  for (const v of variables()) {
    lines.push(`# ${v.description}`);
    lines.push(v.fallback === undefined ? `# ${v.name}=` : `# ${v.name}=${v.fallback}`);
    lines.push("");
  }
  return lines.join("\n");
}

export function readmeTable(): string {
  const rows = variables().map(
    (v) =>
      `| \`${v.name}\` | ${v.fallback === undefined ? "—" : `\`${v.fallback}\``} | ${v.description} |`,
  );
  return [
    README_START,
    "| variable | default | meaning |",
    "|---|---|---|",
    ...rows,
    README_END,
  ].join("\n");
}

export function withReadmeTable(readme: string): string {
  const start = readme.indexOf(README_START);
  const end = readme.indexOf(README_END);
  if (start < 0 || end < 0)
    throw new Error(`README.md lacks the ${README_START} … ${README_END} markers`);
  return readme.slice(0, start) + readmeTable() + readme.slice(end + README_END.length);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const check = process.argv.includes("--check");
  const readme = readFileSync("README.md", "utf8");
  const wanted: Array<[string, string, string]> = [
    [".env.example", readFileSync(".env.example", "utf8"), envExample()],
    ["README.md", readme, withReadmeTable(readme)],
  ];
  for (const [file, current, next] of wanted) {
    if (current === next) continue;
    if (check) {
      console.error(`${file} is out of date: run npm run config:docs`);
      process.exitCode = 1;
    } else {
      writeFileSync(file, next);
    }
  }
}
