import express from "express";
import type { AppContext } from "../context.js";
import { errorHandler, routeNotFound } from "../http/errors.js";
import { type HttpServer, listen } from "../http/server.js";
import { newId } from "../lib/ids.js";
import { metricsEndpoint } from "./http.js";

/**
 * The worker's own metrics listener (`polyforge worker` runs no API): GET /metrics on
 * HOST:WORKER_METRICS_PORT, behind the same token and error handling as the API's.
 */
export function startMetricsServer(ctx: AppContext, port: number): Promise<HttpServer> {
  const app = express();
  app.disable("x-powered-by");
  // No request log here (a scrape every few seconds is noise), but errors still carry an id.
  app.use((req, res, next) => {
    req.id = newId("req");
    res.setHeader("X-Request-Id", req.id);
    next();
  });
  app.get("/metrics", metricsEndpoint(ctx));
  app.use(routeNotFound);
  app.use(errorHandler(ctx.logger));
  const { host, shutdownTimeoutMs } = ctx.config.http;
  return listen(app, { host, port, shutdownTimeoutMs });
}
