ALTER TABLE "api_keys" ADD COLUMN IF NOT EXISTS "limit_total" bigint;--> statement-breakpoint
ALTER TABLE "api_keys" ADD COLUMN IF NOT EXISTS "limit_per_day" bigint;--> statement-breakpoint
ALTER TABLE "api_keys" ADD COLUMN IF NOT EXISTS "spent_total" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "api_keys" ADD COLUMN IF NOT EXISTS "spent_day" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "api_keys" ADD COLUMN IF NOT EXISTS "spent_day_date" date;--> statement-breakpoint
ALTER TABLE "ledger_holds" ADD COLUMN IF NOT EXISTS "api_key_id" text;--> statement-breakpoint
ALTER TABLE "ledger_holds" DROP CONSTRAINT IF EXISTS "ledger_holds_api_key_id_api_keys_id_fk";--> statement-breakpoint
ALTER TABLE "ledger_holds" ADD CONSTRAINT "ledger_holds_api_key_id_api_keys_id_fk" FOREIGN KEY ("api_key_id") REFERENCES "public"."api_keys"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "api_keys" DROP CONSTRAINT IF EXISTS "api_keys_limits_non_negative";--> statement-breakpoint
ALTER TABLE "api_keys" ADD CONSTRAINT "api_keys_limits_non_negative" CHECK (("api_keys"."limit_total" is null or "api_keys"."limit_total" >= 0) and ("api_keys"."limit_per_day" is null or "api_keys"."limit_per_day" >= 0));--> statement-breakpoint
ALTER TABLE "api_keys" DROP CONSTRAINT IF EXISTS "api_keys_spent_non_negative";--> statement-breakpoint
ALTER TABLE "api_keys" ADD CONSTRAINT "api_keys_spent_non_negative" CHECK ("api_keys"."spent_total" >= 0 and "api_keys"."spent_day" >= 0);--> statement-breakpoint

-- Spend limits per API key. A hold placed by a key (api_key_id, not drawn from a reservation)
-- adds its amount to the key's counters and a resolution takes back what it released, both by
-- triggers on ledger_holds, so every way of placing or resolving a hold (ledger_place_holds,
-- generation_submit, placeHold, resolveHold, the expiry sweeper) keeps them in the same
-- transaction. The placing statement locks the key's row: concurrent holds of one key queue, and
-- a hold that would take spent_total past limit_total, or the UTC day's spent_day past
-- limit_per_day, raises PFKEY with the limit it hit as JSON ({limit, max, spent, amount}), in
-- ledger units. The balance row is locked before the key's, on placing and on resolving, the
-- order the funding transfer takes anyway, so holds through several keys of one account cannot
-- deadlock with each other or with a resolution.
CREATE OR REPLACE FUNCTION api_key_hold_placed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  v_key api_keys%ROWTYPE;
  v_day date := (NEW.created_at AT TIME ZONE 'UTC')::date;
  v_spent_day bigint;
BEGIN
  PERFORM 1 FROM ledger_accounts WHERE id = NEW.account_id FOR NO KEY UPDATE;
  SELECT * INTO v_key FROM api_keys WHERE id = NEW.api_key_id FOR NO KEY UPDATE;
  IF NOT FOUND THEN RETURN NULL; END IF;
  v_spent_day := CASE WHEN v_key.spent_day_date = v_day THEN v_key.spent_day ELSE 0 END;
  IF v_key.limit_total IS NOT NULL AND v_key.spent_total + NEW.amount > v_key.limit_total THEN
    RAISE EXCEPTION USING ERRCODE = 'PFKEY', MESSAGE = json_build_object(
      'limit', 'total', 'max', v_key.limit_total, 'spent', v_key.spent_total, 'amount', NEW.amount)::text;
  END IF;
  IF v_key.limit_per_day IS NOT NULL AND v_spent_day + NEW.amount > v_key.limit_per_day THEN
    RAISE EXCEPTION USING ERRCODE = 'PFKEY', MESSAGE = json_build_object(
      'limit', 'perDay', 'max', v_key.limit_per_day, 'spent', v_spent_day, 'amount', NEW.amount)::text;
  END IF;
  UPDATE api_keys SET spent_total = spent_total + NEW.amount, spent_day = v_spent_day + NEW.amount,
                      spent_day_date = v_day
  WHERE id = NEW.api_key_id;
  RETURN NULL;
END $$;
--> statement-breakpoint
-- After the insert: an `on conflict do nothing` that inserts nothing (a replayed hold) counts nothing.
DROP TRIGGER IF EXISTS ledger_holds_api_key_spend ON ledger_holds;
--> statement-breakpoint
CREATE TRIGGER ledger_holds_api_key_spend AFTER INSERT ON ledger_holds
FOR EACH ROW WHEN (NEW.api_key_id IS NOT NULL AND NEW.parent_hold_id IS NULL)
EXECUTE FUNCTION api_key_hold_placed();
--> statement-breakpoint
-- What a resolved hold released (a void: all of it; a partial post: the rest) no longer counts;
-- what it posted stays spent. A hold drawn from a reservation or a batch's hold gives back to the
-- key of the hold at its root, which counted the credits when it was placed; the day's counter
-- only if that hold was placed on the counter's day.
CREATE OR REPLACE FUNCTION api_key_hold_resolved() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  v_root ledger_holds%ROWTYPE := NEW;
BEGIN
  WHILE v_root.parent_hold_id IS NOT NULL LOOP
    SELECT * INTO v_root FROM ledger_holds WHERE id = v_root.parent_hold_id;
  END LOOP;
  IF v_root.api_key_id IS NULL THEN RETURN NULL; END IF;
  PERFORM 1 FROM ledger_accounts WHERE id = NEW.account_id FOR NO KEY UPDATE;
  UPDATE api_keys
  SET spent_total = greatest(spent_total - NEW.released, 0),
      spent_day = CASE WHEN spent_day_date = (v_root.created_at AT TIME ZONE 'UTC')::date
                       THEN greatest(spent_day - NEW.released, 0) ELSE spent_day END
  WHERE id = v_root.api_key_id;
  RETURN NULL;
END $$;
--> statement-breakpoint
DROP TRIGGER IF EXISTS ledger_holds_api_key_release ON ledger_holds;
--> statement-breakpoint
CREATE TRIGGER ledger_holds_api_key_release AFTER UPDATE OF status ON ledger_holds
FOR EACH ROW WHEN (OLD.status = 'pending' AND NEW.status <> 'pending' AND NEW.released > 0
                   AND (NEW.api_key_id IS NOT NULL OR NEW.parent_hold_id IS NOT NULL))
EXECUTE FUNCTION api_key_hold_resolved();
--> statement-breakpoint
-- ledger_place_holds takes `apiKeyId` (the key placing the holds, or null).
CREATE OR REPLACE FUNCTION ledger_place_holds(p jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  v_network network := (p->>'network')::network;
  v_account text := p->>'account';
  v_parent text := p->>'parentHoldId';
  v_now timestamptz := (p->>'now')::timestamptz;
  v_total bigint := (SELECT sum((h->>'amount')::bigint) FROM jsonb_array_elements(p->'holds') AS e(h));
  v_funded bigint := 0;
  v_row ledger_holds%ROWTYPE;
  v_fund record;
  v_hold jsonb;
BEGIN
  IF v_parent IS NULL THEN
    PERFORM ledger_ensure_account(v_account);
  ELSE
    -- Drawn before the holds are inserted: they reference their parent, so an unknown parent
    -- would otherwise be a foreign-key failure instead of the reservation's 404.
    UPDATE ledger_holds SET available = available - v_total, drawn = drawn + v_total
    WHERE id = v_parent AND kind IN (SELECT jsonb_array_elements_text(p->'drawableKinds'))
      AND account_id = v_account AND network = v_network AND status = 'pending'
      AND expires_at > v_now AND available >= v_total;
    IF NOT FOUND THEN
      SELECT * INTO v_row FROM ledger_holds WHERE id = v_parent;
      IF NOT FOUND OR v_row.account_id <> v_account OR v_row.network <> v_network
         OR v_row.kind NOT IN (SELECT jsonb_array_elements_text(p->'drawableKinds')) THEN
        RAISE EXCEPTION USING ERRCODE = 'PF404', MESSAGE = 'not found';
      ELSIF v_row.status <> 'pending' THEN
        RAISE EXCEPTION USING ERRCODE = 'PF409', MESSAGE = 'settled';
      ELSIF v_row.expires_at <= v_now THEN
        RAISE EXCEPTION USING ERRCODE = 'PF409', MESSAGE = 'expired';
      END IF;
      RAISE EXCEPTION USING ERRCODE = 'PF402', MESSAGE = v_row.available::text;
    END IF;
  END IF;
  INSERT INTO ledger_holds (id, network, account_id, parent_hold_id, kind, reference, api_key_id,
                            amount, available, expires_at, created_at)
  SELECT e.h->>'id', v_network, v_account, v_parent, p->>'kind', p->>'reference', p->>'apiKeyId',
         (e.h->>'amount')::bigint, (e.h->>'amount')::bigint, (p->>'expiresAt')::timestamptz, v_now
  FROM jsonb_array_elements(p->'holds') AS e(h);
  IF v_parent IS NOT NULL THEN RETURN; END IF;
  FOR v_hold IN SELECT * FROM jsonb_array_elements(p->'holds') LOOP
    SELECT * INTO v_fund FROM ledger_transfer(
      v_hold->>'fundId', v_network, v_account, p->>'holdsAccount', (v_hold->>'amount')::bigint,
      'hold', p->>'reference', '{}'::jsonb, v_hold->>'id', v_now);
    IF v_fund.outcome = 'insufficient' THEN
      -- What the balance was before this call's holds.
      RAISE EXCEPTION USING ERRCODE = 'PF402', MESSAGE = (v_fund.have + v_funded)::text;
    ELSIF v_fund.outcome <> 'created' THEN
      -- New ids cannot replay: the caller reused one.
      RAISE EXCEPTION 'funding hold % ended %', v_hold->>'id', v_fund.outcome;
    END IF;
    v_funded := v_funded + (v_hold->>'amount')::bigint;
  END LOOP;
END $$;
--> statement-breakpoint
-- generation_submit answers a key's limit as the outcome key_limit_exceeded (`detail`: the JSON
-- above), like its other refusals, so that one submit's refusal leaves the others of its group.
CREATE OR REPLACE FUNCTION generation_submit(p jsonb) RETURNS TABLE (
  outcome text, generation_id text, cost bigint, have bigint, detail text
)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_account_id text := p->>'accountId';
  v_network network := (p->>'network')::network;
  v_key text := p->>'idempotencyKey';
  v_now timestamptz := (p->>'now')::timestamptz;
  v_total bigint := (p->>'quoted')::bigint;
  v_first record;
  v_refusal text;
  v_have bigint;
  v_detail text;
  v_count int;
BEGIN
  IF v_key IS NOT NULL THEN
    -- A key older than its time to live may be used again.
    UPDATE generations SET idempotency_key = NULL, idempotency_hash = NULL
    WHERE account_id = v_account_id AND network = v_network AND idempotency_key = v_key
      AND created_at < (p->>'idempotencyExpiredBefore')::timestamptz;
    SELECT g.id, g.quoted, g.idempotency_hash INTO v_first FROM generations g
    WHERE g.account_id = v_account_id AND g.network = v_network AND g.idempotency_key = v_key;
    IF FOUND THEN
      IF v_first.idempotency_hash IS DISTINCT FROM p->>'idempotencyHash' THEN
        RETURN QUERY SELECT 'idempotency_key_reused'::text, NULL::text, NULL::bigint, NULL::bigint, NULL::text;
      ELSE
        RETURN QUERY SELECT 'replayed'::text, v_first.id, v_first.quoted, NULL::bigint, NULL::text;
      END IF;
      RETURN;
    END IF;
  END IF;

  BEGIN
    INSERT INTO generations (id, account_id, network, media_type, prompt, request, quoted,
                             reservation_id, webhook_url, idempotency_key, idempotency_hash, created_at)
    VALUES (p->>'id', v_account_id, v_network, (p->>'mediaType')::media_type, p->>'prompt', p->'request',
            v_total, p->>'reservationId', p->>'webhookUrl', v_key, p->>'idempotencyHash', v_now);
    INSERT INTO generation_passes (generation_id, pass_id, position, creator_id, fee)
    SELECT p->>'id', e.doc->>'passId', e.ord - 1, e.doc->>'creatorId', (e.doc->>'fee')::bigint
    FROM jsonb_array_elements(p->'passes') WITH ORDINALITY AS e(doc, ord);
    INSERT INTO generation_results (id, generation_id, position, model, cost, hold_id)
    SELECT e->>'id', p->>'id', (e->>'position')::int, e->>'model', (e->>'cost')::bigint, e->>'holdId'
    FROM jsonb_array_elements(p->'results') AS e;
    -- Queued with the generation: charged but never queued cannot happen. A run by the API
    -- process itself (generations/inline.ts) is leased: no worker takes it before the lease ends.
    PERFORM graphile_worker.add_job(
      p->'job'->>'task', (e->'payload')::json,
      run_at => now() + ((p->'job'->>'leaseMs')::int * interval '1 millisecond'),
      max_attempts => (p->'job'->>'maxAttempts')::int,
      job_key => e->>'id')
    FROM jsonb_array_elements(p->'results') AS e;

    -- The holds come last: funding from the balance locks the account's balance row until
    -- commit, so the lock is held for as short a time as possible.
    PERFORM ledger_place_holds(p->'holds');

    -- Counted after the holds, which lock the balance row: every concurrent submit that
    -- committed first is in the count.
    IF p->>'maxInFlight' IS NOT NULL THEN
      v_count := ledger_pending_references(p->'holds'->>'account', p->'holds'->>'kind');
      IF v_count > (p->>'maxInFlight')::int THEN
        RAISE EXCEPTION USING ERRCODE = 'PF429', MESSAGE = v_count::text;
      END IF;
    END IF;
  EXCEPTION
    WHEN unique_violation THEN
      GET STACKED DIAGNOSTICS v_detail = CONSTRAINT_NAME;
      IF v_detail = 'generations_pkey' THEN
        -- Its id is new to each submit: it exists only because this very submit committed in
        -- a statement whose answer was lost (see GroupCommit's retry). The same generation.
        RETURN QUERY SELECT 'created'::text, p->>'id', v_total, NULL::bigint, NULL::text;
        RETURN;
      END IF;
      IF v_detail IS DISTINCT FROM 'generations_account_idempotency_key' THEN RAISE; END IF;
      v_refusal := 'idempotency_race';
    WHEN SQLSTATE 'PF402' THEN
      GET STACKED DIAGNOSTICS v_detail = MESSAGE_TEXT;
      v_refusal := 'insufficient';
      v_have := v_detail::bigint;
    WHEN SQLSTATE 'PF404' THEN
      v_refusal := 'reservation_not_found';
    WHEN SQLSTATE 'PF409' THEN
      GET STACKED DIAGNOSTICS v_detail = MESSAGE_TEXT;
      v_refusal := 'reservation_closed';
    WHEN SQLSTATE 'PFKEY' THEN
      GET STACKED DIAGNOSTICS v_detail = MESSAGE_TEXT;
      v_refusal := 'key_limit_exceeded';
    WHEN SQLSTATE 'PF429' THEN
      GET STACKED DIAGNOSTICS v_detail = MESSAGE_TEXT;
      v_refusal := 'too_many_in_flight';
      v_have := v_detail::bigint;
  END;
  IF v_refusal IS NOT NULL THEN
    RETURN QUERY SELECT v_refusal, NULL::text, NULL::bigint, v_have,
                        CASE WHEN v_refusal IN ('reservation_closed', 'key_limit_exceeded') THEN v_detail END;
    RETURN;
  END IF;
  RETURN QUERY SELECT 'created'::text, p->>'id', v_total, NULL::bigint, NULL::text;
END $$;
