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
