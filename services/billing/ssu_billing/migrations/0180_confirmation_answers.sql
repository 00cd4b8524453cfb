-- How a month's attendance is asked and answered (issue 19): a single-use answer per request,
-- as a link's token and a 6-digit code, kept only as keyed digests (the service's blind-index
-- key); the code path is locked after a few wrong codes for the enrollment. Rows written
-- without them (a run's tests, other sources) stay valid: every column here may be empty.
ALTER TABLE attendance_confirmations
    ADD COLUMN token_digest    bytea,
    ADD COLUMN code_digest     bytea,
    ADD COLUMN attended_days   integer     NOT NULL DEFAULT 0,
    ADD COLUMN requested_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    ADD COLUMN requested_by    text,
    ADD COLUMN expires_at      timestamptz,
    ADD COLUMN failed_attempts integer     NOT NULL DEFAULT 0,
    ADD COLUMN answered_at     timestamptz,
    ADD COLUMN answered_via    text CHECK (answered_via IN ('link', 'code')),
    -- the person's words: sealed (ssu_common.crypto), read by the region's reviewers
    ADD COLUMN dispute_reason  bytea;

CREATE UNIQUE INDEX attendance_confirmations_token ON attendance_confirmations (token_digest);
CREATE INDEX attendance_confirmations_month_state ON attendance_confirmations (month, state);
