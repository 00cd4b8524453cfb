-- A provider's contact (email, phone: often a person's own) sealed at rest as one AES-GCM
-- token of its JSON (ssu_common.crypto). Rows written before this migration keep the JSON as
-- clear bytes, readable until `ssu keys rotate licensing` seals them.
ALTER TABLE applications ALTER COLUMN contact TYPE bytea USING convert_to(contact::text, 'UTF8');
ALTER TABLE licenses ALTER COLUMN contact TYPE bytea USING convert_to(contact::text, 'UTF8');
