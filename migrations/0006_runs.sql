-- Training runs: what was trained on what, with which code, parameters and
-- seed (lineage); how it went (timestamped transitions, logs, metrics); what
-- it produced (artifacts in the artifact store).

CREATE TABLE runs (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id         text NOT NULL REFERENCES projects(id),
    number             integer NOT NULL,
    experiment         text NOT NULL CHECK (experiment ~ '^[a-z][a-z0-9-]{1,62}$'),
    dataset            text NOT NULL,
    dataset_version    integer NOT NULL,
    dataset_version_id uuid NOT NULL REFERENCES dataset_versions(id),
    dataset_sha256     text NOT NULL,
    compute_id         uuid NOT NULL REFERENCES compute_targets(id),
    algorithm          text NOT NULL CHECK (algorithm IN ('xgboost', 'seasonal_naive',
                                                          'moving_average')),
    params             jsonb NOT NULL DEFAULT '{}',
    horizon_days       integer NOT NULL CHECK (horizon_days BETWEEN 1 AND 90),
    backtest_days      integer NOT NULL CHECK (backtest_days BETWEEN 7 AND 365),
    rolling_origins    integer NOT NULL DEFAULT 1 CHECK (rolling_origins BETWEEN 1 AND 12),
    seed               bigint NOT NULL,
    state              text NOT NULL DEFAULT 'queued'
                       CHECK (state IN ('queued', 'preparing', 'running', 'completed', 'failed',
                                        'canceled')),
    queued_at          timestamptz NOT NULL DEFAULT now(),
    preparing_at       timestamptz,
    running_at         timestamptz,
    finished_at        timestamptz,
    exit_status        integer,
    error              jsonb,        -- {code, message, last_log_lines}
    metrics            jsonb,        -- the trainer's metrics.json summary
    lineage            jsonb,        -- the trainer's run.json
    artifacts          jsonb,        -- [{name, key, uri, bytes, sha256}]
    log_chunks         integer NOT NULL DEFAULT 0,
    operation_id       uuid REFERENCES operations(id),
    created_by         text NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    version            integer NOT NULL DEFAULT 1,
    UNIQUE (project_id, number)
);
CREATE INDEX runs_project ON runs (project_id, created_at DESC);
-- Slots: how many runs hold a compute target at once.
CREATE INDEX runs_active ON runs (compute_id) WHERE state IN ('preparing', 'running');

-- Metrics as they arrive: per boosting round, per phase, and final.
CREATE TABLE run_metrics (
    run_id uuid NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    name   text NOT NULL,
    step   integer NOT NULL,
    value  double precision NOT NULL,
    at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, name, step)
);
