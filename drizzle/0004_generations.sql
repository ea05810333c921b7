CREATE TYPE "public"."media_type" AS ENUM('image', 'video');--> statement-breakpoint
CREATE TYPE "public"."generation_result_status" AS ENUM('pending', 'processing', 'completed', 'failed');--> statement-breakpoint
CREATE TYPE "public"."circuit_state" AS ENUM('closed', 'open', 'half_open');--> statement-breakpoint
CREATE TABLE "generation_results" (
	"id" text PRIMARY KEY NOT NULL,
	"generation_id" text NOT NULL,
	"position" integer NOT NULL,
	"model" text NOT NULL,
	"status" "generation_result_status" DEFAULT 'pending' NOT NULL,
	"cost" bigint NOT NULL,
	"charged" bigint DEFAULT 0 NOT NULL,
	"refunded" bigint DEFAULT 0 NOT NULL,
	"hold_id" text NOT NULL,
	"routing" jsonb,
	"output_key" text,
	"content_type" text,
	"error_code" text,
	"error_message" text,
	"runs" integer DEFAULT 0 NOT NULL,
	"started_at" timestamp with time zone,
	"finished_at" timestamp with time zone,
	CONSTRAINT "generation_results_one_per_model" UNIQUE("generation_id","model"),
	CONSTRAINT "generation_results_cost_positive" CHECK ("generation_results"."cost" > 0),
	CONSTRAINT "generation_results_settlement" CHECK (("generation_results"."status" = 'completed' and "generation_results"."charged" = "generation_results"."cost" and "generation_results"."refunded" = 0)
          or ("generation_results"."status" = 'failed' and "generation_results"."charged" = 0 and "generation_results"."refunded" = "generation_results"."cost")
          or ("generation_results"."status" in ('pending', 'processing') and "generation_results"."charged" = 0 and "generation_results"."refunded" = 0))
);
--> statement-breakpoint
CREATE TABLE "generations" (
	"id" text PRIMARY KEY NOT NULL,
	"account_id" text NOT NULL,
	"network" "network" NOT NULL,
	"media_type" "media_type" NOT NULL,
	"prompt" text NOT NULL,
	"request" jsonb NOT NULL,
	"quoted" bigint NOT NULL,
	"reservation_id" text,
	"idempotency_key" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "generations_account_idempotency_key" UNIQUE("account_id","idempotency_key"),
	CONSTRAINT "generations_quoted_positive" CHECK ("generations"."quoted" > 0)
);
--> statement-breakpoint
CREATE TABLE "idempotency_keys" (
	"account_id" text NOT NULL,
	"key" text NOT NULL,
	"request_hash" text NOT NULL,
	"status_code" integer,
	"response" jsonb,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "idempotency_keys_account_id_key_pk" PRIMARY KEY("account_id","key")
);
--> statement-breakpoint
CREATE TABLE "channel_health" (
	"channel_id" text PRIMARY KEY NOT NULL,
	"state" "circuit_state" DEFAULT 'closed' NOT NULL,
	"consecutive_failures" integer DEFAULT 0 NOT NULL,
	"opened_at" timestamp with time zone,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "generation_results" ADD CONSTRAINT "generation_results_generation_id_generations_id_fk" FOREIGN KEY ("generation_id") REFERENCES "public"."generations"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "generations" ADD CONSTRAINT "generations_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "generation_results_open_idx" ON "generation_results" USING btree ("status") WHERE "generation_results"."status" in ('pending', 'processing');--> statement-breakpoint
CREATE INDEX "generations_account_created_idx" ON "generations" USING btree ("account_id","network","created_at");