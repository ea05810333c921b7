CREATE TYPE "public"."hold_status" AS ENUM('pending', 'posted', 'voided', 'expired');--> statement-breakpoint
CREATE TYPE "public"."ledger_account_kind" AS ENUM('credits', 'earnings', 'issuance', 'revenue', 'holds', 'royalties');--> statement-breakpoint
CREATE TABLE "ledger_accounts" (
	"id" text PRIMARY KEY NOT NULL,
	"network" "network" NOT NULL,
	"kind" "ledger_account_kind" NOT NULL,
	"owner_id" text,
	"balance" bigint,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "ledger_accounts_id_network" UNIQUE("id","network"),
	CONSTRAINT "ledger_accounts_owner_network_kind" UNIQUE("owner_id","network","kind"),
	CONSTRAINT "ledger_accounts_owner_matches_kind" CHECK (("ledger_accounts"."kind" in ('credits', 'earnings')) = ("ledger_accounts"."owner_id" is not null and "ledger_accounts"."balance" is not null)),
	CONSTRAINT "ledger_accounts_non_negative" CHECK ("ledger_accounts"."balance" >= 0)
);
--> statement-breakpoint
CREATE TABLE "ledger_holds" (
	"id" text PRIMARY KEY NOT NULL,
	"network" "network" NOT NULL,
	"account_id" text NOT NULL,
	"parent_hold_id" text,
	"kind" text NOT NULL,
	"reference" text,
	"amount" bigint NOT NULL,
	"available" bigint NOT NULL,
	"drawn" bigint DEFAULT 0 NOT NULL,
	"posted" bigint DEFAULT 0 NOT NULL,
	"released" bigint DEFAULT 0 NOT NULL,
	"status" "hold_status" DEFAULT 'pending' NOT NULL,
	"resolved_by" text,
	"expires_at" timestamp with time zone NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"resolved_at" timestamp with time zone,
	CONSTRAINT "ledger_holds_amount_positive" CHECK ("ledger_holds"."amount" > 0),
	CONSTRAINT "ledger_holds_parts_non_negative" CHECK ("ledger_holds"."available" >= 0 and "ledger_holds"."drawn" >= 0 and "ledger_holds"."posted" >= 0 and "ledger_holds"."released" >= 0),
	CONSTRAINT "ledger_holds_conserved" CHECK ("ledger_holds"."amount" = "ledger_holds"."available" + "ledger_holds"."drawn" + "ledger_holds"."posted" + "ledger_holds"."released"),
	CONSTRAINT "ledger_holds_resolution" CHECK (("ledger_holds"."status" = 'pending') = ("ledger_holds"."resolved_by" is null and "ledger_holds"."resolved_at" is null)
          and ("ledger_holds"."status" = 'pending' or "ledger_holds"."available" = 0)
          and ("ledger_holds"."status" <> 'pending' or ("ledger_holds"."posted" = 0 and "ledger_holds"."released" = 0)))
);
--> statement-breakpoint
CREATE TABLE "ledger_transfers" (
	"id" text PRIMARY KEY NOT NULL,
	"seq" bigserial NOT NULL,
	"network" "network" NOT NULL,
	"debit_account_id" text NOT NULL,
	"credit_account_id" text NOT NULL,
	"amount" bigint NOT NULL,
	"kind" text NOT NULL,
	"reference" text,
	"metadata" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"hold_id" text,
	"debit_balance_after" bigint,
	"credit_balance_after" bigint,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "ledger_transfers_seq_unique" UNIQUE("seq"),
	CONSTRAINT "ledger_transfers_amount_positive" CHECK ("ledger_transfers"."amount" > 0),
	CONSTRAINT "ledger_transfers_two_sides" CHECK ("ledger_transfers"."debit_account_id" <> "ledger_transfers"."credit_account_id"),
	CONSTRAINT "ledger_transfers_kind_format" CHECK ("ledger_transfers"."kind" ~ '^[a-z][a-z_]*$')
);
--> statement-breakpoint
ALTER TABLE "ledger_accounts" ADD CONSTRAINT "ledger_accounts_owner_id_accounts_id_fk" FOREIGN KEY ("owner_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "ledger_holds" ADD CONSTRAINT "ledger_holds_account_same_network" FOREIGN KEY ("account_id","network") REFERENCES "public"."ledger_accounts"("id","network") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "ledger_holds" ADD CONSTRAINT "ledger_holds_parent" FOREIGN KEY ("parent_hold_id") REFERENCES "public"."ledger_holds"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "ledger_transfers" ADD CONSTRAINT "ledger_transfers_debit_same_network" FOREIGN KEY ("debit_account_id","network") REFERENCES "public"."ledger_accounts"("id","network") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "ledger_transfers" ADD CONSTRAINT "ledger_transfers_credit_same_network" FOREIGN KEY ("credit_account_id","network") REFERENCES "public"."ledger_accounts"("id","network") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "ledger_transfers" ADD CONSTRAINT "ledger_transfers_hold" FOREIGN KEY ("hold_id") REFERENCES "public"."ledger_holds"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "ledger_holds_pending_expiry_idx" ON "ledger_holds" USING btree ("expires_at") WHERE "ledger_holds"."status" = 'pending';--> statement-breakpoint
CREATE INDEX "ledger_holds_account_idx" ON "ledger_holds" USING btree ("account_id") WHERE "ledger_holds"."status" = 'pending';--> statement-breakpoint
CREATE INDEX "ledger_holds_parent_idx" ON "ledger_holds" USING btree ("parent_hold_id");--> statement-breakpoint
CREATE INDEX "ledger_transfers_debit_idx" ON "ledger_transfers" USING btree ("debit_account_id","seq");--> statement-breakpoint
CREATE INDEX "ledger_transfers_credit_idx" ON "ledger_transfers" USING btree ("credit_account_id","seq");--> statement-breakpoint
CREATE UNIQUE INDEX "ledger_transfers_one_post_per_hold" ON "ledger_transfers" USING btree ("hold_id") WHERE "ledger_transfers"."kind" = 'hold_post';--> statement-breakpoint
CREATE UNIQUE INDEX "ledger_transfers_one_release_per_hold" ON "ledger_transfers" USING btree ("hold_id") WHERE "ledger_transfers"."kind" = 'hold_release';