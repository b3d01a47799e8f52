-- Accuracy of the forecasts as served, per project and week, recomputed when
-- actuals arrive: what /metrics exports and the retraining policy watches.
CREATE TABLE accuracy_weekly (
    project_id  text NOT NULL REFERENCES projects(id),
    week        date NOT NULL,           -- the Monday
    wape        double precision,
    bias        double precision,
    coverage80  double precision NOT NULL,
    coverage95  double precision NOT NULL,
    n           bigint NOT NULL,
    computed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, week)
);
