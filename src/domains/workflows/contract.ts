import { z } from "zod";
import type { ErrorCode } from "../../errors.js";
import { pageSchema } from "../../http/cursor.js";
import { describeFields, route } from "../../http/openapi/contract.js";
import { creditsJson } from "../../lib/credits.js";
import { networks } from "../../lib/network.js";
import { generation, QUOTE_ERRORS } from "../generations/contract.js";
import { reservation } from "../studio/contract.js";
import { workflowSteps } from "./graph.js";

export const workflowId = z.string().regex(/^wf_[0-9a-z]{26}$/, "not a workflow id");

export const createWorkflowRequest = z
  .object({
    name: z.string().trim().min(1).max(200),
    description: z.string().trim().max(2000).optional(),
    steps: workflowSteps,
  })
  .strict();

export const listWorkflowsQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(100).default(20),
    cursor: workflowId.optional().describe("nextCursor from the previous page."),
  })
  .strict();

// Any other id is simply not found.
export const workflowParams = z.object({ id: z.string().min(1).max(64) });
export const workflowRunParams = workflowParams.extend({ runId: z.string().min(1).max(64) });

/** What the workflow routes answer, and their entries in the OpenAPI document. */

const credits = creditsJson();
const timestamp = z.iso.datetime();

export const workflow = z
  .object({
    id: z.string().describe("wf_…"),
    name: z.string(),
    description: z.string().nullable(),
    network: z.enum(networks),
    steps: workflowSteps,
    cost: credits
      .nullable()
      .describe(
        "What a run costs now: the sum of its steps' quotes (null when a step no longer quotes, for example its model left this network).",
      ),
    createdAt: timestamp,
  })
  .meta({ id: "Workflow" });

const stepStatus = z.enum(["waiting", "running", "completed", "failed", "skipped"]);

export const workflowRun = z
  .object({
    runId: z.string().describe("wfr_…"),
    workflowId: z.string(),
    status: z.enum(["running", "completed", "failed"]).describe("completed when every step did."),
    /** The studio reservation that funds the run, settled when every step is done. */
    reservation,
    cost: z
      .object({
        quoted: credits.describe("The sum of the steps' quotes: what the run reserved."),
        charged: credits.describe("What the steps' results were charged."),
        refunded: credits.describe(
          "Failed results' refunds, plus what the reservation gave back at settle.",
        ),
      })
      .describe("Once the run has ended, quoted = charged + refunded."),
    createdAt: timestamp,
    finishedAt: timestamp.nullable(),
    steps: z.array(
      z.object({
        id: z.string(),
        status: stepStatus.describe(
          "waiting for the steps it references; running as its generation; completed, failed, or skipped when a step it needs failed.",
        ),
        cost: credits.describe("The step's quote."),
        generationId: z.string().nullable(),
        generation: generation.nullable().describe("As GET /v1/generate/status has it."),
        error: z
          .object({ code: z.string(), message: z.string().nullable() })
          .nullable()
          .describe("Why it failed or was skipped (dependency_failed)."),
        submittedAt: timestamp.nullable(),
        finishedAt: timestamp.nullable(),
      }),
    ),
  })
  .meta({ id: "WorkflowRun" });

const GRAPH_ERRORS: ErrorCode[] = [
  "duplicate_step_id",
  "unknown_step_reference",
  "workflow_cycle",
  "step_reference_not_image",
  "too_many_reference_images",
  ...QUOTE_ERRORS,
];

const workflowExample = {
  name: "sketch, then paint it",
  steps: [
    {
      id: "sketch",
      request: { prompt: "a lighthouse at dusk, pencil", models: ["z-image-turbo"] },
    },
    {
      id: "paint",
      request: { prompt: "the same lighthouse, as a watercolour", models: ["qwen-image-2.0"] },
      referenceSteps: [{ step: "sketch" }],
    },
  ],
};

export const workflowContracts = {
  createWorkflow: route({
    method: "post",
    path: "/v1/workflows",
    operationId: "createWorkflow",
    summary: "Save a Studio workflow",
    description:
      "A graph of up to 10 steps, each the body of POST /v1/generate (without reservationId and webhookUrl); `referenceSteps` hands a step's output images to another step as reference images. The graph is checked (unique step ids, references to steps of the workflow that make images, no cycle, at most 8 reference images per step) and every step is quoted; a refusal names the field (`steps.1.request.models`).",
    tag: "Workflows",
    auth: ["apiKey"],
    body: { schema: createWorkflowRequest, example: workflowExample },
    idempotent: true,
    responses: { 201: { description: "The saved workflow.", schema: workflow } },
    errors: [...GRAPH_ERRORS, "unsafe_url", "invalid_reference_image"],
  }),
  listWorkflows: route({
    method: "get",
    path: "/v1/workflows",
    operationId: "listWorkflows",
    summary: "The caller's workflows, newest first",
    tag: "Workflows",
    auth: ["apiKey"],
    query: describeFields(listWorkflowsQuery, { limit: "Page size (1–100)." }),
    responses: {
      200: {
        description: "A page of workflows.",
        schema: pageSchema(workflow),
      },
    },
    errors: [],
  }),
  getWorkflow: route({
    method: "get",
    path: "/v1/workflows/:id",
    operationId: "getWorkflow",
    summary: "A workflow",
    tag: "Workflows",
    auth: ["apiKey"],
    params: workflowParams,
    responses: { 200: { description: "The workflow.", schema: workflow } },
    errors: ["not_found"],
  }),
  deleteWorkflow: route({
    method: "delete",
    path: "/v1/workflows/:id",
    operationId: "deleteWorkflow",
    summary: "Delete a workflow",
    description:
      "It can no longer be read or run. Runs already started go on to the end and stay readable.",
    tag: "Workflows",
    auth: ["apiKey"],
    params: workflowParams,
    responses: { 204: { description: "Deleted." } },
    errors: ["not_found"],
  }),
  runWorkflow: route({
    method: "post",
    path: "/v1/workflows/:id/run",
    operationId: "runWorkflow",
    summary: "Run a workflow against a studio reservation",
    description:
      "Quotes every step again and reserves the total (too few credits is 402 with nothing held), then submits each step as a generation drawn from the reservation once the steps it references have completed; a step whose needed step failed is skipped. When every step is done the reservation is settled: what was not spent (skipped steps' shares) returns to the balance; a failed result refunds to the balance as usual. The steps that need no other step are already submitted in the answer; read the run for the rest.",
    tag: "Workflows",
    auth: ["apiKey"],
    params: workflowParams,
    idempotent: true,
    rateLimit: "batch",
    responses: { 202: { description: "The run, started.", schema: workflowRun } },
    errors: [
      ...GRAPH_ERRORS,
      "unsafe_url",
      "invalid_reference_image",
      "insufficient_credits",
      "key_limit_exceeded",
      "not_found",
    ],
  }),
  getWorkflowRun: route({
    method: "get",
    path: "/v1/workflows/:id/runs/:runId",
    operationId: "getWorkflowRun",
    summary: "A workflow run: each step's status and result",
    tag: "Workflows",
    auth: ["apiKey"],
    params: workflowRunParams,
    rateLimit: "poll",
    responses: { 200: { description: "The run.", schema: workflowRun } },
    errors: ["not_found"],
  }),
};
