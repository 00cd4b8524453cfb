-- The outbox: events written in the same transaction as the state change that causes them.
CREATE TABLE outbox (
    id             bigserial PRIMARY KEY,
    event_id       uuid        NOT NULL UNIQUE,
    event_type     text        NOT NULL,
    subject        text,
    body           text        NOT NULL,
    correlation_id text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    sent_at        timestamptz,
    attempts       integer     NOT NULL DEFAULT 0,
    last_error     text
);
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;

-- The inbox: ids of events already applied, so a redelivery has no effect.
CREATE TABLE inbox (
    event_id    uuid        PRIMARY KEY,
    event_type  text        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
