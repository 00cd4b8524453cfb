-- A run bills one region's month (region set) or every region's month (region NULL, the
-- national run, for national keys only); each scope is run once per month.
ALTER TABLE runs ADD COLUMN region text;
ALTER TABLE runs DROP CONSTRAINT runs_period_key;
CREATE UNIQUE INDEX runs_period_scope ON runs (period, coalesce(region, ''));
ALTER TABLE run_failures ADD COLUMN region text;
