import { Router } from "express";
import { z } from "zod";
import type { ServiceContext } from "../../context.js";
import { authenticate, keyScopeOf } from "../../http/auth.js";
import { decodeCursor, encodeCursor, pgTimestampText } from "../../http/cursor.js";
import { idempotent } from "../../http/idempotency.js";
import { pathParams } from "../../http/params.js";
import { creditsToJson } from "../../lib/credits.js";
import { aspectRatios, imageResolutions, videoResolutions } from "../catalog/models.js";
import { getEarnings, getPassAnalytics } from "./earnings.js";
import {
  archivePass,
  createPass,
  getPass,
  listPasses,
  type Pass,
  type PassSort,
  passSorts,
  passView,
  sortValueOf,
  updatePass,
} from "./service.js";

/** The highest per-use fee a pass may ask: $10 a use. */
export const MAX_PASS_FEE = 1000;

const text = (max: number) =>
  z
    .string()
    .trim()
    .max(max)
    .regex(/^[^\p{Cc}]*$/u, "must not contain control characters");
const tag = z
  .string()
  .trim()
  .toLowerCase()
  .regex(/^[a-z0-9][a-z0-9-]{0,31}$/, "a tag is 1–32 letters, digits or dashes");
const uploadId = z.string().regex(/^img_[0-9a-z]{26}$/, "not an upload id");

export const passDefaults = z
  .object({
    aspectRatio: z.enum(aspectRatios).optional(),
    resolution: z.enum([...imageResolutions, ...videoResolutions]).optional(),
  })
  .strict();

const passFields = {
  name: text(80).min(1),
  description: text(2000),
  stylePrompt: z
    .string()
    .trim()
    .min(1)
    .max(1000)
    .describe("Appended to the prompt of every generation that applies the pass."),
  negativePrompt: z.string().trim().min(1).max(1000).nullable(),
  defaults: passDefaults.describe("Options for generations that leave them out."),
  previewImageIds: z.array(uploadId).max(8).describe("Your uploads (POST /v1/uploads)."),
  tags: z.array(tag).max(10),
  mediaType: z.enum(["image", "video"]),
  fee: z
    .number()
    .int()
    .min(0)
    .max(MAX_PASS_FEE)
    .describe("Credits per use: each model result that applies the pass."),
  visibility: z
    .enum(["public", "unlisted"])
    .describe("Unlisted passes apply by id but are not listed."),
};

/** A pass's resolution default must be one its media type has. */
function matchingResolution(
  pass: {
    mediaType?: "image" | "video" | undefined;
    defaults?: { resolution?: string } | undefined;
  },
  issues: z.core.$RefinementCtx,
) {
  const resolution = pass.defaults?.resolution;
  if (!resolution || !pass.mediaType) return;
  const allowed: readonly string[] =
    pass.mediaType === "image" ? imageResolutions : videoResolutions;
  if (!allowed.includes(resolution)) {
    issues.addIssue({
      code: "custom",
      path: ["defaults", "resolution"],
      message: `a ${pass.mediaType} pass takes one of ${allowed.join(", ")}`,
    });
  }
}

export const createPassRequest = z
  .object({
    ...passFields,
    description: passFields.description.default(""),
    negativePrompt: passFields.negativePrompt.optional(),
    defaults: passFields.defaults.default({}),
    previewImageIds: passFields.previewImageIds.default([]),
    tags: passFields.tags.default([]),
    mediaType: passFields.mediaType.default("image"),
    visibility: passFields.visibility.default("public"),
  })
  .strict()
  .superRefine(matchingResolution);

export const updatePassRequest = z
  .object(passFields)
  .partial()
  .strict()
  .superRefine((patch, issues) => {
    if (Object.keys(patch).length === 0) {
      issues.addIssue({ code: "custom", path: [], message: "nothing to change" });
    }
    matchingResolution(patch, issues);
  });

export const passIdParams = z.object({
  id: z.string().regex(/^pass_[0-9a-z]{26}$/, "not a pass id"),
});

export const listPassesQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(100).default(20),
    cursor: z.string().max(200).optional(),
    sort: z.enum(passSorts).default("newest"),
    creator: z
      .string()
      .regex(/^(me|acc_[0-9a-z]{26})$/, "an account id, or me")
      .optional(),
    tag: tag.optional(),
    mediaType: z.enum(["image", "video"]).optional(),
    includeArchived: z
      .enum(["true", "false"])
      .transform((v) => v === "true")
      .optional()
      .describe("Your own archived passes too."),
  })
  .strict();

export const analyticsQuery = z.object({ range: z.enum(["7d", "30d"]).default("7d") }).strict();

export function passJson(ctx: ServiceContext, pass: Pass) {
  const view = passView(ctx, pass);
  return { ...view, fee: creditsToJson(view.fee), uses: creditsToJson(view.uses) };
}

/** List cursors carry their sort, so one sort's cursor cannot page another. */
const passCursor = (sort: PassSort) =>
  z.tuple([
    z.literal(sort),
    sort === "newest" ? pgTimestampText : z.string().regex(/^\d{1,18}$/),
    passIdParams.shape.id,
  ]);

export function passRoutes(ctx: ServiceContext): Router {
  const router = Router();
  const auth = authenticate(ctx);

  router.post("/v1/passes", auth, idempotent(ctx), async (req, res) => {
    const input = createPassRequest.parse(req.body);
    const pass = await createPass(ctx, keyScopeOf(req), { ...input, fee: BigInt(input.fee) });
    res.status(201).json(passJson(ctx, pass));
  });

  router.get("/v1/passes", auth, async (req, res) => {
    const q = listPassesQuery.parse(req.query);
    const scope = keyScopeOf(req);
    const page = await listPasses(ctx, scope, {
      limit: q.limit + 1,
      sort: q.sort,
      creatorId: q.creator === "me" ? scope.accountId : q.creator,
      tag: q.tag,
      mediaType: q.mediaType,
      includeArchived: q.includeArchived,
      after: q.cursor
        ? (([, value, id]) => ({ value, id }))(decodeCursor(q.cursor, passCursor(q.sort)))
        : undefined,
    });
    const data = page.slice(0, q.limit);
    const last = data.at(-1);
    res.json({
      data: data.map((p) => passJson(ctx, p)),
      nextCursor:
        page.length > q.limit && last
          ? encodeCursor([q.sort, sortValueOf(last, q.sort), last.id])
          : null,
    });
  });

  router.get("/v1/passes/:id", auth, async (req, res) => {
    const { id } = pathParams(passIdParams, req.params, "Pass");
    res.json(passJson(ctx, await getPass(ctx, keyScopeOf(req).network, id)));
  });

  router.patch("/v1/passes/:id", auth, async (req, res) => {
    const { id } = pathParams(passIdParams, req.params, "Pass");
    const { fee, ...patch } = updatePassRequest.parse(req.body);
    const pass = await updatePass(ctx, keyScopeOf(req), id, {
      ...patch,
      ...(fee === undefined ? {} : { fee: BigInt(fee) }),
    });
    res.json(passJson(ctx, pass));
  });

  router.post("/v1/passes/:id/archive", auth, async (req, res) => {
    const { id } = pathParams(passIdParams, req.params, "Pass");
    res.json(passJson(ctx, await archivePass(ctx, keyScopeOf(req), id)));
  });

  router.get("/v1/profile/earnings", auth, async (req, res) => {
    const earnings = await getEarnings(ctx, keyScopeOf(req));
    res.json({
      network: earnings.network,
      totalEarned: creditsToJson(earnings.totalEarned),
      available: creditsToJson(earnings.available),
      pendingPayout: creditsToJson(earnings.pendingPayout),
      paidOut: creditsToJson(earnings.paidOut),
      passes: earnings.passes.map((p) => ({
        passId: p.passId,
        name: p.name,
        uses: creditsToJson(p.uses),
        feesCharged: creditsToJson(p.feesCharged),
        earned: creditsToJson(p.earned),
      })),
    });
  });

  router.get("/v1/profile/analytics", auth, async (req, res) => {
    const { range } = analyticsQuery.parse(req.query);
    const analytics = await getPassAnalytics(ctx, keyScopeOf(req), range);
    res.json({
      ...analytics,
      passes: analytics.passes.map((p) => ({
        ...p,
        earned: creditsToJson(p.earned),
        days: p.days.map((d) => ({ ...d, earned: creditsToJson(d.earned) })),
      })),
    });
  });

  return router;
}
