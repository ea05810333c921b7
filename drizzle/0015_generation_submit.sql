-- Holds on one account, placed inside the caller's transaction (a generation's submit):
-- inserted, then each funded from the balance by a transfer, or all drawn at once from a
-- parent hold (a reservation, a batch's hold). A refusal raises, so the caller's savepoint
-- undoes what was written:
--   PF402 the balance or the parent's remaining credits are short; MESSAGE: what there was
--   PF404 no parent hold this account may draw from
--   PF409 the parent hold is closed; MESSAGE: 'expired' or 'settled'
-- `p`: {network, account, holdsAccount, kind, reference, expiresAt, now, parentHoldId,
--       drawableKinds, holds: [{id, amount, fundId}]}
CREATE FUNCTION ledger_place_holds(p jsonb) RETURNS void
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
  INSERT INTO ledger_holds (id, network, account_id, parent_hold_id, kind, reference, amount,
                            available, expires_at, created_at)
  SELECT e.h->>'id', v_network, v_account, v_parent, p->>'kind', p->>'reference',
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

-- How many distinct references (a generation's id, for generation holds) hold credits of an
-- account in pending holds of a kind.
CREATE FUNCTION ledger_pending_references(p_account text, p_kind text) RETURNS int
LANGUAGE sql STABLE AS $$
  SELECT count(DISTINCT reference)::int FROM ledger_holds
  WHERE account_id = p_account AND status = 'pending' AND kind = p_kind
$$;
--> statement-breakpoint

-- A generation's submit in one call (one round trip, and one commit when the caller has no
-- transaction open): the idempotency lookup, the generation, its passes and results, one job
-- per result, and a hold per result funded from the balance or drawn from a parent hold (a
-- reservation, a batch's hold) through the ledger's ledger_place_holds, then the cap on
-- generations in flight. `p` is the document generations/submit.ts builds; amounts are decimal
-- strings.
--
-- A refusal is an outcome, not an error, so that several submits can share one statement (the
-- group commit of generations/submit-batcher.ts) and each still succeeds or fails on its own:
-- whatever a refused submit wrote is rolled back to the savepoint of its inner block.
-- Outcomes:
--   created                the generation exists now
--   replayed               its Idempotency-Key names an earlier generation (generation_id, cost)
--   idempotency_key_reused that key was used with a different request
--   idempotency_race       a concurrent submit took the key first; calling again replays it
--   insufficient           the balance (or the parent hold's remaining credits) is short (`have`)
--   reservation_not_found  no parent hold the caller may draw from
--   reservation_closed     the parent hold is settled or expired (`detail`: which)
--   too_many_in_flight     the cap on generations in flight (`have`: the count it would make)
CREATE FUNCTION generation_submit(p jsonb) RETURNS TABLE (
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
    WHEN SQLSTATE 'PF429' THEN
      GET STACKED DIAGNOSTICS v_detail = MESSAGE_TEXT;
      v_refusal := 'too_many_in_flight';
      v_have := v_detail::bigint;
  END;
  IF v_refusal IS NOT NULL THEN
    RETURN QUERY SELECT v_refusal, NULL::text, NULL::bigint, v_have,
                        CASE WHEN v_refusal = 'reservation_closed' THEN v_detail END;
    RETURN;
  END IF;
  RETURN QUERY SELECT 'created'::text, p->>'id', v_total, NULL::bigint, NULL::text;
END $$;
