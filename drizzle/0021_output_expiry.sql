CREATE TABLE IF NOT EXISTS "storage_deletions" (
	"key" text PRIMARY KEY NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"last_error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "generation_results" ADD COLUMN IF NOT EXISTS "output_expired_at" timestamp with time zone;--> statement-breakpoint
-- Plain CREATE INDEX, not CONCURRENTLY: drizzle's migrator runs every migration in one
-- transaction, where CONCURRENTLY is refused. The build blocks writes to the table while it
-- runs; on a large deployment, create the same index by name beforehand, outside a
-- transaction (CREATE INDEX CONCURRENTLY IF NOT EXISTS "generation_results_output_finished_idx"
-- ON "generation_results" ("finished_at") WHERE "output_key" is not null), and this finds it.
CREATE INDEX IF NOT EXISTS "generation_results_output_finished_idx" ON "generation_results" USING btree ("finished_at") WHERE "generation_results"."output_key" is not null;--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "uploads_created_idx" ON "uploads" USING btree ("created_at");
