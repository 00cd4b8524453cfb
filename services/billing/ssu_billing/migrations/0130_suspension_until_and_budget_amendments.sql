-- A timed suspension names the first date the license is active again (`until` of
-- licensing.license.suspended.v1): billing ends the suspension there itself, without waiting
-- for the reinstatement the licensing timer publishes later.
ALTER TABLE license_transitions ADD COLUMN until date;

-- A contract's budget changes only by an amendment, an act of the akimat, kept with who made it.
CREATE TABLE budget_amendments (
    id              bigserial     PRIMARY KEY,
    contract_number text          NOT NULL REFERENCES contracts (number),
    previous_budget numeric(14,2) NOT NULL,
    budget          numeric(14,2) NOT NULL CHECK (budget >= 0),
    act_number      text          NOT NULL,
    act_date        date          NOT NULL,
    amended_by      text          NOT NULL,
    amended_at      timestamptz   NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX budget_amendments_contract ON budget_amendments (contract_number, amended_at);

-- An over-budget line offered again (kind 'release') in a later run after the budget grew:
-- `released_by` names the invoice of that run, and the line no longer counts as billed.
ALTER TABLE invoice_lines ADD COLUMN released_by uuid REFERENCES invoices (id);
ALTER TABLE invoice_lines DROP CONSTRAINT invoice_lines_kind_check;
ALTER TABLE invoice_lines ADD CONSTRAINT invoice_lines_kind_check
    CHECK (kind IN ('regular', 'adjustment', 'release'));
ALTER TABLE invoice_lines ADD COLUMN source_invoice_id uuid;
ALTER TABLE invoice_lines ADD COLUMN source_line_no integer;
