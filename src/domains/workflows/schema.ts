import { sql } from "drizzle-orm";
import {
  bigint,
  check,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
} from "drizzle-orm/pg-core";
import { networkEnum } from "../../db/columns.js";
import { accounts } from "../accounts/schema.js";
import { generations } from "../generations/schema.js";

/**
 * A saved Studio workflow: a validated graph of steps, each a generation request, where a
 * step may take earlier steps' images as its reference images. Immutable once saved; deleting
 * hides it (its runs keep their record).
 */
export const workflows = pgTable(
  "workflows",
  {
    id: text("id").primaryKey(),
    accountId: text("account_id")
      .notNull()
      .references(() => accounts.id),
    network: networkEnum("network").notNull(),
    name: text("name").notNull(),
    description: text("description"),
    /** The steps as validated at save (see graph.ts). */
    steps: jsonb("steps").$type<unknown[]>().notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    deletedAt: timestamp("deleted_at", { withTimezone: true }),
  },
  (t) => [index("workflows_account_idx").on(t.accountId, t.network, t.id)],
);

/**
 * One run of a workflow, funded by a studio reservation of the sum of its steps' quotes. Its
 * steps draw their generations' holds from the reservation; when every step is terminal the
 * reservation is settled and what is left (`returned`) goes back to the balance.
 */
export const workflowRuns = pgTable(
  "workflow_runs",
  {
    id: text("id").primaryKey(),
    workflowId: text("workflow_id")
      .notNull()
      .references(() => workflows.id),
    accountId: text("account_id")
      .notNull()
      .references(() => accounts.id),
    network: networkEnum("network").notNull(),
    reservationId: text("reservation_id").notNull(),
    status: text("status").notNull().default("running"),
    quoted: bigint("quoted", { mode: "bigint" }).notNull(),
    /** What the reservation gave back when it was settled; null until then. */
    returned: bigint("returned", { mode: "bigint" }),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    finishedAt: timestamp("finished_at", { withTimezone: true }),
  },
  (t) => [
    index("workflow_runs_workflow_idx").on(t.workflowId, t.id),
    check("workflow_runs_status", sql`${t.status} in ('running', 'completed', 'failed')`),
    check("workflow_runs_quoted_positive", sql`${t.quoted} > 0`),
  ],
);

/**
 * A step of a run: waiting for the steps it references, then running as one generation drawn
 * from the run's reservation, then completed, failed, or skipped (a step it needs failed).
 */
export const workflowRunSteps = pgTable(
  "workflow_run_steps",
  {
    runId: text("run_id")
      .notNull()
      .references(() => workflowRuns.id),
    stepId: text("step_id").notNull(),
    position: integer("position").notNull(),
    status: text("status").notNull().default("waiting"),
    /** The step's generation request, with its reference image URLs re-hosted at run start. */
    request: jsonb("request").$type<Record<string, unknown>>().notNull(),
    quoted: bigint("quoted", { mode: "bigint" }).notNull(),
    generationId: text("generation_id")
      .unique()
      .references(() => generations.id),
    errorCode: text("error_code"),
    errorMessage: text("error_message"),
    submittedAt: timestamp("submitted_at", { withTimezone: true }),
    finishedAt: timestamp("finished_at", { withTimezone: true }),
  },
  (t) => [
    primaryKey({ columns: [t.runId, t.stepId] }),
    check(
      "workflow_run_steps_status",
      sql`${t.status} in ('waiting', 'running', 'completed', 'failed', 'skipped')`,
    ),
    // A step runs as exactly one generation, recorded in the transaction that submits it.
    check(
      "workflow_run_steps_generation",
      sql`(${t.status} in ('waiting', 'skipped')) = (${t.generationId} is null) or ${t.status} = 'failed'`,
    ),
  ],
);
