-- Providers: the read model of licenses, built from licensing.license.*.v1 snapshots.
CREATE TABLE providers (
    license_number text        PRIMARY KEY,
    bin            text        NOT NULL,
    name           text        NOT NULL,
    legal_form     text        NOT NULL,
    region         text        NOT NULL,
    email          text,
    phone          text,
    language       text        NOT NULL,
    status         text        NOT NULL,
    seq            integer     NOT NULL,
    effective_date date        NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX providers_bin ON providers (bin);
CREATE INDEX providers_region ON providers (region);

CREATE TABLE provider_subtypes (
    license_number text NOT NULL REFERENCES providers ON DELETE CASCADE,
    form           text NOT NULL,
    category       text NOT NULL,
    PRIMARY KEY (license_number, form, category)
);
CREATE INDEX provider_subtypes_by_subtype ON provider_subtypes (form, category);

-- A site no longer in the latest snapshot stays (enrollments refer to it) but is not listed.
CREATE TABLE provider_sites (
    license_number text    NOT NULL REFERENCES providers ON DELETE CASCADE,
    site_id        text    NOT NULL,
    address        text    NOT NULL,
    kato           text    NOT NULL,
    region         text    NOT NULL,
    places         integer,
    listed         boolean NOT NULL DEFAULT true,
    PRIMARY KEY (license_number, site_id)
);
CREATE INDEX provider_sites_region ON provider_sites (region);

CREATE TABLE recipients (
    iin              text        PRIMARY KEY,
    full_name        text        NOT NULL,
    birth_date       date        NOT NULL,
    category         text        NOT NULL,
    region           text        NOT NULL,
    disability_group smallint,
    language         text        NOT NULL,
    phone            text,
    email            text,
    guardian_name    text,
    guardian_phone   text,
    guardian_email   text,
    guardian_iin     text,
    registered_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE enrollments (
    id                uuid        PRIMARY KEY,
    iin               text        NOT NULL REFERENCES recipients,
    license_number    text        NOT NULL,
    site_id           text        NOT NULL,
    provider_bin      text        NOT NULL,
    region            text        NOT NULL,
    form              text        NOT NULL,
    category          text        NOT NULL,
    start_date        date        NOT NULL,
    end_date          date,
    status            text        NOT NULL,
    end_reason        text,
    disrupted_on      date,
    disruption_reason text,
    alternatives      jsonb,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (license_number, site_id) REFERENCES provider_sites
);
-- One enrollment per form that is not ended: a disrupted one is closed by a transfer first.
CREATE UNIQUE INDEX enrollments_one_per_form ON enrollments (iin, form) WHERE status <> 'ended';
CREATE INDEX enrollments_open_at_site ON enrollments (license_number, site_id)
    WHERE status <> 'ended';
CREATE INDEX enrollments_by_status ON enrollments (status, region);
CREATE INDEX enrollments_by_iin ON enrollments (iin);

-- Places taken at a site: active and disrupted enrollments of the forms that occupy a place
-- (home care does not); a disrupted one keeps its place until the recipient is placed
-- elsewhere or the license is revoked.
CREATE VIEW site_occupancy AS
SELECT s.license_number, s.site_id, s.address, s.kato, s.region, s.places, s.listed,
       coalesce(o.occupied, 0) AS occupied,
       CASE WHEN s.places IS NULL THEN NULL
            ELSE greatest(s.places - coalesce(o.occupied, 0), 0) END AS free_places
FROM provider_sites s
LEFT JOIN (
    SELECT license_number, site_id, count(*)::integer AS occupied
    FROM enrollments
    WHERE status <> 'ended' AND form IN ('stationary', 'semi_stationary', 'temporary_stay')
    GROUP BY license_number, site_id
) o USING (license_number, site_id);
