-- The treasury's round trip (issue 13).
-- A contract carries the provider's bank details the treasury pays to: IIK (an account in IBAN
-- form), BIK (the bank's SWIFT code), KBK (budget classification code) and KNP (payment purpose
-- code). Contracts made before this migration have none until they are set.
ALTER TABLE contracts ADD COLUMN iik text;
ALTER TABLE contracts ADD COLUMN bik text;
ALTER TABLE contracts ADD COLUMN kbk text;
ALTER TABLE contracts ADD COLUMN knp text;
ALTER TABLE contracts ADD COLUMN bank_details_by text;
ALTER TABLE contracts ADD COLUMN bank_details_at timestamptz;

-- Every version of a contract's bank details: who set them, when and why (creation, a change,
-- a correction after the treasury rejected a payment).
CREATE TABLE contract_bank_details (
    id              bigserial   PRIMARY KEY,
    contract_number text        NOT NULL REFERENCES contracts (number),
    iik             text        NOT NULL,
    bik             text        NOT NULL,
    kbk             text        NOT NULL,
    knp             text        NOT NULL,
    reason          text        NOT NULL,
    invoice_number  text,
    changed_by      text        NOT NULL,
    changed_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX contract_bank_details_contract ON contract_bank_details (contract_number, id);

-- An invoice is paid in tranches: one reconciliation row per payment (or rejection) the
-- treasury reports; `invoices.paid_amount` is their sum.
ALTER TABLE reconciliations DROP CONSTRAINT reconciliations_pkey;
ALTER TABLE reconciliations ADD COLUMN id bigserial PRIMARY KEY;
ALTER TABLE reconciliations ADD COLUMN reference text NOT NULL DEFAULT '';
ALTER TABLE reconciliations ADD COLUMN recorded_by text;
-- An invoice is placed in the register again after a rejected payment is corrected; each
-- placement is numbered, and the same row of a treasury file sent twice for one placement is
-- recognised, not paid twice.
ALTER TABLE invoices ADD COLUMN placement integer NOT NULL DEFAULT 1;
ALTER TABLE reconciliations ADD COLUMN placement integer NOT NULL DEFAULT 1;
CREATE UNIQUE INDEX reconciliations_row
    ON reconciliations (invoice_number, placement, status, amount_paid, paid_on, reference);
