-- A hold drawn from a reservation (or from a batch's hold) counts against the key that draws it.
-- 0018 counted only holds at the root of their chain, so a limited key could draw without limit
-- from a reservation made by a browser session or by another key of its account. Now every hold
-- placed by a key counts against that key, unless one of its ancestors carries the same key:
-- that ancestor counted these credits already (a key's generation drawn from the key's own
-- reservation, the per-result holds under a batch's hold). Locks as in 0018: the balance row
-- before the key's row.
CREATE OR REPLACE FUNCTION api_key_hold_placed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  v_key api_keys%ROWTYPE;
  v_day date := (NEW.created_at AT TIME ZONE 'UTC')::date;
  v_spent_day bigint;
BEGIN
  IF NEW.parent_hold_id IS NOT NULL AND EXISTS (
    WITH RECURSIVE chain AS (
      SELECT h.id, h.parent_hold_id, h.api_key_id FROM ledger_holds h WHERE h.id = NEW.parent_hold_id
      UNION
      SELECT h.id, h.parent_hold_id, h.api_key_id FROM ledger_holds h JOIN chain c ON h.id = c.parent_hold_id
    )
    SELECT 1 FROM chain WHERE chain.api_key_id = NEW.api_key_id
  ) THEN
    RETURN NULL;
  END IF;
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
FOR EACH ROW WHEN (NEW.api_key_id IS NOT NULL)
EXECUTE FUNCTION api_key_hold_placed();
--> statement-breakpoint
-- What a resolved hold released (a void: all of it; a partial post: the rest) no longer counts;
-- what it posted stays spent. It is given back to every key along its chain (the hold and its
-- ancestors), once per key: each counted these credits at its topmost hold in the chain. The
-- day's counter only if that topmost hold was placed on the counter's day. A counter that would
-- go below zero (a bug in this accounting: no flow leads there) stops at zero with a warning in
-- the database's log rather than failing the resolution: a limit's counter must never keep
-- credits from being released.
CREATE OR REPLACE FUNCTION api_key_hold_resolved() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  v_counted record;
BEGIN
  PERFORM 1 FROM ledger_accounts WHERE id = NEW.account_id FOR NO KEY UPDATE;
  -- Several keys of one account: the balance row just locked orders their updates.
  FOR v_counted IN
    WITH RECURSIVE chain AS (
      SELECT NEW.id AS id, NEW.parent_hold_id AS parent_hold_id, NEW.api_key_id AS api_key_id,
             NEW.created_at AS created_at, 0 AS depth
      UNION
      SELECT h.id, h.parent_hold_id, h.api_key_id, h.created_at, c.depth + 1
      FROM ledger_holds h JOIN chain c ON h.id = c.parent_hold_id
    )
    SELECT DISTINCT ON (chain.api_key_id) chain.api_key_id, chain.created_at
    FROM chain WHERE chain.api_key_id IS NOT NULL
    ORDER BY chain.api_key_id, chain.depth DESC
  LOOP
    UPDATE api_keys
    SET spent_total = greatest(spent_total - NEW.released, 0),
        spent_day = CASE WHEN spent_day_date = (v_counted.created_at AT TIME ZONE 'UTC')::date
                         THEN greatest(spent_day - NEW.released, 0) ELSE spent_day END
    WHERE id = v_counted.api_key_id AND spent_total < NEW.released;
    IF FOUND THEN
      RAISE WARNING 'api key % counted less than hold % released (%): its counter stops at zero',
        v_counted.api_key_id, NEW.id, NEW.released;
    ELSE
      UPDATE api_keys
      SET spent_total = spent_total - NEW.released,
          spent_day = CASE WHEN spent_day_date = (v_counted.created_at AT TIME ZONE 'UTC')::date
                           THEN greatest(spent_day - NEW.released, 0) ELSE spent_day END
      WHERE id = v_counted.api_key_id;
    END IF;
  END LOOP;
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
-- A hold leaves `pending` once; what it was is fixed (the key it counts against too); it is
-- never deleted.
CREATE OR REPLACE FUNCTION ledger_guard_hold() RETURNS trigger
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
     OR NEW.api_key_id IS DISTINCT FROM OLD.api_key_id
     OR NEW.expires_at <> OLD.expires_at OR NEW.created_at <> OLD.created_at THEN
    RAISE EXCEPTION 'a hold''s terms are fixed' USING ERRCODE = 'restrict_violation';
  END IF;
  RETURN NEW;
END $$;
--> statement-breakpoint
-- The counters again from the holds, by the rules above, so that the holds drawn under 0018's
-- rules and still pending give back only what was counted (giving back what was never counted
-- would take the counter below what the key spent). Each key's counted holds are its holds
-- with no ancestor of the same key; each gives back what it and the holds drawn from it
-- released. Recomputed, not adjusted: repeating the migration changes nothing. The triggers
-- above were just dropped and created, which locks ledger_holds until commit: no hold is
-- placed or resolved meanwhile.
-- Each hold with every one of its ancestors (itself at depth 0): the chains are short, and
-- plain joins over it keep the recount linear in the holds.
WITH RECURSIVE walk AS (
  SELECT h.id AS hold_id, h.id AS anc_id, h.parent_hold_id AS next_id, h.api_key_id AS anc_key, 0 AS depth
  FROM ledger_holds h
  UNION ALL
  SELECT w.hold_id, p.id, p.parent_hold_id, p.api_key_id, w.depth + 1
  FROM walk w JOIN ledger_holds p ON p.id = w.next_id
),
counted AS (
  SELECT h.id, h.api_key_id, h.amount, (h.created_at AT TIME ZONE 'UTC')::date AS day
  FROM ledger_holds h
  WHERE h.api_key_id IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM walk w WHERE w.hold_id = h.id AND w.depth > 0 AND w.anc_key = h.api_key_id)
),
released AS (
  SELECT w.anc_id AS counted_id, sum(h.released) AS released
  FROM walk w JOIN ledger_holds h ON h.id = w.hold_id
  WHERE w.anc_id IN (SELECT id FROM counted)
  GROUP BY w.anc_id
),
spent AS (
  SELECT c.api_key_id, c.day, c.amount - coalesce(r.released, 0) AS spent
  FROM counted c LEFT JOIN released r ON r.counted_id = c.id
),
totals AS (
  SELECT k.id, coalesce(sum(s.spent), 0)::bigint AS total,
         coalesce(sum(s.spent) FILTER (WHERE s.day = k.spent_day_date), 0)::bigint AS today
  FROM api_keys k LEFT JOIN spent s ON s.api_key_id = k.id
  GROUP BY k.id
)
UPDATE api_keys k SET spent_total = t.total, spent_day = t.today
FROM totals t
WHERE t.id = k.id AND (k.spent_total, k.spent_day) IS DISTINCT FROM (t.total, t.today);
