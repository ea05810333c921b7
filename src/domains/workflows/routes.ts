import { Router } from "express";
import type { AppContext } from "../../context.js";
import { keyScopeOf } from "../../http/auth.js";
import { mountOn, uncheckedBody } from "../../http/mount.js";
import { creditsToJson } from "../../lib/credits.js";
import { generationJson } from "../generations/wire.js";
import { reservationJson } from "../studio/routes.js";
import { workflowContracts } from "./contract.js";
import {
  createWorkflow,
  deleteWorkflow,
  getWorkflow,
  getWorkflowRun,
  listWorkflows,
  type RunView,
  startWorkflowRun,
  type WorkflowView,
} from "./service.js";

const workflowJson = (w: WorkflowView) => ({
  ...w,
  cost: w.cost === null ? null : creditsToJson(w.cost),
});

const runJson = (run: RunView) => ({
  ...run,
  reservation: reservationJson(run.reservation),
  cost: {
    quoted: creditsToJson(run.cost.quoted),
    charged: creditsToJson(run.cost.charged),
    refunded: creditsToJson(run.cost.refunded),
  },
  steps: run.steps.map((s) => ({
    ...s,
    cost: creditsToJson(s.cost),
    generation: s.generation && generationJson(s.generation),
  })),
});

export function workflowRoutes(ctx: AppContext): Router {
  const router = Router();
  const mount = mountOn(router, ctx);

  mount(workflowContracts.createWorkflow, async ({ ctx, caller, body }) => ({
    status: 201,
    body: workflowJson(await createWorkflow(ctx, keyScopeOf(caller), body)),
  }));

  mount(workflowContracts.listWorkflows, async ({ ctx, caller, query }) => {
    const page = await listWorkflows(ctx, keyScopeOf(caller), {
      limit: query.limit,
      before: query.cursor,
    });
    return {
      status: 200,
      body: { data: page.data.map(workflowJson), nextCursor: page.nextCursor },
    };
  });

  mount(workflowContracts.getWorkflow, async ({ ctx, caller, params }) => ({
    status: 200,
    body: workflowJson(await getWorkflow(ctx, keyScopeOf(caller), params.id)),
  }));

  mount(workflowContracts.deleteWorkflow, async ({ ctx, caller, params }) => {
    await deleteWorkflow(ctx, keyScopeOf(caller), params.id);
    return { status: 204, body: undefined };
  });

  mount(workflowContracts.runWorkflow, async ({ ctx, caller, params }) => ({
    status: 202,
    body: uncheckedBody(runJson(await startWorkflowRun(ctx, keyScopeOf(caller), params.id))),
  }));

  mount(workflowContracts.getWorkflowRun, async ({ ctx, caller, params }) => ({
    status: 200,
    body: uncheckedBody(
      runJson(await getWorkflowRun(ctx, keyScopeOf(caller), params.id, params.runId)),
    ),
  }));

  return router;
}
