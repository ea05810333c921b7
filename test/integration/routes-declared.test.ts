import type { Express } from "express";
import { Router } from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHttpApp } from "../../src/http/app.js";
import { mountedContracts } from "../../src/http/mount.js";
import type { RouteContract } from "../../src/http/openapi/contract.js";
import { apiContracts } from "../../src/http/openapi/routes.js";
import { startTestApp, type TestApp } from "../helpers/app.js";

/**
 * The OpenAPI document and the routes express serves come from the same declarations: every
 * route the app has was added by mount from a contract in apiContracts, and every contract in
 * apiContracts was mounted, once, at its own method and path.
 */

interface Layer {
  route?: { path: string | string[]; methods: Record<string, boolean>; stack: Layer[] };
  handle: { stack?: Layer[] };
}

interface FoundRoute {
  method: string;
  path: string;
  contracts: readonly RouteContract[];
}

/** Every route layer of the app, with the contracts its final handler was mounted from. */
function routesOf(app: Express): FoundRoute[] {
  const found: FoundRoute[] = [];
  const walk = (stack: Layer[]) => {
    for (const layer of stack) {
      if (layer.route) {
        const final = layer.route.stack.at(-1)?.handle;
        const paths = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path];
        for (const path of paths) {
          for (const [method, on] of Object.entries(layer.route.methods)) {
            if (on) found.push({ method, path, contracts: mountedContracts(final) });
          }
        }
      } else if (layer.handle.stack) {
        walk(layer.handle.stack);
      }
    }
  };
  walk((app as unknown as { router: { stack: Layer[] } }).router.stack);
  return found;
}

const undeclared = (routes: FoundRoute[]) =>
  routes.filter((r) => r.contracts.length === 0).map((r) => `${r.method} ${r.path}`);

let app: TestApp;

beforeAll(async () => {
  app = await startTestApp();
});

afterAll(async () => {
  await app?.close();
});

describe("routes and contracts", () => {
  it("serves no route that mount did not add from a contract", () => {
    const routes = routesOf(createHttpApp(app.ctx));
    expect(routes.length).toBeGreaterThan(40);
    expect(undeclared(routes)).toEqual([]);
  });

  it("mounts each contract in apiContracts once, at its own method and path", () => {
    const routes = routesOf(createHttpApp(app.ctx));
    const mounted = routes.flatMap((r) => r.contracts.map((contract) => ({ route: r, contract })));
    for (const { route, contract } of mounted) {
      expect(apiContracts, `${contract.operationId} is not in apiContracts`).toContain(contract);
      expect(route.path).toBe(contract.path);
      // A method refusal (router.all) answers for the methods its contracts document.
      if (route.method !== "_all") expect(route.method).toBe(contract.method);
    }
    const operations = mounted.map((m) => m.contract.operationId).sort();
    expect(operations).toEqual(apiContracts.map((c) => c.operationId).sort());
  });

  it("would catch a route added without a contract", () => {
    const http = createHttpApp(app.ctx);
    const router = Router();
    router.get("/v1/undeclared", (_req, res) => {
      res.json({});
    });
    http.use(router);
    expect(undeclared(routesOf(http))).toEqual(["get /v1/undeclared"]);
  });
});
