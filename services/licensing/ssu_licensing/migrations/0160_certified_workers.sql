-- Named workers of an application and a license (issue 18): role, FTE, full name and
-- professional certificate of each, sealed as one AES-GCM token of their JSON like the contact
-- (a name is personal data). NULL: no workers named (every row written before this migration).
ALTER TABLE applications ADD COLUMN workers bytea;
ALTER TABLE licenses ADD COLUMN workers bytea;
-- A license's latest findings: those of the approval, then of each amendment, evaluated on its
-- decision date (`findings_on`) under the set in force (`requirement_set`). NULL for licenses
-- issued before this migration until their next amendment.
ALTER TABLE licenses ADD COLUMN requirement_set text REFERENCES requirement_sets (version);
ALTER TABLE licenses ADD COLUMN findings jsonb;
ALTER TABLE licenses ADD COLUMN findings_on date;
