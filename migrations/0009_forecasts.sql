-- Forecasts for store managers: generated per project from its production
-- model, written in bulk into one partition per forecast run, switched to
-- atomically when complete; actuals beside them for accuracy.

ALTER TABLE projects
    ADD COLUMN forecast_horizon_days   integer NOT NULL DEFAULT 14
        CHECK (forecast_horizon_days BETWEEN 1 AND 90),
    ADD COLUMN forecast_every_hours    integer NOT NULL DEFAULT 24
        CHECK (forecast_every_hours BETWEEN 1 AND 720),
    ADD COLUMN forecast_retention_days integer NOT NULL DEFAULT 90
        CHECK (forecast_retention_days BETWEEN 1 AND 3650),
    ADD COLUMN forecast_next_at        timestamptz;

-- Known future inputs that data scientists and admins maintain.
CREATE TABLE planned_promotions (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id  text NOT NULL REFERENCES projects(id),
    store_id    text NOT NULL,            -- '*' = every store
    product     text NOT NULL,            -- '*' = every product
    start_date  date NOT NULL,
    end_date    date NOT NULL CHECK (end_date >= start_date),
    description text NOT NULL DEFAULT '',
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX planned_promotions_project ON planned_promotions (project_id, end_date);

CREATE TABLE weather_outlook (
    project_id text NOT NULL REFERENCES projects(id),
    city       text NOT NULL,
    day        date NOT NULL,
    weather    text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, city, day)
);

CREATE TABLE forecast_runs (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id    text NOT NULL REFERENCES projects(id),
    model         text NOT NULL,
    model_version integer NOT NULL,
    dataset       text NOT NULL,
    dataset_version integer NOT NULL,
    trigger       text NOT NULL CHECK (trigger IN ('promotion', 'schedule', 'manual')),
    state         text NOT NULL DEFAULT 'queued'
                  CHECK (state IN ('queued', 'generating', 'ready', 'failed', 'pruned')),
    current       boolean NOT NULL DEFAULT false,
    start_date    date,
    days          integer,
    rows          bigint,
    stores        integer,
    products      text[],
    stats         jsonb,                 -- the generator's result and timings
    error         jsonb,
    operation_id  uuid REFERENCES operations(id),
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    ready_at      timestamptz,
    pruned_at     timestamptz
);
-- Readers switch to a new run in one transaction: one current run per project.
CREATE UNIQUE INDEX forecast_runs_current ON forecast_runs (project_id) WHERE current;
CREATE INDEX forecast_runs_project ON forecast_runs (project_id, created_at DESC);

-- One partition per forecast run (forecasts_<run id without dashes>), loaded
-- with COPY and indexed before it is attached; pruning drops a partition.
CREATE TABLE forecasts (
    run_id   uuid NOT NULL,
    store_id text NOT NULL,
    product  text NOT NULL,
    day      date NOT NULL,
    forecast real NOT NULL,
    lo80     real NOT NULL,
    hi80     real NOT NULL,
    lo95     real NOT NULL,
    hi95     real NOT NULL
) PARTITION BY LIST (run_id);

-- What was sold: from dataset versions and POST /api/v1/actuals, one row per
-- store, product and day (a later report of the same day replaces it).
CREATE TABLE actuals (
    store_id   text NOT NULL,
    product    text NOT NULL,
    day        date NOT NULL,
    quantity   double precision NOT NULL CHECK (quantity >= 0),
    source     text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (store_id, product, day)
);
