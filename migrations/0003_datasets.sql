-- Datasets: named per project, with immutable versions that come from an
-- upload, a blob already in the artifact store, or (later) an Event Grid
-- BlobCreated event. A version is ingested by an operation; once ready it
-- never changes.

CREATE TABLE datasets (
    project_id  text NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (name ~ '^[a-z][a-z0-9-]{1,62}$'),
    description text NOT NULL DEFAULT '',
    schema_kind text NOT NULL DEFAULT 'sales' CHECK (schema_kind IN ('sales')),
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    version     integer NOT NULL DEFAULT 1,
    PRIMARY KEY (project_id, name)
);

CREATE TABLE dataset_versions (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id       text NOT NULL,
    dataset          text NOT NULL,
    number           integer NOT NULL,
    state            text NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'ingesting', 'ready', 'rejected', 'failed')),
    on_error         text NOT NULL DEFAULT 'reject' CHECK (on_error IN ('reject', 'quarantine')),
    source           jsonb NOT NULL,          -- {kind: upload|artifact|event, uri, ...}
    raw_uri          text NOT NULL,
    raw_key          text,                    -- artifact key when it lives in our store
    raw_sha256       text NOT NULL,
    raw_bytes        bigint NOT NULL,
    content_encoding text,                    -- 'gzip' or NULL
    canonical_uri    text,
    canonical_sha256 text,
    canonical_bytes  bigint,
    quarantine_uri   text,
    rows_read        bigint,
    rows_accepted    bigint,
    rows_rejected    bigint,
    result           jsonb,                   -- header problems, first errors, warnings
    profile          jsonb,
    operation_id     uuid REFERENCES operations(id),
    created_by       text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    FOREIGN KEY (project_id, dataset) REFERENCES datasets(project_id, name) ON DELETE CASCADE,
    UNIQUE (project_id, dataset, number)
);
-- The same bytes uploaded twice are the same version.
CREATE INDEX dataset_versions_sha ON dataset_versions (project_id, dataset, raw_sha256);

-- Daily totals per store and product, for charts and the trainer. Loaded in
-- bulk (millions of rows per version): no foreign key, whose per-row check
-- would dominate the load; versions are immutable and never deleted alone.
CREATE TABLE dataset_daily_totals (
    version_id uuid NOT NULL,
    day        date NOT NULL,
    store_id   text NOT NULL,
    product    text NOT NULL,
    quantity   bigint NOT NULL,
    total      numeric(14, 2) NOT NULL,
    PRIMARY KEY (version_id, store_id, product, day)
);
