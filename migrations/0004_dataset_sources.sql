-- Daily totals per store and product now live only in each version's
-- daily.csv artifact (served by .../versions/{n}/daily-totals): loading them
-- here took longer than the whole ingestion, and nothing queried them.
DROP TABLE dataset_daily_totals;

-- A version's source is one of (openapi.yaml, DatasetSource):
--   {kind: upload,     uri, content_encoding}
--   {kind: artifact,   uri}
--   {kind: event_grid, uri, event_id, event_type, topic, subject, etag, event_time}
-- Event Grid delivers at least once: the same event id registers one version.
CREATE UNIQUE INDEX dataset_versions_event ON dataset_versions (project_id, dataset, (source->>'event_id'))
    WHERE source->>'kind' = 'event_grid';
