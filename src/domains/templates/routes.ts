import { Router } from "express";
import { z } from "zod";
import type { ServiceContext } from "../../context.js";
import { authenticate, keyScopeOf } from "../../http/auth.js";
import { decodeCursor, encodeCursor, pgTimestampText } from "../../http/cursor.js";
import { idempotent } from "../../http/idempotency.js";
import { pathParams } from "../../http/params.js";
import { MAX_PROMPT_LENGTH } from "../catalog/models.js";
import { createTemplate, getTemplate, listTemplates, templateView } from "./service.js";

const MAX_VARIABLES = 20;
/** The table's own check (prompt_templates_text_length) holds a template's text to this. */
const MAX_TEMPLATE_TEXT_LENGTH = 4000;
const variableName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, "a variable name is letters, digits and _");

export const templateVariable = z
  .object({
    default: z.string().max(MAX_PROMPT_LENGTH).optional(),
    maxLength: z.number().int().min(1).max(MAX_PROMPT_LENGTH).default(200),
    allowed: z
      .array(z.string().min(1).max(MAX_PROMPT_LENGTH))
      .min(1)
      .max(50)
      .optional()
      .describe("When set, the only values accepted."),
  })
  .strict();

export const createTemplateRequest = z
  .object({
    name: z.string().trim().min(1).max(80),
    description: z.string().trim().max(2000).default(""),
    text: z
      .string()
      .trim()
      .min(1)
      .max(MAX_TEMPLATE_TEXT_LENGTH)
      .describe("The prompt, with {{variables}} where each generation fills in its own values."),
    variables: z
      .record(variableName, templateVariable)
      .default({})
      .refine((v) => Object.keys(v).length <= MAX_VARIABLES, `at most ${MAX_VARIABLES} variables`),
    visibility: z.enum(["public", "unlisted"]).default("public"),
  })
  .strict();

export const templateIdParams = z.object({
  id: z.string().regex(/^tpl_[0-9a-z]{26}$/, "not a template id"),
});

export const listTemplatesQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(100).default(20),
    cursor: z.string().max(200).optional(),
    creator: z
      .string()
      .regex(/^(me|acc_[0-9a-z]{26})$/, "an account id, or me")
      .optional(),
  })
  .strict();

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
