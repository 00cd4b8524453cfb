-- Every write through the API: who, what, when, under which correlation id. Each record carries
-- the hash of the one before it, so an edited or deleted record breaks the chain.
CREATE TABLE audit_log (
    id             bigserial   PRIMARY KEY,
    at             timestamptz NOT NULL,
    client         text        NOT NULL,
    method         text        NOT NULL,
    path           text        NOT NULL,
    route          text        NOT NULL,
    status         integer     NOT NULL,
    correlation_id text        NOT NULL,
    body_sha256    text,
    body_bytes     integer     NOT NULL DEFAULT 0,
    prev_hash      text        NOT NULL,
    hash           text        NOT NULL
);
