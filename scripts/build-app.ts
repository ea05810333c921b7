/**
 * Builds the Creator Suite (app/) into app/dist, which the API serves at /app. Run by
 * `npm install` (the prepare script) and by `npm run build:app`. An install without dev
 * dependencies (the Docker image) has no Vite: it says so and leaves the app unbuilt.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const appDir = fileURLToPath(new URL("../app", import.meta.url));

if (!existsSync(path.join(appDir, "index.html"))) {
  console.log("build-app: no app/ here; nothing to build.");
  process.exit(0);
}

let vite: typeof import("vite");
try {
  vite = await import("vite");
} catch {
  console.log("build-app: Vite is not installed (dev dependencies omitted); /app stays unbuilt.");
  process.exit(0);
}

await vite.build({
  configFile: path.join(appDir, "vite.config.ts"),
  logLevel: "warn",
});
console.log(`build-app: built ${path.join("app", "dist")}`);
