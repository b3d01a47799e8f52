-- People, projects, stores, and who may do what; the append-only audit log;
-- idempotency keys for POST replays.

CREATE TABLE users (
    oid          text PRIMARY KEY,                 -- Azure AD object id
    tid          text NOT NULL,
    name         text NOT NULL,
    roles        text[] NOT NULL DEFAULT '{}',     -- as last seen in a token
    first_seen   timestamptz NOT NULL DEFAULT now(),
    last_seen    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE projects (
    id                  text PRIMARY KEY CHECK (id ~ '^[a-z][a-z0-9-]{1,62}$'),
    display_name        text NOT NULL,
    description         text NOT NULL DEFAULT '',
    monthly_budget_usd  numeric(12, 2) NOT NULL DEFAULT 0 CHECK (monthly_budget_usd >= 0),
    compute_quota_cores integer NOT NULL DEFAULT 0 CHECK (compute_quota_cores >= 0),
    created_by          text NOT NULL REFERENCES users(oid),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    version             integer NOT NULL DEFAULT 1      -- ETag
);

CREATE TABLE project_members (
    project_id text NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    user_oid   text NOT NULL REFERENCES users(oid),
    role       text NOT NULL CHECK (role IN ('owner', 'contributor', 'reader')),
    added_by   text NOT NULL,
    added_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, user_oid)
);
CREATE INDEX project_members_user ON project_members (user_oid);

CREATE TABLE stores (
    id         text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$'),
    name       text NOT NULL,
    country    text NOT NULL CHECK (country IN ('USA', 'Canada', 'Mexico')),
    city       text NOT NULL,
    timezone   text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    version    integer NOT NULL DEFAULT 1
);

CREATE TABLE store_assignments (
    store_id    text NOT NULL REFERENCES stores(id) ON DELETE CASCADE,
    user_oid    text NOT NULL REFERENCES users(oid),
    assigned_by text NOT NULL,
    assigned_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (store_id, user_oid)
);
CREATE INDEX store_assignments_user ON store_assignments (user_oid);

CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor_oid   text,                    -- NULL when the token itself failed
    actor_name  text,
    action      text NOT NULL,           -- e.g. 'POST /api/v1/projects', 'auth.token'
    subject     text NOT NULL DEFAULT '',
    outcome     text NOT NULL CHECK (outcome IN ('allowed', 'denied', 'failed', 'succeeded')),
    status      integer,
    reason      text,
    request_id  text,
    client_addr text
);
CREATE INDEX audit_log_actor ON audit_log (actor_oid, id);
CREATE INDEX audit_log_subject ON audit_log (subject, id);

-- Append-only: the database itself refuses to rewrite history.
CREATE FUNCTION audit_log_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_immutable();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_immutable();

CREATE TABLE idempotency_keys (
    actor_oid     text NOT NULL,
    key           text NOT NULL,
    method        text NOT NULL,
    path          text NOT NULL,
    request_hash  text NOT NULL,
    status        integer,                -- NULL while the first request is in flight
    content_type  text,
    location      text,
    response      text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL DEFAULT now() + interval '24 hours',
    PRIMARY KEY (actor_oid, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
