-- The traceparent of the event's processing span: the worker's send continues that trace, so
-- a notice is followed from the request that caused it to the SMTP, SMS or webhook call.
ALTER TABLE deliveries ADD COLUMN traceparent text;
