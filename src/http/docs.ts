import { createRequire } from "node:module";
import path from "node:path";
import express, { Router } from "express";
import type { AppContext } from "../context.js";
import { opsContracts } from "./contract.js";
import { mountOn, uncheckedBody } from "./mount.js";
import { openApiDocument } from "./openapi/routes.js";

/**
 * GET /openapi.json, the OpenAPI document built from the routes' contracts, and GET /docs,
 * Swagger UI over it. Every asset the page loads is ours, served from the swagger-ui-dist
 * package, so the docs work offline and a strict Content-Security-Policy can allow 'self' only.
 */

const require = createRequire(import.meta.url);
const SWAGGER_UI_DIR = path.dirname(require.resolve("swagger-ui-dist/package.json"));

/** The files of swagger-ui-dist the page uses; nothing else in the package is served. */
const SWAGGER_UI_FILES = new Set([
  "swagger-ui.css",
  "swagger-ui-bundle.js",
  "favicon-32x32.png",
  "favicon-16x16.png",
]);

// Our own start-up script, not the package's (which points at a demo document on the web).
// validatorUrl null: Swagger UI would otherwise send the document to an online validator.
const INIT_SCRIPT = `window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
`;

const PAGE = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>Polyforge API reference</title>
    <link rel="stylesheet" href="/docs/assets/swagger-ui.css" />
    <link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png" sizes="32x32" />
    <link rel="icon" type="image/png" href="/docs/assets/favicon-16x16.png" sizes="16x16" />
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="/docs/assets/swagger-ui-bundle.js"></script>
    <script src="/docs/assets/init.js"></script>
  </body>
</html>
`;

export function docsRoutes(ctx: AppContext): Router {
  const router = Router();
  const mount = mountOn(router, ctx);
  const files = express.static(SWAGGER_UI_DIR, { index: false, redirect: false, maxAge: "1d" });

  mount(opsContracts.openApiDocument, async () => ({
    status: 200,
    body: uncheckedBody(openApiDocument()),
  }));

  mount(opsContracts.docs, async ({ res }) => {
    res.type("html").send(PAGE);
    return undefined;
  });

  // Swagger UI's own files: static assets under the page, not API routes.
  router.use("/docs/assets", (req, res, next) => {
    if (req.method !== "GET" && req.method !== "HEAD") return next();
    const name = req.path.slice(1);
    if (name === "init.js") {
      res.type("js").send(INIT_SCRIPT);
      return;
    }
    if (!SWAGGER_UI_FILES.has(name)) return next();
    files(req, res, next);
  });

  return router;
}
