-- Daily totals per store and product now live only in each version's
-- daily.csv artifact (served by .../versions/{n}/daily-totals): loading them
-- here took longer than the whole ingestion, and nothing queried them.
DROP TABLE dataset_daily_totals;
