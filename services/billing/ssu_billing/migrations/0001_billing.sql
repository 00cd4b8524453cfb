-- Read model of providers, built from licensing events (one row per BIN: its latest license).
CREATE TABLE providers (
    bin            text PRIMARY KEY,
    name           text        NOT NULL,
    legal_form     text        NOT NULL,
    region         text        NOT NULL,
    contact        jsonb       NOT NULL,
    license_number text        NOT NULL,
    status         text        NOT NULL,
    seq            integer     NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Read model of licenses: the latest snapshot (highest seq) and the dates it is active on.
CREATE TABLE licenses (
    license_number text PRIMARY KEY,
    bin            text           NOT NULL,
    status         text           NOT NULL,
    seq            integer        NOT NULL,
    subtypes       jsonb          NOT NULL,
    active         datemultirange NOT NULL DEFAULT '{}',
    updated_at     timestamptz    NOT NULL DEFAULT now()
);
CREATE INDEX licenses_bin ON licenses (bin);

-- Status changes of a license in seq order; `licenses.active` is derived from them.
CREATE TABLE license_transitions (
    license_number text        NOT NULL,
    seq            integer     NOT NULL,
    status         text        NOT NULL,
    effective_date date        NOT NULL,
    event_type     text        NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (license_number, seq)
);

-- Read model of enrollments, built from registry events.
CREATE TABLE enrollments (
    enrollment_id  text PRIMARY KEY,
    iin            text        NOT NULL,
    provider_bin   text        NOT NULL,
    license_number text        NOT NULL,
    site_id        text        NOT NULL,
    region         text        NOT NULL,
    form           text        NOT NULL,
    category       text        NOT NULL,
    start_date     date        NOT NULL,
    end_date       date,
    status         text        NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    CHECK (end_date IS NULL OR end_date >= start_date - 1)
);
CREATE INDEX enrollments_provider ON enrollments (provider_bin, iin);

-- Tariffs approved by akimats: category '*' applies where no category-specific one does.
CREATE TABLE tariffs (
    id             bigserial PRIMARY KEY,
    region         text          NOT NULL,
    form           text          NOT NULL,
    category       text          NOT NULL,
    effective_from date          NOT NULL,
    rate           numeric(14,2) NOT NULL CHECK (rate >= 0),
    unit           text          NOT NULL CHECK (unit IN ('day', 'month')),
    act_reference  text          NOT NULL,
    updated_at     timestamptz   NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (region, form, category, effective_from)
);

CREATE TABLE contracts (
    number        text PRIMARY KEY,
    provider_bin  text          NOT NULL,
    region        text          NOT NULL,
    year          integer       NOT NULL,
    budget        numeric(14,2) NOT NULL CHECK (budget >= 0),
    exhausted_at  timestamptz,
    created_at    timestamptz   NOT NULL DEFAULT now(),
    UNIQUE (provider_bin, region, year)
);

-- Dates of service reported by providers.
CREATE TABLE attendance (
    enrollment_id text        NOT NULL,
    day           date        NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (enrollment_id, day)
);
CREATE INDEX attendance_day ON attendance (day, enrollment_id);

CREATE TABLE runs (
    id             uuid PRIMARY KEY,
    period         text          NOT NULL UNIQUE,
    period_start   date          NOT NULL,
    status         text          NOT NULL,
    started_by     text          NOT NULL,
    approved_by    text,
    approved_at    timestamptz,
    invoices       integer       NOT NULL DEFAULT 0,
    lines          integer       NOT NULL DEFAULT 0,
    total          numeric(14,2) NOT NULL DEFAULT 0,
    over_budget    numeric(14,2) NOT NULL DEFAULT 0,
    unbilled_dates integer       NOT NULL DEFAULT 0,
    uncontracted   integer       NOT NULL DEFAULT 0,
    started_at     timestamptz   NOT NULL DEFAULT clock_timestamp(),
    completed_at   timestamptz
);

CREATE TABLE invoices (
    id              uuid PRIMARY KEY,
    number          text          NOT NULL UNIQUE,
    run_id          uuid          NOT NULL REFERENCES runs (id),
    contract_number text          NOT NULL REFERENCES contracts (number),
    provider_bin    text          NOT NULL,
    region          text          NOT NULL,
    period          text          NOT NULL,
    status          text          NOT NULL DEFAULT 'issued',
    total           numeric(14,2) NOT NULL,
    over_budget     numeric(14,2) NOT NULL,
    lines           integer       NOT NULL,
    issued_at       timestamptz   NOT NULL,
    approved_by     text,
    approved_at     timestamptz,
    paid_amount     numeric(14,2),
    paid_on         date,
    UNIQUE (contract_number, period)
);
CREATE INDEX invoices_provider_period ON invoices (provider_bin, period);
CREATE INDEX invoices_region_period ON invoices (region, period);

-- One line per enrollment and month billed; adjustments name the month they correct.
CREATE TABLE invoice_lines (
    invoice_id        uuid          NOT NULL REFERENCES invoices (id),
    line_no           integer       NOT NULL,
    enrollment_id     text          NOT NULL,
    iin               text          NOT NULL,
    form              text          NOT NULL,
    category          text          NOT NULL,
    month             date          NOT NULL,
    kind              text          NOT NULL CHECK (kind IN ('regular', 'adjustment')),
    amount            numeric(14,2) NOT NULL,
    computed_amount   numeric(14,2) NOT NULL,
    previously_billed numeric(14,2) NOT NULL DEFAULT 0,
    status            text          NOT NULL CHECK (status IN ('billed', 'over_budget')),
    eligible_days     integer       NOT NULL,
    attended_days     integer       NOT NULL,
    -- dates as bits of the month (bit n = day n+1); per tariff applied, the dates counted
    eligible_mask     bigint        NOT NULL,
    attended_mask     bigint        NOT NULL,
    untariffed_mask   bigint        NOT NULL,
    tariff_ids        bigint[]      NOT NULL,
    counted_masks     bigint[]      NOT NULL,
    PRIMARY KEY (invoice_id, line_no)
);
CREATE INDEX invoice_lines_enrollment_month ON invoice_lines (enrollment_id, month);

CREATE TABLE reconciliations (
    invoice_number text PRIMARY KEY,
    amount_paid    numeric(14,2) NOT NULL,
    status         text          NOT NULL,
    paid_on        date          NOT NULL,
    recorded_at    timestamptz   NOT NULL DEFAULT now()
);
