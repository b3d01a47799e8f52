-- Runs carried out as Azure ML command jobs: the job as we last saw it
-- {name, status, studio_url, output_uri, polls, submitted_at}. NULL for local runs.
ALTER TABLE runs ADD COLUMN azure_job jsonb;
