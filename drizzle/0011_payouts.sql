CREATE TYPE "public"."payout_status" AS ENUM('pending', 'broadcast', 'paid', 'failed');--> statement-breakpoint
CREATE TABLE "payouts" (
	"id" text PRIMARY KEY NOT NULL,
	"account_id" text NOT NULL,
	"network" "network" NOT NULL,
	"credits" bigint NOT NULL,
	"usdc_amount" bigint NOT NULL,
	"to_address" text NOT NULL,
	"from_address" text NOT NULL,
	"status" "payout_status" DEFAULT 'pending' NOT NULL,
	"tx_hash" text,
	"nonce" bigint,
	"raw_transaction" text,
	"failure_reason" text,
	"idempotency_key" text NOT NULL,
	"request_hash" text NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone NOT NULL,
	"broadcast_at" timestamp with time zone,
	"completed_at" timestamp with time zone,
	CONSTRAINT "payouts_account_idempotency_key" UNIQUE("account_id","network","idempotency_key"),
	CONSTRAINT "payouts_credits_positive" CHECK ("payouts"."credits" > 0),
	CONSTRAINT "payouts_usdc_amount" CHECK ("payouts"."usdc_amount" = "payouts"."credits" * 10000),
	CONSTRAINT "payouts_addresses" CHECK ("payouts"."to_address" ~ '^0x[0-9a-fA-F]{40}$' and "payouts"."from_address" ~ '^0x[0-9a-fA-F]{40}$'),
	CONSTRAINT "payouts_signed" CHECK ("payouts"."status" in ('pending', 'failed') or ("payouts"."tx_hash" is not null and "payouts"."nonce" is not null and "payouts"."raw_transaction" is not null)),
	CONSTRAINT "payouts_unsigned_while_pending" CHECK ("payouts"."status" <> 'pending' or "payouts"."tx_hash" is null),
	CONSTRAINT "payouts_completed" CHECK (("payouts"."status" in ('paid', 'failed')) = ("payouts"."completed_at" is not null))
);
--> statement-breakpoint
ALTER TABLE "payouts" ADD CONSTRAINT "payouts_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "payouts_tx_hash" ON "payouts" USING btree ("network","tx_hash");--> statement-breakpoint
CREATE INDEX "payouts_account_idx" ON "payouts" USING btree ("account_id","network","id");--> statement-breakpoint
CREATE INDEX "payouts_unresolved_idx" ON "payouts" USING btree ("updated_at") WHERE "payouts"."status" in ('pending', 'broadcast');