import { z } from "zod";
import { networks } from "../lib/network.js";
import { route } from "./openapi/contract.js";

/** The operational routes (health, readiness, the API's own description) in the document. */

export const opsContracts = {
  health: route({
    method: "get",
    path: "/healthz",
    operationId: "health",
    summary: "Liveness: the process answers",
    tag: "Operations",
    auth: [],
    responses: {
      200: { description: "Alive.", schema: z.object({ status: z.literal("ok") }) },
    },
    errors: [],
  }),
  ready: route({
    method: "get",
    path: "/readyz",
    operationId: "ready",
    summary: "Readiness: the database answers and is migrated",
    description:
      "Also reports each configured payment network's state without failing on it: a network whose chain RPC does not answer is `unavailable` (its payments answer 503 `payments_unavailable`) until it does.",
    tag: "Operations",
    auth: [],
    responses: {
      200: {
        description: "Ready.",
        schema: z.object({
          status: z.literal("ready"),
          payments: z
            .partialRecord(z.enum(networks), z.enum(["available", "unavailable"]))
            .meta({ example: { test: "available" } }),
        }),
      },
    },
    errors: ["not_ready"],
  }),
  metrics: route({
    method: "get",
    path: "/metrics",
    operationId: "metrics",
    summary: "Prometheus metrics (text format)",
    description:
      "HTTP, generation, routing, payment, job-queue and ledger series. With METRICS_TOKEN set, a scrape must send it as a bearer token.",
    tag: "Operations",
    auth: ["metricsToken", "unlessConfigured"],
    responses: {
      200: {
        description: "The Prometheus text exposition format 0.0.4.",
        schema: z.string(),
        contentTypes: ["text/plain; version=0.0.4"],
        example: "# TYPE polyforge_generation_results_total counter\n",
      },
    },
    errors: [],
  }),
  openApiDocument: route({
    method: "get",
    path: "/openapi.json",
    operationId: "openApiDocument",
    summary: "This document (OpenAPI 3.1)",
    tag: "Operations",
    auth: [],
    responses: {
      200: {
        description: "The OpenAPI document.",
        schema: z.looseObject({ openapi: z.literal("3.1.0") }),
      },
    },
    errors: [],
  }),
  docs: route({
    method: "get",
    path: "/docs",
    operationId: "docs",
    summary: "The API reference to read in a browser (Swagger UI, served offline)",
    tag: "Operations",
    auth: [],
    responses: {
      200: { description: "An HTML page.", schema: z.string(), contentTypes: ["text/html"] },
    },
    errors: [],
  }),
};
