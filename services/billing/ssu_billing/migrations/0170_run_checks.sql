-- Checks before payment (issue 19): named rules of the billing run, their result per line, and
-- the hold a blocking rule puts on a line until a second person releases or rejects it.

-- The sites of a license with their places, as licensing's events list them (the checks read
-- a site's places and the license's licensed places); licenses seen before hold none until
-- their next event, and their rules of places pass.
ALTER TABLE licenses ADD COLUMN sites jsonb NOT NULL DEFAULT '[]';

-- `checks`: the rules a line failed, [{rule, blocking, mask, detail}], `[]` when it passed
-- every rule; NULL for lines billed before the checks existed.
-- `hold`: none (paid as billed), held (`held_amount` is not paid until decided), released
-- (paid), rejected (`held_amount` is never paid); decided by a second person, with a reason.
ALTER TABLE invoice_lines ADD COLUMN checks jsonb;
ALTER TABLE invoice_lines ADD COLUMN hold text NOT NULL DEFAULT 'none'
    CHECK (hold IN ('none', 'held', 'released', 'rejected'));
ALTER TABLE invoice_lines ADD COLUMN held_amount numeric(14,2) NOT NULL DEFAULT 0
    CHECK (held_amount >= 0);
ALTER TABLE invoice_lines ADD COLUMN hold_decided_by text;
ALTER TABLE invoice_lines ADD COLUMN hold_decided_at timestamptz;
ALTER TABLE invoice_lines ADD COLUMN hold_reason text;
CREATE INDEX invoice_lines_held ON invoice_lines (invoice_id) WHERE hold = 'held';

-- An invoice's `total` is what its lines bill; `held` is what its held lines wait for and
-- `rejected` what was refused after review; `payable` = total - held - rejected is what the
-- treasury is to pay.
ALTER TABLE invoices ADD COLUMN held numeric(14,2) NOT NULL DEFAULT 0;
ALTER TABLE invoices ADD COLUMN rejected numeric(14,2) NOT NULL DEFAULT 0;
ALTER TABLE invoices ADD COLUMN payable numeric(14,2)
    GENERATED ALWAYS AS (total - held - rejected) STORED;

ALTER TABLE runs ADD COLUMN held numeric(14,2) NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN held_lines integer NOT NULL DEFAULT 0;
-- The rules that held lines in this run (the policy of its time), for the lines' explanation.
ALTER TABLE runs ADD COLUMN blocking_rules text[];
-- Seconds the run spent on its checks (their share of the run's time, for operators and the
-- benchmark).
ALTER TABLE runs ADD COLUMN checks_seconds double precision;
-- The recipient's name and birth date as a keyed index (no way back to the name), from the
-- enrollment's addressee when it is the recipient (not a guardian): the same person under two
-- IINs is found by it. NULL when the addressee is a guardian or for enrollments seen before.
ALTER TABLE enrollments ADD COLUMN name_index bytea;
