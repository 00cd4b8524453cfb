-- Contact book built from events: providers (by BIN) and recipients (by IIN).
CREATE TABLE provider_contacts (
    bin         text        PRIMARY KEY,
    name        text        NOT NULL,
    region      text        NOT NULL,
    email       text,
    phone       text,
    language    text        NOT NULL CHECK (language IN ('kk', 'ru')),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE recipient_contacts (
    iin             text        PRIMARY KEY,
    full_name       text        NOT NULL,
    birth_date      date        NOT NULL,
    region          text        NOT NULL,
    language        text        NOT NULL CHECK (language IN ('kk', 'ru')),
    email           text,
    phone           text,
    guardian_name   text,
    guardian_email  text,
    guardian_phone  text,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Webhook subscriptions of downstream systems.
CREATE TABLE subscriptions (
    seq          bigserial   UNIQUE,
    id           uuid        PRIMARY KEY,
    callback_url text        NOT NULL,
    event_types  text[]      NOT NULL,
    secret       text        NOT NULL,
    description  text,
    created_by   text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    deleted_at   timestamptz
);
CREATE INDEX subscriptions_types ON subscriptions USING gin (event_types) WHERE deleted_at IS NULL;

-- The delivery log: one row per (event, addressee, channel), so an event never sends twice.
CREATE TABLE deliveries (
    seq             bigserial   UNIQUE,
    id              uuid        PRIMARY KEY,
    event_id        uuid        NOT NULL,
    event_type      text        NOT NULL,
    correlation_id  text        NOT NULL,
    region          text,
    audience        text        NOT NULL
        CHECK (audience IN ('provider', 'recipient', 'guardian', 'department', 'subscriber')),
    addressee       text        NOT NULL,
    channel         text        NOT NULL CHECK (channel IN ('email', 'sms', 'webhook')),
    destination     text        NOT NULL,
    language        text        NOT NULL,
    subject         text,
    body            text        NOT NULL,
    subscription_id uuid        REFERENCES subscriptions (id),
    status          text        NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'sent', 'failed', 'dead')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    UNIQUE (event_id, addressee, channel)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status IN ('queued', 'failed');
CREATE INDEX deliveries_event ON deliveries (event_id);
