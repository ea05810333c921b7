ALTER TABLE "generations" DROP CONSTRAINT "generations_account_idempotency_key";--> statement-breakpoint
ALTER TABLE "generations" ADD COLUMN "idempotency_hash" text;--> statement-breakpoint
ALTER TABLE "generations" ADD CONSTRAINT "generations_account_idempotency_key" UNIQUE("account_id","network","idempotency_key");