-- Keeping the production model good: drift reports comparing each new dataset
-- version with the production model's training data, a retraining policy per
-- project (a cron schedule, an accuracy threshold, a drift threshold), and one
-- row per retraining it started, from trigger to proposed promotion.

CREATE TABLE retraining_policies (
    project_id                 text PRIMARY KEY REFERENCES projects(id) ON DELETE CASCADE,
    enabled                    boolean NOT NULL DEFAULT false,
    cron                       text CHECK (length(cron) <= 200),   -- NULL: no schedule
    timezone                   text NOT NULL DEFAULT 'UTC',
    accuracy_wape_threshold    double precision CHECK (accuracy_wape_threshold > 0),
    drift_psi_threshold        double precision DEFAULT 0.2 CHECK (drift_psi_threshold > 0),
    model                      text NOT NULL,                      -- the model retrained
    compute                    text NOT NULL,                      -- compute target name
    -- Skipping the platform admin's approval is itself an admin's decision: who made it is
    -- kept, and every promotion approved this way names them in the audit log.
    auto_promote_to_production boolean NOT NULL DEFAULT false,
    auto_promote_granted_by    text,
    auto_promote_granted_at    timestamptz,
    next_fire_at               timestamptz,                        -- NULL: nothing scheduled
    last_fired_at              timestamptz,
    last_reason                text,
    created_by                 text NOT NULL,
    updated_by                 text NOT NULL,
    created_at                 timestamptz NOT NULL DEFAULT now(),
    updated_at                 timestamptz NOT NULL DEFAULT now(),
    version                    integer NOT NULL DEFAULT 1,
    CHECK (NOT auto_promote_to_production OR auto_promote_granted_by IS NOT NULL)
);
-- The scheduler's claim: due policies, oldest first.
CREATE INDEX retraining_policies_due ON retraining_policies (next_fire_at)
    WHERE enabled AND next_fire_at IS NOT NULL;

CREATE TABLE retrainings (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    seq             bigserial UNIQUE NOT NULL,        -- the list's cursor
    project_id      text NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    reason          text NOT NULL CHECK (reason IN ('schedule', 'drift', 'accuracy', 'manual')),
    detail          jsonb,                         -- e.g. the drift report that fired it
    state           text NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued', 'training', 'proposed', 'completed', 'failed')),
    model           text NOT NULL,
    base_version    integer,                       -- the production version retrained
    run_id          uuid REFERENCES runs(id),
    model_version   integer,                       -- registered from the run
    promotion_id    uuid REFERENCES promotions(id),
    auto_promote    boolean NOT NULL DEFAULT false,
    error           jsonb,
    triggered_by    text NOT NULL,                 -- a user's oid, or system:<reason>
    operation_id    uuid REFERENCES operations(id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX retrainings_project ON retrainings (project_id, seq DESC);
-- At most one retraining in flight per project: triggers that arrive meanwhile coalesce.
CREATE UNIQUE INDEX retrainings_one_active ON retrainings (project_id)
    WHERE state IN ('queued', 'training');

CREATE TABLE drift_reports (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    seq                  bigserial UNIQUE NOT NULL,          -- the list's cursor
    project_id           text NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    dataset              text NOT NULL,
    dataset_version      integer NOT NULL,
    dataset_version_id   uuid NOT NULL REFERENCES dataset_versions(id),
    reference_version    integer NOT NULL,
    reference_version_id uuid NOT NULL REFERENCES dataset_versions(id),
    model                text NOT NULL,
    model_version        integer NOT NULL,
    report               jsonb NOT NULL,
    max_psi              double precision NOT NULL,
    threshold            double precision NOT NULL,
    drifted              boolean NOT NULL,
    retraining_id        uuid REFERENCES retrainings(id),
    operation_id         uuid REFERENCES operations(id),
    created_at           timestamptz NOT NULL DEFAULT now(),
    UNIQUE (dataset_version_id, model, model_version)        -- a retried check writes once
);
CREATE INDEX drift_reports_project ON drift_reports (project_id, seq DESC);
