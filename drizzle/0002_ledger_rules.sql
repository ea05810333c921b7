-- The ledger's rules, enforced by PostgreSQL whatever code writes to it.

-- System accounts, one of each kind per network. Their balances are derived from transfers.
INSERT INTO ledger_accounts (id, network, kind)
SELECT k.kind || ':' || n.network, n.network::network, k.kind::ledger_account_kind
FROM (VALUES ('live'), ('test')) AS n(network),
     (VALUES ('issuance'), ('revenue'), ('holds'), ('royalties')) AS k(kind);
--> statement-breakpoint

-- User accounts are created on first use from their deterministic id `kind:network:owner`.
CREATE FUNCTION ledger_ensure_account(p_id text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  parts text[] := string_to_array(p_id, ':');
BEGIN
  IF array_length(parts, 1) = 3 AND parts[1] IN ('credits', 'earnings')
     AND NOT EXISTS (SELECT 1 FROM ledger_accounts WHERE id = p_id) THEN
    INSERT INTO ledger_accounts (id, network, kind, owner_id, balance)
    VALUES (p_id, parts[2]::network, parts[1]::ledger_account_kind, parts[3], 0)
    ON CONFLICT DO NOTHING;
  END IF;
END $$;
--> statement-breakpoint

-- Every transfer moves the stored balances of its user sides, in the same statement. User
-- rows are locked in id order so two opposite transfers cannot deadlock. The non-negative
-- check on ledger_accounts refuses an overdraft by failing the insert.
CREATE FUNCTION ledger_apply_transfer() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.debit_balance_after := NULL;
  NEW.credit_balance_after := NULL;
  IF NEW.debit_account_id < NEW.credit_account_id THEN
    UPDATE ledger_accounts SET balance = balance - NEW.amount
      WHERE id = NEW.debit_account_id AND balance IS NOT NULL RETURNING balance INTO NEW.debit_balance_after;
    UPDATE ledger_accounts SET balance = balance + NEW.amount
      WHERE id = NEW.credit_account_id AND balance IS NOT NULL RETURNING balance INTO NEW.credit_balance_after;
  ELSE
    UPDATE ledger_accounts SET balance = balance + NEW.amount
      WHERE id = NEW.credit_account_id AND balance IS NOT NULL RETURNING balance INTO NEW.credit_balance_after;
    UPDATE ledger_accounts SET balance = balance - NEW.amount
      WHERE id = NEW.debit_account_id AND balance IS NOT NULL RETURNING balance INTO NEW.debit_balance_after;
  END IF;
  -- Numbered only now, with the account rows locked: on any one account, a higher seq is a
  -- later balance, so history read by seq shows each balance_after in the order it happened.
  NEW.seq := nextval(pg_get_serial_sequence('ledger_transfers', 'seq'));
  RETURN NEW;
END $$;
--> statement-breakpoint
CREATE TRIGGER ledger_transfers_apply BEFORE INSERT ON ledger_transfers
FOR EACH ROW EXECUTE FUNCTION ledger_apply_transfer();
--> statement-breakpoint

-- Posted transfers are history: never updated, deleted or truncated.
CREATE FUNCTION ledger_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% on % is not allowed: the ledger is append-only', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'restrict_violation';
END $$;
--> statement-breakpoint
CREATE TRIGGER ledger_transfers_immutable BEFORE UPDATE OR DELETE ON ledger_transfers
FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
--> statement-breakpoint
CREATE TRIGGER ledger_transfers_no_truncate BEFORE TRUNCATE ON ledger_transfers
FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
--> statement-breakpoint

-- A balance changes only through a transfer; an account's identity never changes.
CREATE FUNCTION ledger_guard_account() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'ledger accounts are never deleted' USING ERRCODE = 'restrict_violation';
  END IF;
  IF NEW.id <> OLD.id OR NEW.network <> OLD.network OR NEW.kind <> OLD.kind
     OR NEW.owner_id IS DISTINCT FROM OLD.owner_id THEN
    RAISE EXCEPTION 'a ledger account''s identity is fixed' USING ERRCODE = 'restrict_violation';
  END IF;
  -- Only the transfer trigger (one level down) may move a balance; a direct UPDATE is depth 1.
  IF NEW.balance IS DISTINCT FROM OLD.balance AND pg_trigger_depth() < 2 THEN
    RAISE EXCEPTION 'balances change only through ledger transfers' USING ERRCODE = 'restrict_violation';
  END IF;
  RETURN NEW;
END $$;
--> statement-breakpoint
CREATE TRIGGER ledger_accounts_guard BEFORE UPDATE OR DELETE ON ledger_accounts
FOR EACH ROW EXECUTE FUNCTION ledger_guard_account();
--> statement-breakpoint

-- A new account starts empty, and its id says what it is: `kind:network` or `kind:network:owner`.
CREATE FUNCTION ledger_check_new_account() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.id IS DISTINCT FROM (NEW.kind || ':' || NEW.network || coalesce(':' || NEW.owner_id, '')) THEN
    RAISE EXCEPTION 'ledger account id % does not match its kind, network and owner', NEW.id
      USING ERRCODE = 'check_violation';
  END IF;
  IF NEW.balance IS NOT NULL AND NEW.balance <> 0 THEN
    RAISE EXCEPTION 'a ledger account starts at zero; credits arrive by transfer'
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
--> statement-breakpoint
CREATE TRIGGER ledger_accounts_check_new BEFORE INSERT ON ledger_accounts
FOR EACH ROW EXECUTE FUNCTION ledger_check_new_account();
--> statement-breakpoint

-- A hold leaves `pending` once; what it was is fixed; it is never deleted.
CREATE FUNCTION ledger_guard_hold() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'holds are never deleted' USING ERRCODE = 'restrict_violation';
  END IF;
  IF OLD.status <> 'pending' THEN
    RAISE EXCEPTION 'hold % is already %', OLD.id, OLD.status USING ERRCODE = 'restrict_violation';
  END IF;
  IF NEW.id <> OLD.id OR NEW.network <> OLD.network OR NEW.account_id <> OLD.account_id
     OR NEW.amount <> OLD.amount OR NEW.kind <> OLD.kind
     OR NEW.parent_hold_id IS DISTINCT FROM OLD.parent_hold_id
     OR NEW.expires_at <> OLD.expires_at OR NEW.created_at <> OLD.created_at THEN
    RAISE EXCEPTION 'a hold''s terms are fixed' USING ERRCODE = 'restrict_violation';
  END IF;
  RETURN NEW;
END $$;
--> statement-breakpoint
CREATE TRIGGER ledger_holds_guard BEFORE UPDATE OR DELETE ON ledger_holds
FOR EACH ROW EXECUTE FUNCTION ledger_guard_hold();
--> statement-breakpoint

-- One idempotent transfer in one round trip. Outcomes:
--   created      the transfer was posted now
--   replayed     a transfer with this id and the same fields exists; nothing changed
--   conflict     a transfer with this id and other fields exists; nothing changed
--   insufficient the debit side would go below zero; nothing changed (`have` is its balance)
CREATE FUNCTION ledger_transfer(
  p_id text, p_network network, p_debit text, p_credit text, p_amount bigint, p_kind text,
  p_reference text, p_metadata jsonb, p_hold_id text, p_created_at timestamptz
) RETURNS TABLE (
  outcome text, seq bigint, debit_balance_after bigint, credit_balance_after bigint,
  created_at timestamptz, have bigint
)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  r ledger_transfers%ROWTYPE;
  violated text;
BEGIN
  SELECT * INTO r FROM ledger_transfers t WHERE t.id = p_id;
  IF NOT FOUND THEN
    PERFORM ledger_ensure_account(p_debit);
    PERFORM ledger_ensure_account(p_credit);
    BEGIN
      INSERT INTO ledger_transfers AS t (id, network, debit_account_id, credit_account_id, amount,
                                         kind, reference, metadata, hold_id, created_at)
      VALUES (p_id, p_network, p_debit, p_credit, p_amount, p_kind, p_reference,
              coalesce(p_metadata, '{}'::jsonb), p_hold_id, coalesce(p_created_at, now()))
      RETURNING * INTO r;
      RETURN QUERY SELECT 'created'::text, r.seq, r.debit_balance_after, r.credit_balance_after,
                          r.created_at, NULL::bigint;
      RETURN;
    EXCEPTION
      WHEN unique_violation THEN
        -- Another transaction posted this id first; compare with what it posted.
        SELECT * INTO r FROM ledger_transfers t WHERE t.id = p_id;
        IF NOT FOUND THEN RAISE; END IF;
      WHEN check_violation THEN
        GET STACKED DIAGNOSTICS violated = CONSTRAINT_NAME;
        IF violated IS DISTINCT FROM 'ledger_accounts_non_negative' THEN RAISE; END IF;
        -- A retry of a transfer that another transaction was committing meanwhile fails the
        -- balance check only because that one went through: report it as the replay it is.
        SELECT * INTO r FROM ledger_transfers t WHERE t.id = p_id;
        IF NOT FOUND THEN
          RETURN QUERY SELECT 'insufficient'::text, NULL::bigint, NULL::bigint, NULL::bigint,
                              NULL::timestamptz, (SELECT a.balance FROM ledger_accounts a WHERE a.id = p_debit);
          RETURN;
        END IF;
    END;
  END IF;
  RETURN QUERY SELECT
    CASE WHEN r.network = p_network AND r.debit_account_id = p_debit
              AND r.credit_account_id = p_credit AND r.amount = p_amount AND r.kind = p_kind
              AND r.reference IS NOT DISTINCT FROM p_reference
              AND r.metadata = coalesce(p_metadata, '{}'::jsonb)
              AND r.hold_id IS NOT DISTINCT FROM p_hold_id
         THEN 'replayed' ELSE 'conflict' END,
    r.seq, r.debit_balance_after, r.credit_balance_after, r.created_at, NULL::bigint;
END $$;
