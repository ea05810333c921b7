import { Router } from "express";
import { z } from "zod";
import type { AppContext } from "../../context.js";
import { authenticate, keyScopeOf } from "../../http/auth.js";
import { idempotent } from "../../http/idempotency.js";
import { rateLimit } from "../../http/rate-limit.js";
import { creditsToJson } from "../../lib/credits.js";
import { generationJson } from "../generations/service.js";
import { reservationJson } from "../studio/routes.js";
import { workflowSteps } from "./graph.js";
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
  const auth = authenticate(ctx);
  const channels = ctx.config.channels;
  const deps = { channels, storage: ctx.generations.storage };

  router.post("/v1/workflows", auth, idempotent(ctx), async (req, res) => {
    const input = createWorkflowRequest.parse(req.body);
    const workflow = await createWorkflow(ctx, channels, keyScopeOf(req), input);
    res.status(201).json(workflowJson(workflow));
  });

  router.get("/v1/workflows", auth, async (req, res) => {
    const query = listWorkflowsQuery.parse(req.query);
    const page = await listWorkflows(ctx, channels, keyScopeOf(req), {
      limit: query.limit,
      before: query.cursor,
    });
    res.json({ data: page.data.map(workflowJson), nextCursor: page.nextCursor });
  });

  router.get("/v1/workflows/:id", auth, async (req, res) => {
    const { id } = workflowParams.parse(req.params);
    res.json(workflowJson(await getWorkflow(ctx, channels, keyScopeOf(req), id)));
  });

  router.delete("/v1/workflows/:id", auth, async (req, res) => {
    const { id } = workflowParams.parse(req.params);
    await deleteWorkflow(ctx, keyScopeOf(req), id);
    res.status(204).end();
  });

  router.post(
    "/v1/workflows/:id/run",
    auth,
    rateLimit(ctx, "batch"),
    idempotent(ctx),
    async (req, res) => {
      const { id } = workflowParams.parse(req.params);
      const run = await startWorkflowRun(ctx, deps, keyScopeOf(req), id);
      res.status(202).json(runJson(run));
    },
  );

  router.get("/v1/workflows/:id/runs/:runId", auth, rateLimit(ctx, "poll"), async (req, res) => {
    const { id, runId } = workflowRunParams.parse(req.params);
    res.json(runJson(await getWorkflowRun(ctx, keyScopeOf(req), id, runId)));
  });

  return router;
}
