-- Checks before payment (issue 19): what the billing run's rules read besides attendance.
-- A recipient's (or guardian's) answer to "was this month's attendance right?", one row per
-- enrollment and month asked. The run reads only `state`; how the question is asked and
-- answered (single-use codes, channels) adds its own columns.
CREATE TABLE attendance_confirmations (
    enrollment_id text        NOT NULL,
    month         date        NOT NULL CHECK (month = date_trunc('month', month)::date),
    state         text        NOT NULL CHECK (state IN ('requested', 'confirmed', 'disputed')),
    updated_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (enrollment_id, month)
);

-- Deaths as the state population register reported them through registry, by the IIN's blind
-- index (the same HMAC as enrollments.iin_index): the run pays no date after `died_on`.
CREATE TABLE deaths (
    iin_index   bytea       PRIMARY KEY,
    died_on     date        NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
