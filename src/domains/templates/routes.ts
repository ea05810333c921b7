import { Router } from "express";
import { z } from "zod";
import type { ServiceContext } from "../../context.js";
import { authenticate, keyScopeOf } from "../../http/auth.js";
import { decodeCursor, encodeCursor, pgTimestampText } from "../../http/cursor.js";
import { idempotent } from "../../http/idempotency.js";
import { pathParams } from "../../http/params.js";
import { MAX_PROMPT_LENGTH } from "../catalog/models.js";
import { createTemplate, getTemplate, listTemplates, templateView } from "./service.js";

const templateCursor = z.tuple([pgTimestampText, templateIdParams.shape.id]);

export function templateRoutes(ctx: ServiceContext): Router {
  const router = Router();
  const auth = authenticate(ctx);

  router.post("/v1/templates", auth, idempotent(ctx), async (req, res) => {
    const input = createTemplateRequest.parse(req.body);
    res.status(201).json(templateView(await createTemplate(ctx, keyScopeOf(req), input)));
  });

  router.get("/v1/templates", auth, async (req, res) => {
    const q = listTemplatesQuery.parse(req.query);
    const scope = keyScopeOf(req);
    const page = await listTemplates(ctx, scope, {
      limit: q.limit + 1,
      creatorId: q.creator === "me" ? scope.accountId : q.creator,
      before: q.cursor
        ? (([createdAt, id]) => ({ createdAt, id }))(decodeCursor(q.cursor, templateCursor))
        : undefined,
    });
    const data = page.slice(0, q.limit);
    const last = data.at(-1);
    res.json({
      data: data.map(templateView),
      nextCursor:
        page.length > q.limit && last
          ? encodeCursor([last.createdAt.toISOString(), last.id])
          : null,
    });
  });

  router.get("/v1/templates/:id", auth, async (req, res) => {
    const { id } = pathParams(templateIdParams, req.params, "Template");
    res.json(templateView(await getTemplate(ctx, keyScopeOf(req).network, id)));
  });

  return router;
}
