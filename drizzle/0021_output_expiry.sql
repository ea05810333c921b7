CREATE TABLE IF NOT EXISTS "storage_deletions" (
	"key" text PRIMARY KEY NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"last_error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "generation_results" ADD COLUMN IF NOT EXISTS "output_expired_at" timestamp with time zone;--> statement-breakpoint
-- Results the sweep expired before this column existed (it only cleared their key): a
-- completed result has a key unless it expired.
UPDATE "generation_results" SET "output_expired_at" = now()
WHERE "status" = 'completed' AND "output_key" IS NULL AND "output_expired_at" IS NULL;--> statement-breakpoint
-- Plain CREATE INDEX, not CONCURRENTLY: drizzle's migrator runs every pending migration in one
-- transaction, where CONCURRENTLY is refused, and the ADD COLUMN above holds the table's
-- ACCESS EXCLUSIVE lock until that commits, so the build blocks reads and writes of the
-- table while it runs. On a large deployment, create the index by name beforehand,
-- outside a transaction, and check it is valid (pg_index.indisvalid: a failed CONCURRENTLY
-- build leaves an invalid one, which IF NOT EXISTS would accept):
--   CREATE INDEX CONCURRENTLY IF NOT EXISTS "generation_results_output_finished_idx"
--     ON "generation_results" ("finished_at") WHERE "output_key" is not null;
CREATE INDEX IF NOT EXISTS "generation_results_output_finished_idx" ON "generation_results" USING btree ("finished_at") WHERE "generation_results"."output_key" is not null;
