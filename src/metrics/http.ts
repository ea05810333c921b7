import { timingSafeEqual } from "node:crypto";
import type { Request, RequestHandler } from "express";
import type { ServiceContext } from "../context.js";
import { AppError } from "../errors.js";
import { sha256Hex } from "../lib/secrets.js";
import type { Metrics } from "./metrics.js";

/** The label of every request that matched no route: raw paths would be unbounded. */
export const UNMATCHED_ROUTE = "unmatched";

/**
 * The route pattern that served a request (`/v1/videos/jobs/:id`), never its URL. express
 * keeps `req.route` once a route matched, also when its handler threw. A request answered by
 * mounted middleware without a route (static files) gets its mount path, which is just as
 * bounded.
 */
function routeLabel(req: Request): string {
  const pattern = req.route?.path;
  if (typeof pattern === "string") return `${req.baseUrl}${pattern}`;
  return req.baseUrl ? `${req.baseUrl}/*` : UNMATCHED_ROUTE;
}

/** Times every request, from its arrival to the end of its response (or the client leaving). */
export function httpRequestMetrics(metrics: Metrics): RequestHandler {
  return (req, res, next) => {
    const started = performance.now();
    res.once("close", () => {
      const seconds = (performance.now() - started) / 1000;
      metrics.httpRequest(
        { method: req.method, route: routeLabel(req), status: res.statusCode },
        seconds,
      );
    });
    next();
  };
}

/** Same length whatever the input, so comparing digests leaks nothing through timing. */
const digest = (value: string) => Buffer.from(sha256Hex(value), "hex");

/**
 * GET /metrics in Prometheus' text format. With METRICS_TOKEN set it takes only
 * `Authorization: Bearer <token>`; the token is compared in constant time and never logged
 * (request logs censor the Authorization header).
 */
export function metricsEndpoint(ctx: Pick<ServiceContext, "config" | "metrics">): RequestHandler {
  const token = ctx.config.metrics.token;
  const expected = token === undefined ? undefined : digest(token);
  return async (req, res) => {
    if (expected) {
      // The API's own codes for a missing or wrong bearer credential, here naming the token.
      const given = /^Bearer (.+)$/i.exec(req.get("authorization") ?? "")?.[1];
      if (!given) {
        throw new AppError(
          "missing_api_key",
          "GET /metrics requires Authorization: Bearer <METRICS_TOKEN>.",
        );
      }
      if (!timingSafeEqual(digest(given), expected)) {
        throw new AppError("invalid_api_key", "The metrics token is wrong.");
      }
    }
    const { registry } = ctx.metrics;
    res.set("Content-Type", registry.contentType).send(await registry.metrics());
  };
}
