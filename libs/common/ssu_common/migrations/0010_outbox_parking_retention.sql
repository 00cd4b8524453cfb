-- Unroutable events are parked (kept unsent with the reason) instead of marked sent.
ALTER TABLE outbox ADD COLUMN parked_at timestamptz;
DROP INDEX outbox_unsent;
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL AND parked_at IS NULL;
-- Retention: published rows and old inbox ids are deleted oldest first.
CREATE INDEX outbox_sent_at ON outbox (sent_at) WHERE sent_at IS NOT NULL;
CREATE INDEX inbox_received_at ON inbox (received_at);
