-- Personal data sealed at rest (ssu_common.crypto): a recipient's IIN, name, birth date and
-- contacts are AES-GCM tokens; the IIN is found and joined through its blind index (HMAC).
-- Rows written before this migration keep their values as clear bytes, readable until
-- `ssu keys rotate registry` seals them; their index starts as the clear IIN's bytes and the
-- same rotation recomputes it (ON UPDATE CASCADE carries it to enrollments).
ALTER TABLE enrollments DROP CONSTRAINT enrollments_iin_fkey;
DROP INDEX enrollments_one_per_form;
DROP INDEX enrollments_by_iin;
ALTER TABLE recipients DROP CONSTRAINT recipients_pkey;

ALTER TABLE recipients
    ALTER COLUMN iin TYPE bytea USING convert_to(iin, 'UTF8'),
    ALTER COLUMN full_name TYPE bytea USING convert_to(full_name, 'UTF8'),
    ALTER COLUMN birth_date TYPE bytea USING convert_to(birth_date::text, 'UTF8'),
    ALTER COLUMN phone TYPE bytea USING convert_to(phone, 'UTF8'),
    ALTER COLUMN email TYPE bytea USING convert_to(email, 'UTF8'),
    ALTER COLUMN guardian_name TYPE bytea USING convert_to(guardian_name, 'UTF8'),
    ALTER COLUMN guardian_phone TYPE bytea USING convert_to(guardian_phone, 'UTF8'),
    ALTER COLUMN guardian_email TYPE bytea USING convert_to(guardian_email, 'UTF8'),
    ALTER COLUMN guardian_iin TYPE bytea USING convert_to(guardian_iin, 'UTF8');
ALTER TABLE recipients
    ADD COLUMN iin_index bytea,
    -- Keyed digest of the sealed fields an import compares (name, birth date, guardian): a
    -- re-imported row is found unchanged or different without opening anything.
    ADD COLUMN sealed_digest bytea;
UPDATE recipients SET iin_index = iin;
ALTER TABLE recipients ALTER COLUMN iin_index SET NOT NULL;
ALTER TABLE recipients ADD PRIMARY KEY (iin_index);

ALTER TABLE enrollments ALTER COLUMN iin TYPE bytea USING convert_to(iin, 'UTF8');
ALTER TABLE enrollments ADD COLUMN iin_index bytea;
UPDATE enrollments SET iin_index = iin;
ALTER TABLE enrollments ALTER COLUMN iin_index SET NOT NULL;
ALTER TABLE enrollments ADD CONSTRAINT enrollments_recipient_fkey
    FOREIGN KEY (iin_index) REFERENCES recipients (iin_index) ON UPDATE CASCADE;
CREATE UNIQUE INDEX enrollments_one_per_form ON enrollments (iin_index, form)
    WHERE status <> 'ended';
CREATE INDEX enrollments_by_iin ON enrollments (iin_index);

-- Providers' contacts (often a person's own phone) and the alternatives offered with a
-- disruption (which carry providers' phones) are sealed too.
ALTER TABLE providers
    ALTER COLUMN email TYPE bytea USING convert_to(email, 'UTF8'),
    ALTER COLUMN phone TYPE bytea USING convert_to(phone, 'UTF8');
ALTER TABLE enrollments
    ALTER COLUMN alternatives TYPE bytea USING convert_to(alternatives::text, 'UTF8');
