-- Recipients over time: searchable by a blind index of the normalised full name, updated with
-- a history, de-registered with a reason; providers remember since when a license is active.
--
-- `search_name` is the normalised name, sealed like every personal field; `name_index` is its
-- blind index (HMAC under the index key), so `ssu keys rotate registry` reseals the one and
-- recomputes the other as it does for the IIN. Rows registered before this migration have
-- neither and are found by name once they are next updated.
ALTER TABLE recipients
    ADD COLUMN search_name bytea,
    ADD COLUMN name_index bytea,
    ADD COLUMN status text NOT NULL DEFAULT 'registered'
        CHECK (status IN ('registered', 'deregistered')),
    ADD COLUMN deregistered_on date,
    ADD COLUMN deregistration_reason text
        CHECK (deregistration_reason IN ('moved', 'died', 'declined')),
    ADD COLUMN version integer NOT NULL DEFAULT 1,
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX recipients_by_name ON recipients (name_index);
CREATE INDEX recipients_by_region ON recipients (region, iin_index);

-- One entry per change of a recipient: which fields, who (principal.actor) and when; the old
-- and new values are sealed (JSON) because they are personal data.
CREATE TABLE recipient_history (
    id          bigserial   PRIMARY KEY,
    iin_index   bytea       NOT NULL REFERENCES recipients (iin_index) ON UPDATE CASCADE,
    version     integer     NOT NULL,
    action      text        NOT NULL,
    fields      text[]      NOT NULL,
    changes     bytea       NOT NULL,
    actor       text        NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (iin_index, version)
);

ALTER TABLE providers ADD COLUMN active_from date;
UPDATE providers SET active_from = effective_date WHERE status = 'active';
