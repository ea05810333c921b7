import { sql } from "drizzle-orm";
import {
  bigint,
  check,
  index,
  integer,
  jsonb,
  pgEnum,
  pgTable,
  text,
  timestamp,
  unique,
} from "drizzle-orm/pg-core";
import { networkEnum } from "../../db/columns.js";
import { accounts } from "../accounts/schema.js";

export const mediaTypeEnum = pgEnum("media_type", ["image", "video", "audio"]);
export const resultStatusEnum = pgEnum("generation_result_status", [
  "pending",
  "processing",
  "completed",
  "failed",
]);

/** One request: a prompt and its options, run on 1–6 models. Its status derives from its results. */
export const generations = pgTable(
  "generations",
  {
    id: text("id").primaryKey(),
    accountId: text("account_id")
      .notNull()
      .references(() => accounts.id),
    network: networkEnum("network").notNull(),
    mediaType: mediaTypeEnum("media_type").notNull(),
    prompt: text("prompt").notNull(),
    /** The validated request as submitted (options, reference URLs, seed). */
    request: jsonb("request").$type<Record<string, unknown>>().notNull(),
    quoted: bigint("quoted", { mode: "bigint" }).notNull(),
    reservationId: text("reservation_id"),
    /** Told of the terminal status (see the webhooks domain). */
    webhookUrl: text("webhook_url"),
    idempotencyKey: text("idempotency_key"),
    /** Hash of the request that used the key: the same key with another body is refused. */
    idempotencyHash: text("idempotency_hash"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    // The same Idempotency-Key can create at most one generation per account.
    unique("generations_account_idempotency_key").on(t.accountId, t.network, t.idempotencyKey),
    index("generations_account_created_idx").on(t.accountId, t.network, t.createdAt),
    check("generations_quoted_positive", sql`${t.quoted} > 0`),
  ],
);

/** One model's share of a generation, with its own hold: charged on success, refunded on failure. */
export const generationResults = pgTable(
  "generation_results",
  {
    id: text("id").primaryKey(),
    generationId: text("generation_id")
      .notNull()
      .references(() => generations.id),
    position: integer("position").notNull(),
    model: text("model").notNull(),
    status: resultStatusEnum("status").notNull().default("pending"),
    cost: bigint("cost", { mode: "bigint" }).notNull(),
    charged: bigint("charged", { mode: "bigint" }).notNull().default(sql`0`),
    refunded: bigint("refunded", { mode: "bigint" }).notNull().default(sql`0`),
    holdId: text("hold_id").notNull(),
    routing: jsonb("routing").$type<Record<string, unknown>>(),
    /** Cleared by the retention sweep, which sets outputExpiredAt in the same statement. */
    outputKey: text("output_key"),
    contentType: text("content_type"),
    errorCode: text("error_code"),
    errorMessage: text("error_message"),
    runs: integer("runs").notNull().default(0),
    /** 0–100 while an upstream reports it; null when unknown. */
    progress: integer("progress"),
    /**
     * The upstream's own job (a fal request, a Replicate prediction) once submitted, with the
     * channel it was submitted on: a run after a crash polls it instead of paying for another.
     */
    upstreamJob: jsonb("upstream_job").$type<{ channel: string; job: Record<string, unknown> }>(),
    startedAt: timestamp("started_at", { withTimezone: true }),
    finishedAt: timestamp("finished_at", { withTimezone: true }),
    /** When the retention sweep deleted the output; its download then answers 410. */
    outputExpiredAt: timestamp("output_expired_at", { withTimezone: true }),
  },
  (t) => [
    unique("generation_results_one_per_model").on(t.generationId, t.model),
    index("generation_results_open_idx")
      .on(t.status)
      .where(sql`${t.status} in ('pending', 'processing')`),
    // The retention sweep's scan: oldest finished results that still have an output.
    index("generation_results_output_finished_idx")
      .on(t.finishedAt)
      .where(sql`${t.outputKey} is not null`),
    check("generation_results_cost_positive", sql`${t.cost} > 0`),
    // Settled once, all or nothing: a success charges the quote, a failure refunds it.
    check(
      "generation_results_settlement",
      sql`(${t.status} = 'completed' and ${t.charged} = ${t.cost} and ${t.refunded} = 0)
          or (${t.status} = 'failed' and ${t.charged} = 0 and ${t.refunded} = ${t.cost})
          or (${t.status} in ('pending', 'processing') and ${t.charged} = 0 and ${t.refunded} = 0)`,
    ),
  ],
);
