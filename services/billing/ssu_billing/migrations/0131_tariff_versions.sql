-- Tariffs are versioned: a change to a tariff (region, form, category, effective_from) is a new
-- row with the next version, its act and who made it; the version it replaces is kept,
-- superseded, so an invoice line naming it explains itself as it was computed.
-- `ended_from`: the first date the tariff is no longer in force.
ALTER TABLE tariffs ADD COLUMN version integer NOT NULL DEFAULT 1;
ALTER TABLE tariffs ADD COLUMN ended_from date;
ALTER TABLE tariffs ADD COLUMN created_by text;
ALTER TABLE tariffs ADD COLUMN superseded_at timestamptz;
ALTER TABLE tariffs ADD CONSTRAINT tariffs_ended_after_start
    CHECK (ended_from IS NULL OR ended_from > effective_from);
ALTER TABLE tariffs DROP CONSTRAINT tariffs_region_form_category_effective_from_key;
CREATE UNIQUE INDEX tariffs_current ON tariffs (region, form, category, effective_from)
    WHERE superseded_at IS NULL;
CREATE UNIQUE INDEX tariffs_versions ON tariffs (region, form, category, effective_from, version);
