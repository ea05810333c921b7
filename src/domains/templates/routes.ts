import { Router } from "express";
import { z } from "zod";
import type { AppContext } from "../../context.js";
import { keyScopeOf } from "../../http/auth.js";
import { decodeCursor, encodeCursor, pageOf, pgTimestampText } from "../../http/cursor.js";
import { mountOn } from "../../http/mount.js";
import { templateContracts, templateIdParams } from "./contract.js";
import { createTemplate, getTemplate, listTemplates, templateView } from "./service.js";

const templateCursor = z.tuple([pgTimestampText, templateIdParams.shape.id]);

export function templateRoutes(ctx: AppContext): Router {
  const router = Router();
  const mount = mountOn(router, ctx);

  mount(templateContracts.createTemplate, async ({ ctx, caller, body }) => ({
    status: 201,
    body: templateView(await createTemplate(ctx, keyScopeOf(caller), body)),
  }));

  mount(templateContracts.listTemplates, async ({ ctx, caller, query: q }) => {
    const scope = keyScopeOf(caller);
    const page = await pageOf(
      q.limit,
      (limit) =>
        listTemplates(ctx, scope, {
          limit,
          creatorId: q.creator === "me" ? scope.accountId : q.creator,
          before: q.cursor
            ? (([createdAt, id]) => ({ createdAt, id }))(decodeCursor(q.cursor, templateCursor))
            : undefined,
        }),
      (last) => encodeCursor([last.createdAt.toISOString(), last.id]),
    );
    return {
      status: 200,
      body: { data: page.data.map(templateView), nextCursor: page.nextCursor },
    };
  });

  mount(
    templateContracts.getTemplate,
    async ({ ctx, caller, params }) => ({
      status: 200,
      body: templateView(await getTemplate(ctx, keyScopeOf(caller).network, params.id)),
    }),
    { notFound: "Template" },
  );

  return router;
}
