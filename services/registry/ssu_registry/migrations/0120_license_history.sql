-- Every license snapshot registry has received, so that figures can be given as of a past date
-- (GET /v1/statistics?as_of=): the status in force on a date is that of the snapshot with the
-- latest (effective_date, seq) on or before it. Sites are kept per snapshot with their places
-- (no addresses: a shelter's address is never kept where it is not needed).
CREATE TABLE provider_history (
    license_number text    NOT NULL,
    seq            integer NOT NULL,
    status         text    NOT NULL,
    effective_date date    NOT NULL,
    legal_form     text    NOT NULL,
    region         text    NOT NULL,
    -- false for the rows copied from the providers table when this table was made: only the
    -- latest snapshot was known then, so history before it is unknown.
    received       boolean NOT NULL DEFAULT true,
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (license_number, seq)
);
CREATE INDEX provider_history_on ON provider_history (license_number, effective_date, seq);

CREATE TABLE provider_site_history (
    license_number text    NOT NULL,
    seq            integer NOT NULL,
    site_id        text    NOT NULL,
    region         text    NOT NULL,
    places         integer,
    PRIMARY KEY (license_number, seq, site_id),
    FOREIGN KEY (license_number, seq) REFERENCES provider_history ON DELETE CASCADE
);

INSERT INTO provider_history (license_number, seq, status, effective_date, legal_form, region,
                              received)
SELECT license_number, seq, status, effective_date, legal_form, region, false FROM providers;
INSERT INTO provider_site_history (license_number, seq, site_id, region, places)
SELECT s.license_number, p.seq, s.site_id, s.region, s.places
FROM provider_sites s JOIN providers p USING (license_number)
WHERE s.listed;

-- A recipient whose enrollment ended because the license was revoked is unplaced from the
-- revocation date until an enrollment of the same form starts for them (placed_again_on).
ALTER TABLE enrollments
    ADD COLUMN unplaced_on date,
    ADD COLUMN placed_again_on date,
    ADD COLUMN placed_again_by uuid;
CREATE INDEX enrollments_unplaced ON enrollments (iin_index, form)
    WHERE unplaced_on IS NOT NULL AND placed_again_by IS NULL;
