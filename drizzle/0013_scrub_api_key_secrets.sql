-- An API key's secret is shown once and never stored. Idempotency records written before that
-- rule kept the whole 201 of POST /v1/api-keys, secret included, and replayed it; drop the
-- secret from them. What is left replays as a key creation without its secret.
UPDATE "idempotency_keys" SET "response" = "response" - 'key'
WHERE jsonb_typeof("response") = 'object' AND "response" ->> 'key' LIKE 'sk\_%';
