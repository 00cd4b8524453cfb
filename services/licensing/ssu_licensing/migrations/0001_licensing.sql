-- Requirement sets: versioned data; the one in force on a date is the activated set with the
-- latest effective_from on or before it (a later activation wins a tie).
CREATE TABLE requirement_sets (
    version           text        PRIMARY KEY,
    title             text        NOT NULL,
    non_core_blocking boolean     NOT NULL,
    requirements      jsonb       NOT NULL,
    effective_from    date,
    activated_at      timestamptz,
    created_by        text        NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE applications (
    id              uuid        PRIMARY KEY,
    bin             text        NOT NULL,
    provider_name   text        NOT NULL,
    legal_form      text        NOT NULL,
    region          text        NOT NULL,
    contact         jsonb       NOT NULL,
    subtypes        jsonb       NOT NULL,
    sites           jsonb       NOT NULL,
    staffing        jsonb       NOT NULL,
    equipment       jsonb       NOT NULL,
    premises        jsonb       NOT NULL,
    status          text        NOT NULL DEFAULT 'submitted'
                    CHECK (status IN ('submitted', 'approved', 'rejected')),
    requirement_set text        NOT NULL REFERENCES requirement_sets (version),
    findings        jsonb       NOT NULL,
    findings_source text        NOT NULL DEFAULT 'declaration',
    license_number  text,
    decision_reason text,
    decided_by      text,
    decided_at      timestamptz,
    submitted_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX applications_listing ON applications (submitted_at, id);
CREATE INDEX applications_region_status ON applications (region, status);

CREATE TABLE inspections (
    id             uuid        PRIMARY KEY,
    application_id uuid        NOT NULL REFERENCES applications (id),
    inspected_on   date        NOT NULL,
    inspector      text        NOT NULL,
    observations   jsonb       NOT NULL,
    photos         jsonb       NOT NULL,
    notes          text,
    recorded_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX inspections_of_application ON inspections (application_id, recorded_at);

-- Last license sequence per region and year (numbers SSU-<region>-<year>-<sequence>).
CREATE TABLE license_sequences (
    region_prefix text    NOT NULL,
    year          integer NOT NULL,
    last_value    integer NOT NULL,
    PRIMARY KEY (region_prefix, year)
);

CREATE TABLE licenses (
    number            text        PRIMARY KEY,
    application_id    uuid        UNIQUE REFERENCES applications (id),
    bin               text        NOT NULL,
    provider_name     text        NOT NULL,
    legal_form        text        NOT NULL,
    region            text        NOT NULL,
    contact           jsonb       NOT NULL,
    subtypes          jsonb       NOT NULL,
    sites             jsonb       NOT NULL,
    staffing          jsonb       NOT NULL,
    equipment         jsonb       NOT NULL,
    premises          jsonb       NOT NULL,
    status            text        NOT NULL CHECK (status IN ('active', 'suspended', 'revoked')),
    seq               integer     NOT NULL,
    issued_on         date        NOT NULL,
    status_since      date        NOT NULL,
    status_reason     text,
    suspended_until   date,
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX licenses_bin ON licenses (bin);
CREATE INDEX licenses_region_status ON licenses (region, status);
CREATE INDEX licenses_suspension_due ON licenses (suspended_until) WHERE status = 'suspended';

-- Enrollments known from registry events: the recipients each provider serves.
CREATE TABLE enrollments (
    enrollment_id text    PRIMARY KEY,
    provider_bin  text    NOT NULL,
    active        boolean NOT NULL
);
CREATE INDEX enrollments_active_by_provider ON enrollments (provider_bin) WHERE active;

-- Trail of decisions and license changes: who did what, when, with the state before and after.
-- (The common `audit_log` records every API write; this one records what the writes decided.)
CREATE TABLE decisions (
    id      bigserial   PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    actor   text        NOT NULL,
    action  text        NOT NULL,
    subject text        NOT NULL,
    before  jsonb,
    after   jsonb,
    detail  jsonb
);
CREATE INDEX decisions_subject ON decisions (subject, id);
