-- Operations: every slow thing a request asks for, carried out by workers.
-- Actions: the ordered steps (local, azureml, terraform) an operation plans
-- and performs; this is the visible translation of a request.

CREATE TABLE operations (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    seq              bigserial UNIQUE NOT NULL,          -- stable order for cursors
    kind             text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_.-]{0,63}$'),
    subject          text NOT NULL DEFAULT '',            -- e.g. 'datasets/42'
    state            text NOT NULL DEFAULT 'queued'
                     CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'canceled')),
    attempts         integer NOT NULL DEFAULT 0,
    max_attempts     integer NOT NULL DEFAULT 5 CHECK (max_attempts > 0),
    cancel_requested boolean NOT NULL DEFAULT false,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    lease_owner      text,
    lease_expires_at timestamptz,
    input            jsonb NOT NULL DEFAULT '{}'::jsonb,
    output           jsonb,
    error            jsonb,
    created_by       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz
);

-- Workers look for due queued work and for expired leases.
CREATE INDEX operations_due ON operations (next_attempt_at) WHERE state = 'queued';
CREATE INDEX operations_leases ON operations (lease_expires_at) WHERE state = 'running';
CREATE INDEX operations_kind ON operations (kind, seq);
CREATE INDEX operations_subject ON operations (subject, seq);
CREATE INDEX operations_state ON operations (state, seq);

CREATE TABLE operation_actions (
    operation_id uuid NOT NULL REFERENCES operations(id) ON DELETE CASCADE,
    position     integer NOT NULL,
    step         text NOT NULL,                            -- idempotency key within the operation
    target       text NOT NULL CHECK (target IN ('local', 'azureml', 'terraform')),
    name         text NOT NULL,
    state        text NOT NULL DEFAULT 'planned'
                 CHECK (state IN ('planned', 'running', 'succeeded', 'failed', 'skipped')),
    request      jsonb,
    response     jsonb,
    error        jsonb,
    attempts     integer NOT NULL DEFAULT 0,
    started_at   timestamptz,
    finished_at  timestamptz,
    PRIMARY KEY (operation_id, position),
    UNIQUE (operation_id, step)
);

-- Wakes workers at once; they also poll, since a notification is only a hint.
CREATE FUNCTION operations_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('roastery_operations', NEW.id::text);
    RETURN NEW;
END $$;

CREATE TRIGGER operations_notify_insert AFTER INSERT ON operations
    FOR EACH ROW EXECUTE FUNCTION operations_notify();
CREATE TRIGGER operations_notify_requeue AFTER UPDATE OF state ON operations
    FOR EACH ROW WHEN (NEW.state = 'queued') EXECUTE FUNCTION operations_notify();
