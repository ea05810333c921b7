-- The ledger's unit becomes 1/10,000 of a credit (one USDC base unit), so that usage-billed
-- calls can cost a fraction of a credit and payments and payouts map to it 1:1. Every stored
-- amount is multiplied by 10,000: balances, transfers (and the balances after them), holds,
-- generation costs, pass fees and royalties, workflow quotes, payments' and payouts' credits.
-- Ids, idempotency ids and every invariant stay as they were (a multiple keeps sums, equalities
-- and signs). The guards that keep the ledger append-only are lifted for this statement only.
ALTER TABLE "payouts" DROP CONSTRAINT "payouts_usdc_amount";--> statement-breakpoint
ALTER TABLE "ledger_accounts" DISABLE TRIGGER "ledger_accounts_guard";--> statement-breakpoint
ALTER TABLE "ledger_transfers" DISABLE TRIGGER "ledger_transfers_immutable";--> statement-breakpoint
ALTER TABLE "ledger_holds" DISABLE TRIGGER "ledger_holds_guard";--> statement-breakpoint
ALTER TABLE "payouts" DISABLE TRIGGER "payouts_guard";--> statement-breakpoint
UPDATE "ledger_accounts" SET "balance" = "balance" * 10000 WHERE "balance" IS NOT NULL;--> statement-breakpoint
UPDATE "ledger_transfers" SET "amount" = "amount" * 10000,
  "debit_balance_after" = "debit_balance_after" * 10000,
  "credit_balance_after" = "credit_balance_after" * 10000;--> statement-breakpoint
UPDATE "ledger_holds" SET "amount" = "amount" * 10000, "available" = "available" * 10000,
  "drawn" = "drawn" * 10000, "posted" = "posted" * 10000, "released" = "released" * 10000;--> statement-breakpoint
UPDATE "generations" SET "quoted" = "quoted" * 10000;--> statement-breakpoint
UPDATE "generation_results" SET "cost" = "cost" * 10000, "charged" = "charged" * 10000,
  "refunded" = "refunded" * 10000;--> statement-breakpoint
UPDATE "generation_passes" SET "fee" = "fee" * 10000;--> statement-breakpoint
UPDATE "style_passes" SET "fee" = "fee" * 10000;--> statement-breakpoint
UPDATE "pass_uses" SET "fee" = "fee" * 10000, "royalty" = "royalty" * 10000;--> statement-breakpoint
UPDATE "workflow_runs" SET "quoted" = "quoted" * 10000, "returned" = "returned" * 10000;--> statement-breakpoint
UPDATE "workflow_run_steps" SET "quoted" = "quoted" * 10000;--> statement-breakpoint
UPDATE "payments" SET "credits" = "credits" * 10000;--> statement-breakpoint
UPDATE "payouts" SET "credits" = "credits" * 10000;--> statement-breakpoint
ALTER TABLE "ledger_accounts" ENABLE TRIGGER "ledger_accounts_guard";--> statement-breakpoint
ALTER TABLE "ledger_transfers" ENABLE TRIGGER "ledger_transfers_immutable";--> statement-breakpoint
ALTER TABLE "ledger_holds" ENABLE TRIGGER "ledger_holds_guard";--> statement-breakpoint
ALTER TABLE "payouts" ENABLE TRIGGER "payouts_guard";--> statement-breakpoint
ALTER TABLE "payouts" ADD CONSTRAINT "payouts_usdc_amount" CHECK ("payouts"."usdc_amount" = "payouts"."credits");
