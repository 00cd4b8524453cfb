-- IINs sealed at rest (ssu_common.crypto): enrollments and invoice lines hold the IIN as an
-- AES-GCM token; enrollments are found by the IIN's blind index (HMAC), and the billing run
-- orders and joins on it. Values written before this migration stay readable as clear bytes
-- until `ssu keys rotate billing` seals them (and recomputes their index).
DROP INDEX enrollments_provider;
ALTER TABLE enrollments ALTER COLUMN iin TYPE bytea USING convert_to(iin, 'UTF8');
ALTER TABLE enrollments ADD COLUMN iin_index bytea;
UPDATE enrollments SET iin_index = iin;
ALTER TABLE enrollments ALTER COLUMN iin_index SET NOT NULL;
CREATE INDEX enrollments_provider ON enrollments (provider_bin, iin_index);

ALTER TABLE invoice_lines ALTER COLUMN iin TYPE bytea USING convert_to(iin, 'UTF8');

-- A provider's contact (email, phone: often a person's own), one token of its JSON.
ALTER TABLE providers ALTER COLUMN contact TYPE bytea USING convert_to(contact::text, 'UTF8');
