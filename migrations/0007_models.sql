-- The model registry: named models per project, immutable versions
-- registered from completed runs, the aliases staging and production with
-- their history (for rollback), and promotions with their gates, approvals
-- and deployments.

ALTER TABLE projects
    ADD COLUMN promotion_margin   numeric(5, 4) NOT NULL DEFAULT 0.05
        CHECK (promotion_margin BETWEEN 0 AND 1),   -- must beat seasonal-naive WAPE by this
    ADD COLUMN champion_tolerance numeric(5, 4) NOT NULL DEFAULT 0.02
        CHECK (champion_tolerance BETWEEN 0 AND 1); -- may be this much worse than production

CREATE TABLE models (
    project_id  text NOT NULL REFERENCES projects(id),
    name        text NOT NULL CHECK (name ~ '^[a-z][a-z0-9-]{1,62}$'),
    description text NOT NULL DEFAULT '',
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, name)
);

CREATE TABLE model_versions (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id         text NOT NULL,
    model              text NOT NULL,
    version            integer NOT NULL,
    run_id             uuid NOT NULL REFERENCES runs(id),
    dataset_version_id uuid NOT NULL REFERENCES dataset_versions(id),
    algorithm          text NOT NULL,
    metrics            jsonb NOT NULL,
    lineage            jsonb,
    artifacts          jsonb NOT NULL,
    description        text NOT NULL DEFAULT '',
    archived_at        timestamptz,
    created_by         text NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (project_id, model) REFERENCES models(project_id, name),
    UNIQUE (project_id, model, version),
    UNIQUE (project_id, model, run_id)         -- a run is registered once per model
);

-- Where staging and production point now.
CREATE TABLE model_aliases (
    project_id text NOT NULL,
    model      text NOT NULL,
    alias      text NOT NULL CHECK (alias IN ('staging', 'production')),
    version    integer NOT NULL,
    set_by     text NOT NULL,
    set_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, model, alias),
    FOREIGN KEY (project_id, model, version) REFERENCES model_versions(project_id, model, version)
);

-- Every move of an alias, append-only: rollback walks it back.
CREATE TABLE model_alias_history (
    id         bigserial PRIMARY KEY,
    project_id text NOT NULL,
    model      text NOT NULL,
    alias      text NOT NULL,
    version    integer NOT NULL,
    previous   integer,
    reason     text NOT NULL,      -- promotion <id> | rollback
    set_by     text NOT NULL,
    set_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX model_alias_history_model ON model_alias_history (project_id, model, alias, id);

CREATE TABLE promotions (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id   text NOT NULL,
    model        text NOT NULL,
    version      integer NOT NULL,
    target       text NOT NULL CHECK (target IN ('staging', 'production')),
    state        text NOT NULL CHECK (state IN ('evaluating', 'gates_failed', 'pending_approval',
                 'approved', 'deploying', 'completed', 'rejected', 'failed')),
    gates        jsonb NOT NULL DEFAULT '[]',   -- [{gate, figure, threshold, verdict, detail}]
    champion     integer,                       -- production version when proposed
    proposed_by  text NOT NULL,
    decided_by   text,
    decided_at   timestamptz,
    reason       text,
    deployment   jsonb,                         -- what the executor did
    error        jsonb,
    operation_id uuid REFERENCES operations(id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    version_no   integer NOT NULL DEFAULT 1,
    FOREIGN KEY (project_id, model, version) REFERENCES model_versions(project_id, model, version)
);
CREATE INDEX promotions_model ON promotions (project_id, model, created_at DESC);
CREATE INDEX promotions_pending ON promotions (state) WHERE state = 'pending_approval';
