import { Router } from "express";
import { z } from "zod";
import type { AppContext, ServiceContext } from "../../context.js";
import { keyScopeOf } from "../../http/auth.js";
import { decodeCursor, encodeCursor, pageOf, pgTimestampText } from "../../http/cursor.js";
import { mountOn } from "../../http/mount.js";
import { creditsToJson } from "../../lib/credits.js";
import { passContracts, passIdParams } from "./contract.js";
import { getEarnings, getPassAnalytics } from "./earnings.js";
import {
  archivePass,
  createPass,
  getPass,
  listPasses,
  type Pass,
  type PassSort,
  passView,
  sortValueOf,
  updatePass,
} from "./service.js";

export function passJson(ctx: ServiceContext, pass: Pass) {
  const view = passView(ctx, pass);
  return { ...view, fee: creditsToJson(view.fee), uses: Number(view.uses) };
}

/** List cursors carry their sort, so one sort's cursor cannot page another. */
const passCursor = (sort: PassSort) =>
  z.tuple([
    z.literal(sort),
    sort === "newest" ? pgTimestampText : z.string().regex(/^\d{1,18}$/),
    passIdParams.shape.id,
  ]);

export function passRoutes(ctx: AppContext): Router {
  const router = Router();
  const mount = mountOn(router, ctx);
  const pass = (answer: Pass) => ({ status: 200 as const, body: passJson(ctx, answer) });

  mount(passContracts.createPass, async ({ ctx, caller, body }) => {
    const created = await createPass(ctx, keyScopeOf(caller), body);
    return { status: 201, body: passJson(ctx, created) };
  });

  mount(passContracts.listPasses, async ({ ctx, caller, query: q }) => {
    const scope = keyScopeOf(caller);
    const page = await pageOf(
      q.limit,
      (limit) =>
        listPasses(ctx, scope, {
          limit,
          sort: q.sort,
          creatorId: q.creator === "me" ? scope.accountId : q.creator,
          tag: q.tag,
          mediaType: q.mediaType,
          includeArchived: q.includeArchived,
          after: q.cursor
            ? (([, value, id]) => ({ value, id }))(decodeCursor(q.cursor, passCursor(q.sort)))
            : undefined,
        }),
      (last) => encodeCursor([q.sort, sortValueOf(last, q.sort), last.id]),
    );
    return {
      status: 200,
      body: { data: page.data.map((p) => passJson(ctx, p)), nextCursor: page.nextCursor },
    };
  });

  const byId = { notFound: "Pass" };
  mount(
    passContracts.getPass,
    async ({ ctx, caller, params }) =>
      pass(await getPass(ctx, keyScopeOf(caller).network, params.id)),
    byId,
  );

  mount(
    passContracts.updatePass,
    async ({ ctx, caller, params, body: { fee, ...patch } }) =>
      pass(
        await updatePass(ctx, keyScopeOf(caller), params.id, {
          ...patch,
          ...(fee === undefined ? {} : { fee }),
        }),
      ),
    byId,
  );

  mount(
    passContracts.archivePass,
    async ({ ctx, caller, params }) => pass(await archivePass(ctx, keyScopeOf(caller), params.id)),
    byId,
  );

  mount(passContracts.getEarnings, async ({ ctx, caller }) => {
    const earnings = await getEarnings(ctx, keyScopeOf(caller));
    return {
      status: 200,
      body: {
        network: earnings.network,
        totalEarned: creditsToJson(earnings.totalEarned),
        available: creditsToJson(earnings.available),
        pendingPayout: creditsToJson(earnings.pendingPayout),
        paidOut: creditsToJson(earnings.paidOut),
        passes: earnings.passes.map((p) => ({
          passId: p.passId,
          name: p.name,
          uses: Number(p.uses),
          feesCharged: creditsToJson(p.feesCharged),
          earned: creditsToJson(p.earned),
        })),
      },
    };
  });

  mount(passContracts.getPassAnalytics, async ({ ctx, caller, query }) => {
    const analytics = await getPassAnalytics(ctx, keyScopeOf(caller), query.range);
    return {
      status: 200,
      body: {
        ...analytics,
        passes: analytics.passes.map((p) => ({
          ...p,
          earned: creditsToJson(p.earned),
          days: p.days.map((d) => ({ ...d, earned: creditsToJson(d.earned) })),
        })),
      },
    };
  });

  return router;
}
