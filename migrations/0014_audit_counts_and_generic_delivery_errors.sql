-- Hostile clients (security review findings 5, 9, 11).
--
-- Webhook delivery errors are generic classes now ("connection failed", "TLS failed", "timeout",
-- "HTTP 5xx", ...): what earlier attempts kept (the HTTP client's message, 200 bytes of the
-- receiver's answer) mapped internal hosts and ports for every project member. Rewritten here
-- to the class each falls in, in the delivery log and in the webhook.deliver operations.
CREATE FUNCTION webhook_error_class(e text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN e IS NULL THEN NULL
        WHEN e IN ('address not allowed', 'connection failed', 'TLS failed', 'timeout',
                   'the webhook is disabled') THEN e
        WHEN e ~ '^HTTP [1-5][0-9][0-9]' THEN 'HTTP ' || substr(e, 6, 1) || 'xx'
        WHEN e ~ '^HTTP [1-5]xx$' THEN e
        WHEN e ILIKE '%timed out%' OR e ILIKE '%timeout%' THEN 'timeout'
        WHEN e ILIKE '%SSL%' OR e ILIKE '%TLS%' OR e ILIKE '%certificate%' THEN 'TLS failed'
        WHEN e ILIKE '%address is not allowed%' THEN 'address not allowed'
        ELSE 'connection failed'
    END
$$;

UPDATE webhook_deliveries SET
    last_error = webhook_error_class(last_error),
    history = (SELECT coalesce(jsonb_agg(CASE WHEN jsonb_typeof(h->'error') = 'string'
                                              THEN jsonb_set(h, '{error}',
                                                             to_jsonb(webhook_error_class(h->>'error')))
                                              ELSE h END ORDER BY o), '[]'::jsonb)
               FROM jsonb_array_elements(history) WITH ORDINALITY AS x(h, o))
WHERE last_error IS NOT NULL OR jsonb_path_exists(history, '$[*].error ? (@ != null)');

UPDATE operations SET error = jsonb_set(error, '{message}',
    to_jsonb(regexp_replace(error->>'message', ': .*$', '') || ': ' ||
             webhook_error_class(regexp_replace(error->>'message', '^[^:]*: ', ''))))
WHERE kind = 'webhook.deliver' AND error->>'code' = 'undelivered' AND error->>'message' LIKE '%: %';

DROP FUNCTION webhook_error_class(text);

-- The audit log cannot be flooded: repeated refusals of one client address, action, status and
-- reason within a window are one row with their count (the first of the window is a row of its
-- own). request_id is always the server's; the id a client sent is kept apart, for correlation,
-- so a client can no longer make its rows look like another request's.
ALTER TABLE audit_log ADD COLUMN count integer NOT NULL DEFAULT 1 CHECK (count > 0);
ALTER TABLE audit_log ADD COLUMN client_request_id text;
CREATE INDEX audit_log_client ON audit_log (client_addr, id);
