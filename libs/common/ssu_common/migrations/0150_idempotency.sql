-- Idempotency-Key (issue 14): the first answer to a client's POST under a key, replayed when
-- the same request comes again with it (a retry after a lost answer); kept 24 hours.
CREATE TABLE idempotency_keys (
    client       text        NOT NULL,
    key          text        NOT NULL,
    request_hash bytea       NOT NULL,
    state        text        NOT NULL CHECK (state IN ('in_progress', 'done')),
    status       integer,
    headers      jsonb,
    body         bytea,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (client, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
