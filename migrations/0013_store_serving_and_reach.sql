-- Who may reach what (security review 2026-12, findings 3, 4, 10 and 16). A store's serving
-- project, chosen by a platform admin, decides whose forecasts its managers are served and
-- whose contributors may report its actuals; actuals say where they came from and who
-- reported them; a compute change records who asked for it, so four eyes compare with that
-- person; an idempotent answer keeps the access checks it was given under, so a replay is
-- checked again.

-- The project whose current forecasts a store's managers see. Until an admin sets it
-- (PUT /api/v1/stores/{store}/serving-project) nobody's forecasts are served for the store.
ALTER TABLE stores
    ADD COLUMN serving_project    text REFERENCES projects(id),
    ADD COLUMN serving_set_by     text,
    ADD COLUMN serving_set_at     timestamptz;
CREATE INDEX stores_serving_project ON stores (serving_project)
    WHERE serving_project IS NOT NULL;

-- Existing stores keep what their managers were served on upgrade: the project of the newest
-- current forecast run covering the store. From here on only an admin changes it.
UPDATE stores s SET serving_project = w.project_id, serving_set_by = 'migration 0013',
                    serving_set_at = now()
FROM (SELECT DISTINCT ON (x.store_id) x.store_id, f.project_id
      FROM forecasts x JOIN forecast_runs f ON f.id = x.run_id
      WHERE f.current AND f.state = 'ready'
      ORDER BY x.store_id, f.ready_at DESC) w
WHERE w.store_id = s.id;

-- Where an actual came from. 'api' rows were reported by a person (reported_by) and take
-- precedence: a dataset version never replaces them. 'dataset:<dataset>:<version>' rows were
-- derived from a version of source_project's dataset and are replaced by later versions.
ALTER TABLE actuals
    ADD COLUMN reported_by    text,
    ADD COLUMN source_project text REFERENCES projects(id),
    ADD CONSTRAINT actuals_source_kind CHECK (source = 'api' OR source LIKE 'dataset:%');

-- Who asked for the change a compute's decision is about: the requester at creation (NULL
-- here means the original requester), the caller of the PATCH that scaled it since.
ALTER TABLE compute_targets ADD COLUMN change_requested_by text;

-- The access checks (policy action, resource) the first request passed, as a JSON array of
-- [action, resource]; a replay passes them again first. NULL on rows of earlier servers.
ALTER TABLE idempotency_keys ADD COLUMN checks jsonb;
