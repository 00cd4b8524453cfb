-- A run that raised rolls back entirely; this keeps the record that it was tried and failed,
-- for the operator (and the "billing run failed" alert).
CREATE TABLE run_failures (
    id          bigserial   PRIMARY KEY,
    period      text        NOT NULL,
    started_by  text        NOT NULL,
    failed_at   timestamptz NOT NULL DEFAULT now(),
    error       text        NOT NULL
);
