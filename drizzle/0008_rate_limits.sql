-- Unlogged: counters of one-minute windows need no crash safety, and skip the WAL.
CREATE UNLOGGED TABLE "rate_limit_counters" (
	"subject" text NOT NULL,
	"bucket" text NOT NULL,
	"window_start" timestamp with time zone NOT NULL,
	"count" integer NOT NULL,
	CONSTRAINT "rate_limit_counters_pkey" PRIMARY KEY("subject","bucket"),
	CONSTRAINT "rate_limit_counters_bucket" CHECK ("rate_limit_counters"."bucket" in ('generate', 'batch', 'poll'))
);
--> statement-breakpoint
CREATE INDEX "rate_limit_counters_window_idx" ON "rate_limit_counters" USING btree ("window_start");--> statement-breakpoint
CREATE INDEX "ledger_transfers_pack_purchase_idx" ON "ledger_transfers" USING btree ("credit_account_id") WHERE "ledger_transfers"."kind" = 'pack_purchase';