import { and, asc, desc, eq, isNull, lt, sql } from "drizzle-orm";
import { ZodError } from "zod";
import type { ServiceContext } from "../../context.js";
import { AppError, appErrorFromZod, insufficientCredits, notFound } from "../../errors.js";
import { creditsToJson, formatCredits } from "../../lib/credits.js";
import { newId } from "../../lib/ids.js";
import type { Network } from "../../lib/network.js";
import type { NetworkScope } from "../accounts/caller.js";
import { findModel } from "../catalog/models.js";
import { type GenerationView, getGenerations } from "../generations/history.js";
import { readOutput } from "../generations/outputs.js";
import { generateRequest } from "../generations/request.js";
import { submitGeneration } from "../generations/submit.js";
import { getBalance } from "../ledger/service.js";
import {
  getReservation,
  type ReservationView,
  reserveCredits,
  settleReservation,
} from "../studio/service.js";
import {
  checkReferenceImages,
  rehostReferenceImages,
  storeImage,
  uploadUrl,
} from "../uploads/service.js";
import { inStep, validateWorkflow, type WorkflowStep, workflowSteps } from "./graph.js";
import { queueRunAdvance } from "./hook.js";
import { workflowRunSteps, workflowRuns, workflows } from "./schema.js";

/**
 * Studio workflows: saved graphs of generation requests, and their runs. A run reserves the
 * sum of its steps' quotes (a studio reservation), submits each step as a generation drawn
 * from it once the steps it references have completed (their images become its reference
 * images), skips a step when one it needs failed, and settles the reservation when every step
 * is done, so what was not spent goes back to the balance. Each generation is charged or
 * refunded by the generations domain as usual; a run can never cost more than its quote.
 */

export interface WorkflowInput {
  name: string;
  description?: string | undefined;
  steps: WorkflowStep[];
}

type WorkflowRow = typeof workflows.$inferSelect;

export type StepStatus = "waiting" | "running" | "completed" | "failed" | "skipped";
export type RunStatus = "running" | "completed" | "failed";

async function workflowView(ctx: ServiceContext, row: WorkflowRow) {
  const steps = workflowSteps.parse(row.steps);
  let cost: bigint | null = null;
  try {
    const use = { network: row.network, userId: row.accountId };
    cost = (await validateWorkflow(ctx, steps, use, ctx.channels)).reduce(
      (sum, q) => sum + q.total,
      0n,
    );
  } catch (err) {
    // A step that no longer quotes (a model gone from this network) is refused at run time.
    if (!(err instanceof AppError)) throw err;
  }
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    network: row.network,
    steps,
    cost,
    createdAt: row.createdAt,
  };
}
export type WorkflowView = Awaited<ReturnType<typeof workflowView>>;

/** Validates the graph, quotes every step (a refusal names the step's field) and saves it. */
export async function createWorkflow(
  ctx: ServiceContext,
  scope: NetworkScope,
  input: WorkflowInput,
): Promise<WorkflowView> {
  await validateWorkflow(
    ctx,
    input.steps,
    { network: scope.network, userId: scope.accountId },
    ctx.channels,
  );
  // Reference images are checked as POST /v1/generate checks them (fetched only when run).
  for (const [i, step] of input.steps.entries()) {
    await checkReferenceImages(ctx, scope, step.request.referenceImageUrls).catch((err) => {
      throw err instanceof AppError ? inStep(err, i, step.id) : err;
    });
  }
  const [row] = await ctx.db
    .insert(workflows)
    .values({
      id: newId("wf"),
      accountId: scope.accountId,
      network: scope.network,
      name: input.name,
      description: input.description ?? null,
      steps: input.steps,
      createdAt: ctx.clock(),
    })
    .returning();
  return workflowView(ctx, row as WorkflowRow);
}

const own = (scope: NetworkScope) =>
  and(
    eq(workflows.accountId, scope.accountId),
    eq(workflows.network, scope.network),
    isNull(workflows.deletedAt),
  );

async function ownWorkflow(ctx: ServiceContext, scope: NetworkScope, id: string) {
  const [row] = await ctx.db
    .select()
    .from(workflows)
    .where(and(eq(workflows.id, id), own(scope)));
  if (!row) throw notFound("Workflow");
  return row;
}

export async function getWorkflow(
  ctx: ServiceContext,
  scope: NetworkScope,
  id: string,
): Promise<WorkflowView> {
  return workflowView(ctx, await ownWorkflow(ctx, scope, id));
}

/** The caller's workflows, newest first; `before` is the last id of the previous page. */
export async function listWorkflows(
  ctx: ServiceContext,
  scope: NetworkScope,
  page: { limit: number; before?: string | undefined },
): Promise<{ data: WorkflowView[]; nextCursor: string | null }> {
  const rows = await ctx.db
    .select()
    .from(workflows)
    .where(and(own(scope), page.before ? lt(workflows.id, page.before) : undefined))
    .orderBy(desc(workflows.id))
    .limit(page.limit + 1);
  const data = rows.slice(0, page.limit);
  return {
    data: await Promise.all(data.map((row) => workflowView(ctx, row))),
    nextCursor: rows.length > page.limit ? (data.at(-1)?.id ?? null) : null,
  };
}

/**
 * Deletes a workflow: it can no longer be read or run. Runs already started go on to the end
 * (they hold credits) and stay readable.
 */
export async function deleteWorkflow(
  ctx: ServiceContext,
  scope: NetworkScope,
  id: string,
): Promise<void> {
  const deleted = await ctx.db
    .update(workflows)
    .set({ deletedAt: ctx.clock() })
    .where(and(eq(workflows.id, id), own(scope)))
    .returning({ id: workflows.id });
  if (deleted.length === 0) throw notFound("Workflow");
}

/** How long a run's reservation lasts: every step's generation timeout, one after another. */
const reservationSeconds = (ctx: ServiceContext, steps: number) =>
  Math.min(30 * 24 * 3600, ctx.config.generation.timeoutSeconds * steps + 3600);

/**
 * Starts a run: quotes every step again (a refusal is a 400 naming the step's field), re-hosts
 * the steps' own reference URLs (refused before anything is held), then in ONE transaction
 * reserves the total, records the run and its steps and queues its advance. Too few credits is
 * 402 with nothing created. The steps that need no other step are submitted before answering.
 */
export async function startWorkflowRun(
  ctx: ServiceContext,
  scope: NetworkScope,
  workflowId: string,
): Promise<RunView> {
  const workflow = await ownWorkflow(ctx, scope, workflowId);
  const steps = workflowSteps.parse(workflow.steps);
  const quotes = await validateWorkflow(
    ctx,
    steps,
    { network: scope.network, userId: scope.accountId },
    ctx.channels,
  );
  const total = quotes.reduce((sum, q) => sum + q.total, 0n);
  // Refused before any network work; the reservation below is what really decides.
  const { creditBalance } = await getBalance(ctx, scope.accountId, scope.network);
  if (creditBalance < total) throw insufficientCredits(total, creditBalance);

  const requests: Array<Record<string, unknown>> = [];
  for (const [i, step] of steps.entries()) {
    try {
      const ids = await rehostReferenceImages(ctx, scope, step.request.referenceImageUrls);
      requests.push({ ...step.request, referenceImageUrls: ids.map((id) => uploadUrl(ctx, id)) });
    } catch (err) {
      throw err instanceof AppError ? inStep(err, i, step.id) : err;
    }
  }

  const runId = newId("wfr");
  try {
    await ctx.db.transaction(async (db) => {
      const tx = { ...ctx, db };
      const reservation = await reserveCredits(tx, scope, {
        credits: total,
        expiresInSeconds: reservationSeconds(ctx, steps.length),
      });
      await db.insert(workflowRuns).values({
        id: runId,
        workflowId,
        accountId: scope.accountId,
        network: scope.network,
        reservationId: reservation.reservationId,
        quoted: total,
        createdAt: ctx.clock(),
      });
      await db.insert(workflowRunSteps).values(
        steps.map((step, position) => ({
          runId,
          stepId: step.id,
          position,
          request: requests[position] as Record<string, unknown>,
          quoted: (quotes[position] as { total: bigint }).total,
        })),
      );
      // Should this process die before advancing, the worker starts the run.
      await queueRunAdvance(db, runId);
    });
  } catch (err) {
    if (err instanceof AppError && err.code === "insufficient_credits") {
      const balance = await getBalance(ctx, scope.accountId, scope.network);
      throw insufficientCredits(total, balance.creditBalance);
    }
    throw err;
  }
  try {
    await advanceWorkflowRun(ctx, runId);
  } catch (err) {
    // The queued advance tries again.
    ctx.logger.warn({ err, runId }, "workflow run not advanced at start");
  }
  return getWorkflowRun(ctx, scope, workflowId, runId);
}

interface RunRow {
  id: string;
  workflow_id: string;
  account_id: string;
  network: Network;
  reservation_id: string;
  status: RunStatus;
  [key: string]: unknown;
}

type StepRow = typeof workflowRunSteps.$inferSelect;

const TERMINAL: readonly StepStatus[] = ["completed", "failed", "skipped"];
const isTerminal = (status: string) => (TERMINAL as readonly string[]).includes(status);

/**
 * Moves a run forward (the advance_workflow_run job, queued whenever one of its steps'
 * results settles): records the steps whose generation finished, skips the steps that need a
 * failed one, submits those whose references all completed, and when every step is done
 * settles the reservation and ends the run. All of it in one transaction holding the run's
 * row lock, so advancing twice or concurrently does each thing once: a second advance waits,
 * then finds the work recorded (a step's generation id is written in the transaction that
 * submits it).
 */
export async function advanceWorkflowRun(ctx: ServiceContext, runId: string): Promise<void> {
  await ctx.db.transaction(async (db) => {
    const tx: ServiceContext = { ...ctx, db };
    const { rows } = await db.execute<RunRow>(sql`
      select id, workflow_id, account_id, network::text as network, reservation_id, status
      from workflow_runs where id = ${runId} for update`);
    const run = rows[0];
    if (run?.status !== "running") return;
    const scope = { accountId: run.account_id, network: run.network };
    const [workflow] = await db
      .select({ steps: workflows.steps })
      .from(workflows)
      .where(eq(workflows.id, run.workflow_id));
    const graph = workflowSteps.parse(workflow?.steps);
    const stepRows = await db
      .select()
      .from(workflowRunSteps)
      .where(eq(workflowRunSteps.runId, runId))
      .orderBy(asc(workflowRunSteps.position));
    const state = new Map(stepRows.map((r) => [r.stepId, r]));
    const generationIds = stepRows.flatMap((r) => (r.generationId ? [r.generationId] : []));
    const views = new Map(
      (generationIds.length ? (await getGenerations(tx, scope, generationIds)).data : []).map(
        (g) => [g.generationId, g],
      ),
    );
    const setStep = async (
      row: StepRow,
      change: Partial<Pick<StepRow, "status" | "generationId" | "errorCode" | "errorMessage">>,
    ) => {
      const now = ctx.clock();
      const [updated] = await db
        .update(workflowRunSteps)
        .set({
          ...change,
          ...(change.generationId ? { submittedAt: now } : {}),
          ...(change.status && isTerminal(change.status) ? { finishedAt: now } : {}),
        })
        .where(and(eq(workflowRunSteps.runId, runId), eq(workflowRunSteps.stepId, row.stepId)))
        .returning();
      state.set(row.stepId, updated as StepRow);
    };

    // 1. Steps whose generation has finished.
    for (const row of stepRows) {
      const view = row.generationId ? views.get(row.generationId) : undefined;
      if (row.status !== "running" || !view) continue;
      if (view.status === "completed") await setStep(row, { status: "completed" });
      if (view.status === "failed") {
        const error = view.results.find((r) => r.error)?.error;
        await setStep(row, {
          status: "failed",
          errorCode: error?.code ?? "generation_failed",
          errorMessage: error?.message ?? "The step's generation failed.",
        });
      }
    }

    // 2. Waiting steps: skipped when a step they need failed, submitted once all completed.
    // Repeated until nothing changes, since a skip can make another step's skip.
    for (let changed = true; changed; ) {
      changed = false;
      for (const step of graph) {
        const row = state.get(step.id);
        if (row?.status !== "waiting") continue;
        const unmet = step.referenceSteps.find((ref) => {
          const needed = state.get(ref.step);
          if (needed?.status === "failed" || needed?.status === "skipped") return true;
          return needed?.status === "completed" && imagesOf(views, needed, ref).length === 0;
        });
        if (unmet) {
          await setStep(row, {
            status: "skipped",
            errorCode: "dependency_failed",
            errorMessage: `Step ${unmet.step} ${unmet.model ? `has no ${unmet.model} image` : "failed"}; this step needs its images and was skipped.`,
          });
          changed = true;
          continue;
        }
        if (step.referenceSteps.some((ref) => state.get(ref.step)?.status !== "completed")) {
          continue;
        }
        const submitted = await submitStep(tx, scope, run, step, row, state, views);
        if ("generationId" in submitted) {
          await setStep(row, { status: "running", generationId: submitted.generationId });
        } else {
          await setStep(row, {
            status: "failed",
            errorCode: submitted.error.code,
            errorMessage: submitted.error.message,
          });
          changed = true;
        }
      }
    }

    // 3. Every step done: what the reservation still holds goes back, and the run ends.
    const final = [...state.values()];
    if (final.every((r) => isTerminal(r.status))) {
      const reservation = await settleReservation(tx, scope, run.reservation_id);
      await db
        .update(workflowRuns)
        .set({
          status: final.every((r) => r.status === "completed") ? "completed" : "failed",
          returned: reservation.returnedCredits,
          finishedAt: ctx.clock(),
        })
        .where(eq(workflowRuns.id, runId));
    }
  });
}

/** The completed results of a referenced step that a reference takes, in model order. */
function imagesOf(
  views: Map<string, GenerationView>,
  row: StepRow,
  ref: { model?: string | undefined },
) {
  const view = row.generationId ? views.get(row.generationId) : undefined;
  const model = ref.model === undefined ? undefined : (findModel(ref.model)?.id ?? ref.model);
  return (view?.results ?? []).filter(
    (r) => r.status === "completed" && (model === undefined || r.model === model),
  );
}

/**
 * Submits a step as a generation drawn from the run's reservation, in a savepoint: the images
 * of the steps it references become uploads of the caller (from the stored outputs' bytes, not
 * over HTTP) appended to its reference images. A refusal (the reservation closed, too many in
 * flight, an output that is not a usable image) fails the step and undoes its part alone.
 */
async function submitStep(
  tx: ServiceContext,
  scope: NetworkScope,
  run: RunRow,
  step: WorkflowStep,
  row: StepRow,
  state: Map<string, StepRow>,
  views: Map<string, GenerationView>,
): Promise<{ generationId: string } | { error: { code: string; message: string } }> {
  try {
    return await tx.db.transaction(async (db) => {
      const sp: ServiceContext = { ...tx, db };
      const references: string[] = [];
      for (const ref of step.referenceSteps) {
        const source = state.get(ref.step) as StepRow;
        for (const result of imagesOf(views, source, ref)) {
          const output = await readOutput(sp, scope, source.generationId as string, result.model);
          const upload = await storeImage(sp, scope, output.bytes);
          references.push(uploadUrl(sp, upload.id));
        }
      }
      const stored = row.request as { referenceImageUrls?: string[] };
      const request = generateRequest.parse({
        ...row.request,
        referenceImageUrls: [...(stored.referenceImageUrls ?? []), ...references],
        reservationId: run.reservation_id,
      });
      const { generationId, cost } = await submitGeneration(sp, scope, request);
      // A pass whose fee rose since the run was quoted: the step is refused (and rolled back)
      // rather than take credits the run reserved for its other steps.
      if (cost > row.quoted) {
        throw new AppError(
          "insufficient_credits",
          `The step now costs ${formatCredits(cost)} credits, more than the ${formatCredits(row.quoted)} reserved for it.`,
          { need: creditsToJson(cost), have: creditsToJson(row.quoted) },
        );
      }
      return { generationId };
    });
  } catch (err) {
    const refusal = err instanceof ZodError ? appErrorFromZod(err) : err;
    if (refusal instanceof AppError) {
      return { error: { code: refusal.code, message: refusal.message } };
    }
    throw err;
  }
}

interface RunRecord {
  run: typeof workflowRuns.$inferSelect;
  steps: StepRow[];
  generations: Map<string, GenerationView>;
  reservation: ReservationView;
}

/**
 * A run of one of the caller's workflows, with each step's status and generation (its results,
 * their URLs and costs). Readable after the workflow is deleted.
 */
export async function getWorkflowRun(
  ctx: ServiceContext,
  scope: NetworkScope,
  workflowId: string,
  runId: string,
): Promise<RunView> {
  const [run] = await ctx.db
    .select()
    .from(workflowRuns)
    .where(
      and(
        eq(workflowRuns.id, runId),
        eq(workflowRuns.workflowId, workflowId),
        eq(workflowRuns.accountId, scope.accountId),
        eq(workflowRuns.network, scope.network),
      ),
    );
  if (!run) throw notFound("Workflow run");
  const steps = await ctx.db
    .select()
    .from(workflowRunSteps)
    .where(eq(workflowRunSteps.runId, runId))
    .orderBy(asc(workflowRunSteps.position));
  const ids = steps.flatMap((s) => (s.generationId ? [s.generationId] : []));
  const generations = new Map(
    (ids.length ? (await getGenerations(ctx, scope, ids)).data : []).map((g) => [
      g.generationId,
      g,
    ]),
  );
  const reservation = await getReservation(ctx, scope, run.reservationId);
  return runView({ run, steps, generations, reservation });
}

function runView({ run, steps, generations, reservation }: RunRecord) {
  const generationOf = (s: StepRow) => (s.generationId ? generations.get(s.generationId) : null);
  const sum = (f: (g: GenerationView) => bigint) =>
    steps.reduce((total, s) => {
      const g = generationOf(s);
      return total + (g ? f(g) : 0n);
    }, 0n);
  return {
    runId: run.id,
    workflowId: run.workflowId,
    status: run.status as RunStatus,
    reservation,
    cost: {
      quoted: run.quoted,
      charged: sum((g) => g.cost.charged),
      // Failed results' refunds, and what the reservation gave back at settle.
      refunded: sum((g) => g.cost.refunded) + (run.returned ?? 0n),
    },
    createdAt: run.createdAt,
    finishedAt: run.finishedAt,
    steps: steps.map((s) => ({
      id: s.stepId,
      status: s.status as StepStatus,
      cost: s.quoted,
      generationId: s.generationId,
      generation: generationOf(s) ?? null,
      error: s.errorCode ? { code: s.errorCode, message: s.errorMessage } : null,
      submittedAt: s.submittedAt,
      finishedAt: s.finishedAt,
    })),
  };
}
export type RunView = ReturnType<typeof runView>;
