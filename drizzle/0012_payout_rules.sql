-- A payout's state machine, enforced by PostgreSQL whatever code writes to it:
-- pending -> broadcast | failed, broadcast -> paid | failed; paid and failed are final. What was
-- asked (account, network, amount, recipient, sender, key) never changes, and a signed
-- transaction (hash, nonce, bytes), once stored, is never replaced: a second signature for one
-- payout could pay it twice. Payouts are never deleted.
CREATE FUNCTION payouts_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'payouts are never deleted' USING ERRCODE = 'restrict_violation';
  END IF;
  IF OLD.status IN ('paid', 'failed') THEN
    RAISE EXCEPTION 'payout % is already %', OLD.id, OLD.status USING ERRCODE = 'restrict_violation';
  END IF;
  IF NEW.status <> OLD.status AND NOT (
       (OLD.status = 'pending' AND NEW.status IN ('broadcast', 'failed'))
    OR (OLD.status = 'broadcast' AND NEW.status IN ('paid', 'failed'))) THEN
    RAISE EXCEPTION 'payout % cannot go from % to %', OLD.id, OLD.status, NEW.status
      USING ERRCODE = 'restrict_violation';
  END IF;
  IF NEW.id <> OLD.id OR NEW.account_id <> OLD.account_id OR NEW.network <> OLD.network
     OR NEW.credits <> OLD.credits OR NEW.usdc_amount <> OLD.usdc_amount
     OR NEW.to_address <> OLD.to_address OR NEW.from_address <> OLD.from_address
     OR NEW.idempotency_key <> OLD.idempotency_key OR NEW.request_hash <> OLD.request_hash
     OR NEW.created_at <> OLD.created_at THEN
    RAISE EXCEPTION 'a payout''s terms are fixed' USING ERRCODE = 'restrict_violation';
  END IF;
  IF OLD.tx_hash IS NOT NULL AND (NEW.tx_hash IS DISTINCT FROM OLD.tx_hash
     OR NEW.nonce IS DISTINCT FROM OLD.nonce OR NEW.raw_transaction IS DISTINCT FROM OLD.raw_transaction) THEN
    RAISE EXCEPTION 'payout % is already signed', OLD.id USING ERRCODE = 'restrict_violation';
  END IF;
  RETURN NEW;
END $$;
--> statement-breakpoint
CREATE TRIGGER payouts_guard BEFORE UPDATE OR DELETE ON payouts
FOR EACH ROW EXECUTE FUNCTION payouts_guard();
