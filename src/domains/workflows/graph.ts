import { z } from "zod";
import type { ServiceContext } from "../../context.js";
import { AppError, type ErrorCode, withinPart } from "../../errors.js";
import type { Network } from "../../lib/network.js";
import { findModel } from "../catalog/models.js";
import { quoteRequest } from "../generations/compose.js";
import {
  type generateRequest,
  generateRequestFields,
  MAX_REFERENCE_IMAGES,
  type Quote,
  refineGenerateRequest,
} from "../generations/request.js";
import type { Channel } from "../routing/channels.js";

/**
 * A workflow's graph: steps, each the body of POST /v1/generate (without reservationId and
 * webhookUrl: a run funds its steps from its own reservation), that may take the images of
 * other steps as reference images. zod checks the shape; `validateWorkflow` checks the graph
 * and quotes every step, with a precise code and field per problem.
 */

export const MAX_WORKFLOW_STEPS = 10;

export const stepId = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,40}$/, "1–40 letters, digits, - or _")
  .describe("The step's own id, unique in the workflow.");

export const stepReference = z
  .object({
    step: stepId.describe("The id of the step whose output images this step takes."),
    model: z
      .string()
      .min(1)
      .max(100)
      .optional()
      .describe(
        "Only that model's image from the referenced step; without it, every model's image.",
      ),
  })
  .strict();

export const stepRequest = generateRequestFields
  .omit({ reservationId: true, webhookUrl: true })
  .superRefine(refineGenerateRequest);
export type StepRequest = z.infer<typeof stepRequest>;

export const workflowStep = z
  .object({
    id: stepId,
    request: stepRequest.describe(
      "The body of POST /v1/generate, without reservationId and webhookUrl.",
    ),
    referenceSteps: z
      .array(stepReference)
      .max(MAX_REFERENCE_IMAGES)
      .default([])
      .describe(
        "Steps whose output images become this step's reference images (after its own referenceImageUrls). The step waits for them, and is skipped if one fails.",
      ),
  })
  .strict();
export type WorkflowStep = z.infer<typeof workflowStep>;

export const workflowSteps = z
  .array(workflowStep)
  .min(1, "at least one step")
  .max(MAX_WORKFLOW_STEPS, `at most ${MAX_WORKFLOW_STEPS} steps`);

const refuse = (code: ErrorCode, message: string, field: string) =>
  new AppError(code, message, { field });

/** A step's request refused by the catalog, named by its place in the workflow. */
export const inStep = (err: AppError, index: number, id: string): AppError =>
  withinPart(err, `steps[${index}] (${id})`, `steps.${index}.request`);

/** How many images a reference hands over at most: one per model it covers. */
export function referenceImageCount(ref: { model?: string | undefined }, referenced: Quote) {
  return ref.model === undefined ? referenced.models.length : 1;
}

/**
 * Checks the graph and quotes each step on this network: step ids are unique, references name
 * steps of the workflow (and, with a model, one of that step's models) that make images, there
 * is no cycle, no step gets more than 8 reference images in all, and every step's request
 * quotes. Returns each step's quote, in order.
 */
export async function validateWorkflow(
  ctx: ServiceContext,
  steps: readonly WorkflowStep[],
  use: { network: Network; userId: string },
  channels: readonly Channel[],
): Promise<Quote[]> {
  const indexOf = new Map<string, number>();
  steps.forEach((step, i) => {
    if (indexOf.has(step.id)) {
      throw refuse(
        "duplicate_step_id",
        `Step id ${step.id} is used twice; each step needs its own id.`,
        `steps.${i}.id`,
      );
    }
    indexOf.set(step.id, i);
  });
  for (const [i, step] of steps.entries()) {
    for (const [j, ref] of step.referenceSteps.entries()) {
      if (!indexOf.has(ref.step)) {
        throw refuse(
          "unknown_step_reference",
          `Step ${step.id} references step ${ref.step}, which is not in this workflow.`,
          `steps.${i}.referenceSteps.${j}.step`,
        );
      }
    }
  }
  assertAcyclic(steps, indexOf);

  // Each step composed (template, passes) and priced as a generation would be.
  const quotes: Quote[] = [];
  for (const [i, step] of steps.entries()) {
    try {
      quotes.push(
        await quoteRequest(ctx, step.request as z.infer<typeof generateRequest>, use, channels),
      );
    } catch (err) {
      throw err instanceof AppError ? inStep(err, i, step.id) : err;
    }
  }

  steps.forEach((step, i) => {
    let images = step.request.referenceImageUrls.length;
    step.referenceSteps.forEach((ref, j) => {
      const target = indexOf.get(ref.step) as number;
      const referenced = quotes[target] as Quote;
      const field = `steps.${i}.referenceSteps.${j}`;
      if (referenced.mediaType !== "image") {
        throw refuse(
          "step_reference_not_image",
          `Step ${step.id} references step ${ref.step}, which makes ${referenced.mediaType}s, not images.`,
          `${field}.step`,
        );
      }
      if (ref.model !== undefined) {
        const model = findModel(ref.model)?.id;
        if (!referenced.models.some((m) => m.model.id === model)) {
          throw refuse(
            "unknown_step_reference",
            `Step ${step.id} references model ${ref.model} of step ${ref.step}, which does not run it.`,
            `${field}.model`,
          );
        }
      }
      images += referenceImageCount(ref, referenced);
    });
    if (images > MAX_REFERENCE_IMAGES) {
      throw refuse(
        "too_many_reference_images",
        `Step ${step.id} would get ${images} reference images (its URLs and one per model of each referenced step); the limit is ${MAX_REFERENCE_IMAGES}.`,
        `steps.${i}.referenceSteps`,
      );
    }
  });
  return quotes;
}

/** Depth-first search; the reference that closes a cycle is the field named. */
function assertAcyclic(steps: readonly WorkflowStep[], indexOf: Map<string, number>) {
  const state = new Map<number, "visiting" | "done">();
  const path: number[] = [];
  const visit = (i: number) => {
    state.set(i, "visiting");
    path.push(i);
    const step = steps[i] as WorkflowStep;
    step.referenceSteps.forEach((ref, j) => {
      const target = indexOf.get(ref.step) as number;
      if (state.get(target) === "visiting") {
        const cycle = [...path.slice(path.indexOf(target)), target].map((k) => steps[k]?.id);
        throw refuse(
          "workflow_cycle",
          `Steps reference each other in a cycle: ${cycle.join(" → ")}.`,
          `steps.${i}.referenceSteps.${j}.step`,
        );
      }
      if (!state.has(target)) visit(target);
    });
    path.pop();
    state.set(i, "done");
  };
  steps.forEach((_, i) => {
    if (!state.has(i)) visit(i);
  });
}
