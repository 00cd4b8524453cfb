-- The W3C traceparent of the span that wrote the event: the relay's publish continues that
-- trace (issue 15). NULL when the service exports no traces.
ALTER TABLE outbox ADD COLUMN traceparent text;
