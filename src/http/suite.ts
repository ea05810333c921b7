import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import express, { Router } from "express";
import type { AppContext } from "../context.js";

/**
 * The Creator Suite (app/, React) served at /app: its built files, and index.html for every
 * other /app path so the app's own routes are real, reloadable URLs. These are static files,
 * not API routes, so they are mounted as middleware (like Swagger UI's assets) and stay out of
 * the OpenAPI document. The app calls only the public API, from the same origin.
 */

export const SUITE_DIR = fileURLToPath(new URL("../../app/dist", import.meta.url));
const INDEX = path.join(SUITE_DIR, "index.html");

/** Whether app/dist holds a build (npm install makes one; an install without dev deps does not). */
export const suiteBuilt = () => existsSync(INDEX);

const NOT_BUILT = `<!doctype html><meta charset="utf-8"><title>Polyforge Creator Suite</title>
<p>The Creator Suite is not built. Run <code>npm run build:app</code> (npm install runs it).</p>`;

export function suiteRoutes(ctx: AppContext): Router {
  const router = Router();
  // Everything the page loads is ours; outputs are signed download links under PUBLIC_URL.
  const publicOrigin = new URL(ctx.config.http.publicUrl).origin;
  const csp = [
    "default-src 'self'",
    `img-src 'self' blob: data: ${publicOrigin}`,
    `media-src 'self' blob: ${publicOrigin}`,
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "frame-ancestors 'none'",
  ].join("; ");
  // Hashed file names: an asset never changes under its name.
  const assets = express.static(path.join(SUITE_DIR, "assets"), {
    index: false,
    redirect: false,
    immutable: true,
    maxAge: "365d",
    fallthrough: false,
  });

  if (ctx.config.env !== "production") {
    // Middleware, not a route: "/" is not part of the API.
    router.use((req, res, next) => {
      if (req.path === "/" && (req.method === "GET" || req.method === "HEAD")) {
        res.redirect(302, "/app/");
        return;
      }
      next();
    });
  }

  router.use("/app/assets", (req, res, next) => {
    if (req.method !== "GET" && req.method !== "HEAD") return next();
    assets(req, res, next);
  });

  router.use("/app", (req, res, next) => {
    if (req.method !== "GET" && req.method !== "HEAD") return next();
    res.setHeader("Content-Security-Policy", csp);
    if (!suiteBuilt()) {
      res.status(503).type("html").send(NOT_BUILT);
      return;
    }
    // The shell is small and names the current assets: never cached.
    res.setHeader("Cache-Control", "no-cache");
    res.sendFile(INDEX);
  });

  return router;
}
