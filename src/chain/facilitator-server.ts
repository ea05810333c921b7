import type { Server } from "node:http";
import express, { type NextFunction, type Request, type Response } from "express";
import type { Facilitator } from "../domains/payments/facilitator.js";
import { reachableHost } from "./anvil.js";

export interface FacilitatorServer {
  url: string;
  close(): Promise<void>;
}

/**
 * A facilitator over HTTP, as x402's HTTP facilitator client speaks to it: GET /supported,
 * POST /verify and POST /settle with `{ x402Version, paymentPayload, paymentRequirements }`.
 * `polyforge chain --facilitator-port` serves the local chain's facilitator this way, so several
 * API processes (docker compose) settle through one signer whose broadcasts are serialized,
 * exactly as they would through a remote facilitator in production.
 */
export async function serveFacilitator(
  facilitator: Facilitator,
  options: { host: string; port: number },
): Promise<FacilitatorServer> {
  const app = express();
  app.disable("x-powered-by");
  app.use(express.json({ limit: "256kb" }));

  const fail = (res: Response, status: number, err: unknown) =>
    res.status(status).json({ error: err instanceof Error ? err.message : String(err) });

  app.get("/supported", async (_req, res) => {
    try {
      res.json(await facilitator.getSupported());
    } catch (err) {
      fail(res, 500, err);
    }
  });
  for (const action of ["verify", "settle"] as const) {
    app.post(`/${action}`, async (req, res) => {
      const body = req.body as { paymentPayload?: unknown; paymentRequirements?: unknown };
      if (
        typeof body?.paymentPayload !== "object" ||
        body.paymentPayload === null ||
        typeof body.paymentRequirements !== "object" ||
        body.paymentRequirements === null
      ) {
        fail(res, 400, "a JSON body with paymentPayload and paymentRequirements is required");
        return;
      }
      const payload = body.paymentPayload as Parameters<Facilitator["verify"]>[0];
      const requirements = body.paymentRequirements as Parameters<Facilitator["verify"]>[1];
      try {
        res.json(await facilitator[action](payload, requirements));
      } catch (err) {
        fail(res, 500, err);
      }
    });
  }
  app.use((_req, res) => {
    fail(res, 404, "not found: GET /supported, POST /verify, POST /settle");
  });
  // A body that is not JSON (express.json's error) is the caller's mistake.
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    fail(res, 400, err);
  });

  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(options.port, options.host, (err?: Error) =>
      err ? reject(err) : resolve(s),
    );
  });
  const { port } = server.address() as { port: number };
  return {
    url: `http://${reachableHost(options.host)}:${port}`,
    // Stops taking requests and lets the ones in flight (a settlement waiting for its
    // receipt) finish.
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeIdleConnections();
      }),
  };
}
