-- The portal's read model, built from events (DESIGN §1): what the pages show, nothing more.
-- No person is named here: recipients are counted through a keyed hash of their IIN.

CREATE TABLE licenses (
    number           text        PRIMARY KEY,
    bin              text        NOT NULL,
    provider_name    text        NOT NULL,
    legal_form       text        NOT NULL,
    region           text        NOT NULL,
    status           text        NOT NULL,
    seq              integer     NOT NULL,
    effective_date   date        NOT NULL,
    issued_on        date        NOT NULL,
    status_reason    text,
    suspended_until  date,
    subtypes         jsonb       NOT NULL,
    step_free_access boolean,
    -- A license covering a shelter subtype (temporary stay, victims of domestic violence):
    -- its sites' addresses are never shown on a public page.
    shelter          boolean     NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX licenses_bin ON licenses (bin);
CREATE INDEX licenses_region_status ON licenses (region, status);
CREATE INDEX licenses_name ON licenses (lower(provider_name) text_pattern_ops);

CREATE TABLE license_history (
    license_number text        NOT NULL,
    seq            integer     NOT NULL,
    event_type     text        NOT NULL,
    status         text        NOT NULL,
    effective_date date        NOT NULL,
    reason         text,
    PRIMARY KEY (license_number, seq)
);

CREATE TABLE sites (
    license_number text    NOT NULL,
    site_id        text    NOT NULL,
    address        text    NOT NULL,
    kato           text    NOT NULL,
    region         text    NOT NULL,
    places         integer,
    listed         boolean NOT NULL DEFAULT true,
    PRIMARY KEY (license_number, site_id)
);

-- Enrollments only as far as places go: which site a place is taken at, and since when.
CREATE TABLE enrollments (
    enrollment_id  text  PRIMARY KEY,
    recipient_key  bytea NOT NULL,
    license_number text,
    site_id        text,
    region         text  NOT NULL,
    form           text  NOT NULL,
    start_date     date,
    end_date       date,
    status         text  NOT NULL
);
CREATE INDEX enrollments_site ON enrollments (license_number, site_id) WHERE status <> 'ended';

CREATE TABLE recipients (
    recipient_key bytea PRIMARY KEY,
    region        text  NOT NULL,
    registered_on date  NOT NULL
);

CREATE TABLE applications (
    application_id  text        PRIMARY KEY,
    bin             text        NOT NULL,
    provider_name   text        NOT NULL,
    region          text        NOT NULL,
    places          integer,
    requirement_set text,
    submitted_at    timestamptz,
    rejected_at     timestamptz
);

-- Unmet requirements of rejected applications, as the inspector's decision carried them.
CREATE TABLE refusals (
    application_id text    NOT NULL,
    requirement_id text    NOT NULL,
    kind           text    NOT NULL,
    core           boolean NOT NULL,
    title_kk       text,
    title_ru       text,
    PRIMARY KEY (application_id, requirement_id)
);

CREATE TABLE invoices (
    invoice_id   text          PRIMARY KEY,
    provider_bin text          NOT NULL,
    region       text          NOT NULL,
    period       text          NOT NULL,
    total        numeric(14,2) NOT NULL
);
CREATE INDEX invoices_region_period ON invoices (region, period);

-- Signed-in operators. The cookie holds a random token; only its hash is kept, and the
-- operator's API key (needed to act through the other services) is sealed with AES-GCM.
CREATE TABLE sessions (
    token_sha256 bytea       PRIMARY KEY,
    client       text        NOT NULL,
    region       text,
    scopes       text[]      NOT NULL,
    sealed_key   bytea       NOT NULL,
    csrf_token   text        NOT NULL,
    expires_at   timestamptz NOT NULL
);
