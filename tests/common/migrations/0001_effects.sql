-- A test service's state: one row per applied effect, so duplicates would show.
CREATE TABLE effects (
    id         bigserial PRIMARY KEY,
    event_id   uuid NOT NULL,
    note       text NOT NULL
);
CREATE TABLE things (
    id   text PRIMARY KEY,
    note text NOT NULL
);
