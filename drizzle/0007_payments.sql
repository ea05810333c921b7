CREATE TYPE "public"."payment_purpose" AS ENUM('pack', 'generation');--> statement-breakpoint
CREATE TYPE "public"."payment_status" AS ENUM('settling', 'pending', 'settled', 'failed');--> statement-breakpoint
CREATE TABLE "payments" (
	"id" text PRIMARY KEY NOT NULL,
	"network" "network" NOT NULL,
	"account_id" text NOT NULL,
	"payer" text NOT NULL,
	"pay_to" text NOT NULL,
	"asset" text NOT NULL,
	"nonce" text NOT NULL,
	"amount" bigint NOT NULL,
	"credits" bigint NOT NULL,
	"purpose" "payment_purpose" NOT NULL,
	"pack" text,
	"generation_id" text,
	"status" "payment_status" NOT NULL,
	"transaction" text,
	"valid_before" timestamp with time zone NOT NULL,
	"error" text,
	"created_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone NOT NULL,
	"settled_at" timestamp with time zone,
	CONSTRAINT "payments_amount_positive" CHECK ("payments"."amount" > 0 and "payments"."credits" > 0),
	CONSTRAINT "payments_nonce_format" CHECK ("payments"."nonce" ~ '^0x[0-9a-f]{64}$'),
	CONSTRAINT "payments_settled_has_transaction" CHECK ("payments"."status" <> 'settled' or ("payments"."transaction" is not null and "payments"."settled_at" is not null)),
	CONSTRAINT "payments_purpose_fields" CHECK (("payments"."purpose" = 'pack') = ("payments"."pack" is not null))
);
--> statement-breakpoint
ALTER TABLE "payments" ADD CONSTRAINT "payments_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "payments_authorization" ON "payments" USING btree ("network","asset","payer","nonce");--> statement-breakpoint
CREATE UNIQUE INDEX "payments_transaction" ON "payments" USING btree ("network","transaction");--> statement-breakpoint
CREATE INDEX "payments_account_idx" ON "payments" USING btree ("account_id","network","created_at");--> statement-breakpoint
CREATE INDEX "payments_unresolved_idx" ON "payments" USING btree ("status") WHERE "payments"."status" in ('settling', 'pending');