-- Personal data sealed at rest (ssu_common.crypto): contacts, delivery destinations and texts,
-- webhook secrets. Values written before this migration stay readable as clear bytes until
-- `ssu keys rotate notification` seals them; their blind index starts as the clear IIN's bytes
-- and is recomputed by the same rotation.
ALTER TABLE provider_contacts
    ALTER COLUMN email TYPE bytea USING convert_to(email, 'UTF8'),
    ALTER COLUMN phone TYPE bytea USING convert_to(phone, 'UTF8');

ALTER TABLE recipient_contacts DROP CONSTRAINT recipient_contacts_pkey;
ALTER TABLE recipient_contacts
    ALTER COLUMN iin TYPE bytea USING convert_to(iin, 'UTF8'),
    ALTER COLUMN full_name TYPE bytea USING convert_to(full_name, 'UTF8'),
    ALTER COLUMN birth_date TYPE bytea USING convert_to(birth_date::text, 'UTF8'),
    ALTER COLUMN email TYPE bytea USING convert_to(email, 'UTF8'),
    ALTER COLUMN phone TYPE bytea USING convert_to(phone, 'UTF8'),
    ALTER COLUMN guardian_name TYPE bytea USING convert_to(guardian_name, 'UTF8'),
    ALTER COLUMN guardian_email TYPE bytea USING convert_to(guardian_email, 'UTF8'),
    ALTER COLUMN guardian_phone TYPE bytea USING convert_to(guardian_phone, 'UTF8');
ALTER TABLE recipient_contacts ADD COLUMN iin_index bytea;
UPDATE recipient_contacts SET iin_index = iin;
ALTER TABLE recipient_contacts ALTER COLUMN iin_index SET NOT NULL;
ALTER TABLE recipient_contacts ADD PRIMARY KEY (iin_index);

-- The addressee names a person by IIN: it is sealed, and its keyed digest keeps an event from
-- being sent twice to one addressee.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_event_id_addressee_channel_key;
ALTER TABLE deliveries
    ALTER COLUMN addressee TYPE bytea USING convert_to(addressee, 'UTF8'),
    ALTER COLUMN destination TYPE bytea USING convert_to(destination, 'UTF8'),
    ALTER COLUMN subject TYPE bytea USING convert_to(subject, 'UTF8'),
    ALTER COLUMN body TYPE bytea USING convert_to(body, 'UTF8');
ALTER TABLE deliveries ADD COLUMN addressee_index bytea;
UPDATE deliveries SET addressee_index = addressee;
ALTER TABLE deliveries ALTER COLUMN addressee_index SET NOT NULL;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_once UNIQUE (event_id, addressee_index, channel);

-- Webhook secrets: sealed; during a rotation the previous one signs too until it expires.
-- A subscription made with a regional key receives its region's events only.
ALTER TABLE subscriptions ALTER COLUMN secret TYPE bytea USING convert_to(secret, 'UTF8');
ALTER TABLE subscriptions
    ADD COLUMN previous_secret bytea,
    ADD COLUMN previous_expires_at timestamptz,
    ADD COLUMN region text;
