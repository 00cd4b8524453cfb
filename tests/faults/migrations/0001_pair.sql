-- The producer's state: one row per thing; its event goes to the outbox in the same transaction.
CREATE TABLE things (
    seq        bigint      PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);
-- The consumer's state: one row per applied event and deliberately no unique constraint on
-- event_id, so an event applied twice shows as two rows.
CREATE TABLE effects (
    id         bigserial   PRIMARY KEY,
    event_id   uuid        NOT NULL,
    seq        bigint      NOT NULL,
    event_time timestamptz NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
