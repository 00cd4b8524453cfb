-- The waiting list and placement offers (issue 18). A recipient waits for a place of one
-- subtype (form, category) in one region; the IIN is sealed like the enrollments' and joined
-- through its blind index. At most one waiting request per recipient and form.
CREATE TABLE waiting_requests (
    id              uuid        PRIMARY KEY,
    iin_index       bytea       NOT NULL REFERENCES recipients (iin_index) ON UPDATE CASCADE,
    iin             bytea       NOT NULL,
    region          text        NOT NULL,
    form            text        NOT NULL,
    category        text        NOT NULL,
    -- Empty: any provider of the subtype in the region; else only these providers' sites.
    preferred_bins  text[]      NOT NULL DEFAULT '{}',
    -- The priority's criteria, fixed when joining (DESIGN §3 "Waiting list").
    disrupted       boolean     NOT NULL DEFAULT false,
    child           boolean     NOT NULL,
    group_one       boolean     NOT NULL,
    asked_on        date        NOT NULL,
    reason          text,
    -- The enrollment whose loss put the recipient here (a disruption or a revocation).
    from_enrollment uuid,
    status          text        NOT NULL DEFAULT 'waiting'
                    CHECK (status IN ('waiting', 'placed', 'withdrawn')),
    closed_on       date,
    closed_reason   text,
    enrollment_id   uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX waiting_one_per_form ON waiting_requests (iin_index, form)
    WHERE status = 'waiting';
CREATE INDEX waiting_line ON waiting_requests (region, form, category) WHERE status = 'waiting';
CREATE INDEX waiting_by_from_enrollment ON waiting_requests (from_enrollment)
    WHERE from_enrollment IS NOT NULL;

-- An offer holds one place at a site until it is accepted, declined, expires or is withdrawn;
-- a site's free places are its places less the enrollments occupying one and the open offers.
CREATE TABLE offers (
    id             uuid        PRIMARY KEY,
    request_id     uuid        NOT NULL REFERENCES waiting_requests,
    license_number text        NOT NULL,
    site_id        text        NOT NULL,
    made_on        date        NOT NULL,
    expires_on     date        NOT NULL,
    status         text        NOT NULL DEFAULT 'open'
                   CHECK (status IN ('open', 'accepted', 'declined', 'expired', 'withdrawn')),
    closed_on      date,
    enrollment_id  uuid,
    created_at     timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (license_number, site_id) REFERENCES provider_sites
);
CREATE UNIQUE INDEX offers_one_open_per_request ON offers (request_id) WHERE status = 'open';
CREATE INDEX offers_open_at_site ON offers (license_number, site_id) WHERE status = 'open';
CREATE INDEX offers_due ON offers (expires_on) WHERE status = 'open';
CREATE INDEX offers_by_request ON offers (request_id);

-- A place held by an open offer is not free: providers' lists, the alternatives offered with a
-- disruption and the statistics count it out (`held`), so nobody is sent to a place promised
-- to the next in line.
CREATE OR REPLACE VIEW site_occupancy AS
SELECT s.license_number, s.site_id, s.address, s.kato, s.region, s.places, s.listed,
       coalesce(o.occupied, 0) AS occupied,
       CASE WHEN s.places IS NULL THEN NULL
            ELSE greatest(s.places - coalesce(o.occupied, 0) - coalesce(h.held, 0), 0)
       END AS free_places,
       coalesce(h.held, 0) AS held
FROM provider_sites s
LEFT JOIN (
    SELECT license_number, site_id, count(*)::integer AS occupied
    FROM enrollments
    WHERE status <> 'ended' AND form IN ('stationary', 'semi_stationary', 'temporary_stay')
    GROUP BY license_number, site_id
) o USING (license_number, site_id)
LEFT JOIN (
    SELECT license_number, site_id, count(*)::integer AS held
    FROM offers WHERE status = 'open'
    GROUP BY license_number, site_id
) h USING (license_number, site_id);
