import express from "express";
import { pinoHttp } from "pino-http";
import type { AppContext } from "../context.js";
import { accountRoutes } from "../domains/accounts/routes.js";
import { audioRoutes } from "../domains/audio/routes.js";
import { catalogRoutes } from "../domains/catalog/routes.js";
import { chatRoutes } from "../domains/chat/routes.js";
import { openaiImagesRoutes } from "../domains/generations/openai-images.js";
import { generationRoutes } from "../domains/generations/routes.js";
import { generationStreamRoutes } from "../domains/generations/stream.js";
import { videoJobRoutes } from "../domains/generations/video-jobs.js";
import { keyRoutes } from "../domains/keys/routes.js";
import { ledgerRoutes } from "../domains/ledger/routes.js";
import { passRoutes } from "../domains/passes/routes.js";
import { paymentRoutes } from "../domains/payments/routes.js";
import { payoutRoutes } from "../domains/payouts/routes.js";
import { studioRoutes } from "../domains/studio/routes.js";
import { templateRoutes } from "../domains/templates/routes.js";
import { uploadRoutes } from "../domains/uploads/routes.js";
import { webhookRoutes } from "../domains/webhooks/routes.js";
import { workflowRoutes } from "../domains/workflows/routes.js";
import { newId } from "../lib/ids.js";
import { mcpRoutes } from "../mcp/http.js";
import { httpRequestMetrics } from "../metrics/http.js";
import { docsRoutes } from "./docs.js";
import { errorHandler, routeNotFound } from "./errors.js";
import { guardParsedInput } from "./input-guard.js";
import { opsRoutes } from "./ops.js";
import { suiteRoutes } from "./suite.js";

const CLIENT_REQUEST_ID = /^[\w.:-]{1,128}$/;

export function createHttpApp(ctx: AppContext): express.Express {
  const app = express();
  app.disable("x-powered-by");
  // The client address (req.ip) through that many trusted proxies: unauthenticated requests are
  // rate-limited by it.
  app.set("trust proxy", ctx.config.http.trustProxy);

  app.use(httpRequestMetrics(ctx.metrics));

  // Request id: the client's X-Request-Id when it is sane, else ours; echoed on every response.
  app.use(
    pinoHttp({
      logger: ctx.logger,
      genReqId: (req, res) => {
        const given = req.headers["x-request-id"];
        const id =
          typeof given === "string" && CLIENT_REQUEST_ID.test(given) ? given : newId("req");
        res.setHeader("X-Request-Id", id);
        return id;
      },
      customLogLevel: (_req, res, err) =>
        err || res.statusCode >= 500 ? "error" : res.statusCode >= 400 ? "warn" : "info",
    }),
  );
  app.use(express.json({ limit: "1mb" }));
  app.use(guardParsedInput);

  app.use(opsRoutes(ctx));
  app.use(docsRoutes(ctx));
  app.use(suiteRoutes(ctx));
  app.use(accountRoutes(ctx));
  app.use(keyRoutes(ctx));
  app.use(ledgerRoutes(ctx));
  app.use(paymentRoutes(ctx));
  app.use(payoutRoutes(ctx));
  app.use(studioRoutes(ctx));
  app.use(catalogRoutes(ctx));
  app.use(generationRoutes(ctx));
  app.use(openaiImagesRoutes(ctx));
  app.use(chatRoutes(ctx));
  app.use(videoJobRoutes(ctx));
  app.use(audioRoutes(ctx));
  app.use(generationStreamRoutes(ctx));
  app.use(uploadRoutes(ctx));
  app.use(webhookRoutes(ctx));
  app.use(passRoutes(ctx));
  app.use(templateRoutes(ctx));
  app.use(workflowRoutes(ctx));
  app.use(mcpRoutes(ctx));

  app.use(routeNotFound);
  app.use(errorHandler(ctx.logger));
  return app;
}
