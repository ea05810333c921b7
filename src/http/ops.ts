import { Router } from "express";
import type { AppContext } from "../context.js";
import { migrationsApplied } from "../db/migrate.js";
import { AppError } from "../errors.js";
import { metricsEndpoint } from "../metrics/http.js";
import { opsContracts } from "./contract.js";
import { mountOn } from "./mount.js";

/** /healthz, /readyz and /metrics: the process, its database and its counters. */
export function opsRoutes(ctx: AppContext): Router {
  const router = Router();
  const mount = mountOn(router, ctx);

  mount(opsContracts.health, async () => ({ status: 200, body: { status: "ok" } }));

  mount(opsContracts.ready, async () => {
    const timeout = new Promise<false>((resolve) => setTimeout(resolve, 3_000, false).unref());
    const ready = await Promise.race([migrationsApplied(ctx.pool).catch(() => false), timeout]);
    if (!ready) throw new AppError("not_ready", "The database is unreachable or not migrated.");
    // Payments report their state without failing readiness: keyed traffic does not need them.
    return { status: 200, body: { status: "ready", payments: ctx.payments.states() } };
  });

  // Its bearer token (METRICS_TOKEN) is checked by the endpoint itself, in constant time.
  const metrics = metricsEndpoint(ctx);
  mount(opsContracts.metrics, async ({ req, res }) => {
    // It answers (or throws) itself and never passes the request on.
    await metrics(req, res, () => undefined);
    return undefined;
  });

  return router;
}
