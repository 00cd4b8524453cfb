"""All SQL of the portal: the read model built from events, and the operators' sessions."""

import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import asyncpg
from ssu_common import Connection

# Writes from events


async def upsert_license(
    conn: Connection,
    *,
    number: str,
    bin: str,
    provider_name: str,
    legal_form: str,
    region: str,
    status: str,
    seq: int,
    effective_date: date,
    status_reason: str | None,
    suspended_until: date | None,
    subtypes: list[dict[str, str]],
    step_free_access: bool | None,
    shelter: bool,
) -> bool:
    """Keep the newest snapshot of a license; False when an older or equal seq arrives late."""
    applied = await conn.fetchval(
        """
        INSERT INTO licenses (number, bin, provider_name, legal_form, region, status, seq,
                              effective_date, issued_on, status_reason, suspended_until,
                              subtypes, step_free_access, shelter)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10, $11::jsonb, $12, $13)
        ON CONFLICT (number) DO UPDATE SET
            bin = EXCLUDED.bin, provider_name = EXCLUDED.provider_name,
            legal_form = EXCLUDED.legal_form, region = EXCLUDED.region,
            status = EXCLUDED.status, seq = EXCLUDED.seq,
            effective_date = EXCLUDED.effective_date,
            issued_on = least(licenses.issued_on, EXCLUDED.issued_on),
            status_reason = EXCLUDED.status_reason, suspended_until = EXCLUDED.suspended_until,
            subtypes = EXCLUDED.subtypes,
            step_free_access = coalesce(EXCLUDED.step_free_access, licenses.step_free_access),
            shelter = EXCLUDED.shelter, updated_at = now()
        WHERE licenses.seq < EXCLUDED.seq
        RETURNING true
        """,
        number,
        bin,
        provider_name,
        legal_form,
        region,
        status,
        seq,
        effective_date,
        status_reason,
        suspended_until,
        json.dumps(subtypes),
        step_free_access,
        shelter,
    )
    return bool(applied)


async def record_license_history(
    conn: Connection,
    *,
    number: str,
    seq: int,
    event_type: str,
    status: str,
    effective_date: date,
    reason: str | None,
) -> None:
    await conn.execute(
        """
        INSERT INTO license_history (license_number, seq, event_type, status, effective_date,
                                     reason)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT DO NOTHING
        """,
        number,
        seq,
        event_type,
        status,
        effective_date,
        reason,
    )


async def replace_sites(
    conn: Connection, *, number: str, region_of_site: list[str], sites: list[dict[str, object]]
) -> None:
    """The license's sites as its newest snapshot lists them; dropped sites stay, unlisted."""
    await conn.execute("UPDATE sites SET listed = false WHERE license_number = $1", number)
    await conn.executemany(
        """
        INSERT INTO sites (license_number, site_id, address, kato, region, places, listed)
        VALUES ($1, $2, $3, $4, $5, $6, true)
        ON CONFLICT (license_number, site_id) DO UPDATE SET
            address = EXCLUDED.address, kato = EXCLUDED.kato, region = EXCLUDED.region,
            places = EXCLUDED.places, listed = true
        """,
        [
            (number, s["site_id"], s["address"], s["kato"], region, s["places"])
            for s, region in zip(sites, region_of_site, strict=True)
        ],
    )


async def upsert_recipient(
    conn: Connection, *, key: bytes, region: str, registered_on: date
) -> None:
    await conn.execute(
        """
        INSERT INTO recipients (recipient_key, region, registered_on) VALUES ($1, $2, $3)
        ON CONFLICT (recipient_key) DO UPDATE SET region = EXCLUDED.region
        """,
        key,
        region,
        registered_on,
    )


async def start_enrollment(
    conn: Connection,
    *,
    enrollment_id: str,
    key: bytes,
    license_number: str,
    site_id: str,
    region: str,
    form: str,
    start_date: date,
) -> None:
    await conn.execute(
        """
        INSERT INTO enrollments (enrollment_id, recipient_key, license_number, site_id, region,
                                 form, start_date, status)
        VALUES ($1, $2, $3, $4, $5, $6, $7, 'active')
        ON CONFLICT (enrollment_id) DO UPDATE SET
            license_number = EXCLUDED.license_number, site_id = EXCLUDED.site_id,
            start_date = EXCLUDED.start_date
        """,
        enrollment_id,
        key,
        license_number,
        site_id,
        region,
        form,
        start_date,
    )


async def set_enrollment_status(
    conn: Connection,
    *,
    enrollment_id: str,
    key: bytes,
    region: str,
    form: str,
    status: str,
    end_date: date | None = None,
) -> None:
    """Move an enrollment on; one first seen here (its start not arrived yet) is kept too.

    An ended enrollment stays ended whatever arrives after it.
    """
    await conn.execute(
        """
        INSERT INTO enrollments (enrollment_id, recipient_key, region, form, status, end_date)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (enrollment_id) DO UPDATE SET
            status = CASE WHEN enrollments.status = 'ended' THEN 'ended' ELSE EXCLUDED.status END,
            end_date = coalesce(EXCLUDED.end_date, enrollments.end_date)
        """,
        enrollment_id,
        key,
        region,
        form,
        status,
        end_date,
    )


async def upsert_application(
    conn: Connection,
    *,
    application_id: str,
    bin: str,
    provider_name: str,
    region: str,
    places: int | None = None,
    requirement_set: str | None = None,
    submitted_at: datetime | None = None,
    rejected_at: datetime | None = None,
) -> None:
    """Submission and rejection may arrive in either order: each fills its own columns."""
    await conn.execute(
        """
        INSERT INTO applications (application_id, bin, provider_name, region, places,
                                  requirement_set, submitted_at, rejected_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        ON CONFLICT (application_id) DO UPDATE SET
            places = coalesce(EXCLUDED.places, applications.places),
            requirement_set = coalesce(EXCLUDED.requirement_set, applications.requirement_set),
            submitted_at = coalesce(EXCLUDED.submitted_at, applications.submitted_at),
            rejected_at = coalesce(EXCLUDED.rejected_at, applications.rejected_at)
        """,
        application_id,
        bin,
        provider_name,
        region,
        places,
        requirement_set,
        submitted_at,
        rejected_at,
    )


async def insert_refusals(
    conn: Connection,
    *,
    application_id: str,
    findings: list[tuple[str, str, bool, str | None, str | None]],
) -> None:
    await conn.executemany(
        """
        INSERT INTO refusals (application_id, requirement_id, kind, core, title_kk, title_ru)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT DO NOTHING
        """,
        [(application_id, *f) for f in findings],
    )


async def upsert_invoice(
    conn: Connection,
    *,
    invoice_id: str,
    provider_bin: str,
    region: str,
    period: str,
    total: Decimal,
) -> None:
    await conn.execute(
        """
        INSERT INTO invoices (invoice_id, provider_bin, region, period, total)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (invoice_id) DO NOTHING
        """,
        invoice_id,
        provider_bin,
        region,
        period,
        total,
    )


# Public reads


@dataclass(frozen=True)
class LicenseRow:
    number: str
    bin: str
    provider_name: str
    legal_form: str
    region: str
    status: str
    effective_date: date
    issued_on: date
    status_reason: str | None
    suspended_until: date | None
    subtypes: list[dict[str, str]]
    step_free_access: bool | None
    shelter: bool


_LICENSE_COLUMNS = (
    "number, bin, provider_name, legal_form, region, status, effective_date, issued_on,"
    " status_reason, suspended_until, subtypes, step_free_access, shelter"
)


def _license(r: asyncpg.Record) -> LicenseRow:
    return LicenseRow(
        number=r["number"],
        bin=r["bin"],
        provider_name=r["provider_name"],
        legal_form=r["legal_form"],
        region=r["region"],
        status=r["status"],
        effective_date=r["effective_date"],
        issued_on=r["issued_on"],
        status_reason=r["status_reason"],
        suspended_until=r["suspended_until"],
        subtypes=json.loads(r["subtypes"]),
        step_free_access=r["step_free_access"],
        shelter=r["shelter"],
    )


async def get_license(conn: Connection, number: str) -> LicenseRow | None:
    row = await conn.fetchrow(
        f"SELECT {_LICENSE_COLUMNS} FROM licenses WHERE number = $1",  # noqa: S608 - fixed columns
        number,
    )
    return _license(row) if row is not None else None


async def find_licenses(
    conn: Connection, *, number: str | None, bin: str | None, name: str | None, limit: int
) -> list[LicenseRow]:
    """Licenses by exact number, exact BIN or a part of the provider's name."""
    rows = await conn.fetch(
        f"""
        SELECT {_LICENSE_COLUMNS} FROM licenses
        WHERE ($1::text IS NULL OR upper(number) = upper($1))
          AND ($2::text IS NULL OR bin = $2)
          AND ($3::text IS NULL OR strpos(lower(provider_name), lower($3)) > 0)
        ORDER BY provider_name, number
        LIMIT $4
        """,  # noqa: S608 - fixed columns
        number,
        bin,
        name,
        limit,
    )
    return [_license(r) for r in rows]


@dataclass(frozen=True)
class HistoryRow:
    seq: int
    event_type: str
    status: str
    effective_date: date
    reason: str | None


async def license_history(conn: Connection, number: str) -> list[HistoryRow]:
    rows = await conn.fetch(
        "SELECT seq, event_type, status, effective_date, reason FROM license_history"
        " WHERE license_number = $1 ORDER BY seq",
        number,
    )
    return [HistoryRow(**dict(r)) for r in rows]


@dataclass(frozen=True)
class SiteRow:
    license_number: str
    site_id: str
    address: str
    kato: str
    region: str
    places: int | None
    occupied: int
    free_places: int | None


# Places are taken by enrollments that are not ended, in the forms that have places (as the
# registry counts them): a disrupted child still holds the place it will come back to.
_OCCUPANCY = """
    SELECT s.license_number, s.site_id, s.address, s.kato, s.region, s.places,
           coalesce(o.occupied, 0)::integer AS occupied,
           CASE WHEN s.places IS NULL THEN NULL
                ELSE greatest(s.places - coalesce(o.occupied, 0), 0)::integer END AS free_places
    FROM sites s
    LEFT JOIN (
        SELECT license_number, site_id, count(*) AS occupied FROM enrollments
        WHERE status <> 'ended' AND form IN ('stationary', 'semi_stationary', 'temporary_stay')
        GROUP BY license_number, site_id
    ) o USING (license_number, site_id)
    WHERE s.listed
"""


async def sites_of(conn: Connection, number: str) -> list[SiteRow]:
    rows = await conn.fetch(
        f"{_OCCUPANCY} AND s.license_number = $1 ORDER BY s.site_id",
        number,
    )
    return [SiteRow(**dict(r)) for r in rows]


@dataclass(frozen=True)
class CatalogueRow:
    license_number: str
    bin: str
    provider_name: str
    legal_form: str
    status: str
    subtypes: list[dict[str, str]]
    step_free_access: bool | None
    shelter: bool
    site_id: str
    address: str
    kato: str
    region: str
    places: int | None
    free_places: int | None


_SORTS = {
    "name": "l.provider_name, o.site_id",
    "free": "o.free_places DESC NULLS LAST, l.provider_name, o.site_id",
    "region": "o.region, l.provider_name, o.site_id",
}


async def catalogue(
    conn: Connection,
    *,
    region: str | None,
    form: str | None,
    category: str | None,
    free_only: bool,
    step_free_only: bool,
    sort: str,
    limit: int,
    offset: int,
) -> tuple[list[CatalogueRow], int]:
    """Sites of active licenses with their free places now, filtered and sorted; and the count."""
    wanted = json.dumps(
        [{k: v for k, v in (("form", form), ("category", category)) if v is not None}]
    )
    where = f"""
        FROM ({_OCCUPANCY}) o JOIN licenses l ON l.number = o.license_number
        WHERE l.status = 'active'
          AND ($1::text IS NULL OR o.region = $1)
          AND l.subtypes @> $2::jsonb
          AND (NOT $3 OR coalesce(o.free_places, 0) > 0)
          AND (NOT $4 OR l.step_free_access IS TRUE)
    """
    args = (region, wanted, free_only, step_free_only)
    total = await conn.fetchval(f"SELECT count(*) {where}", *args)
    rows = await conn.fetch(
        f"""
        SELECT l.number AS license_number, l.bin, l.provider_name, l.legal_form, l.status,
               l.subtypes, l.step_free_access, l.shelter, o.site_id, o.address, o.kato,
               o.region, o.places, o.free_places
        {where}
        ORDER BY {_SORTS[sort]}
        LIMIT $5 OFFSET $6
        """,
        *args,
        limit,
        offset,
    )
    items = []
    for r in rows:
        values = dict(r)
        values["subtypes"] = json.loads(values["subtypes"])
        items.append(CatalogueRow(**values))
    return items, int(total)


# Monitoring reads


@dataclass(frozen=True)
class RegionStatusCount:
    region: str
    status: str
    licenses: int


async def licenses_by_region_and_status(conn: Connection) -> list[RegionStatusCount]:
    rows = await conn.fetch(
        "SELECT region, status, count(*)::integer AS licenses FROM licenses"
        " GROUP BY region, status ORDER BY region, status"
    )
    return [RegionStatusCount(**dict(r)) for r in rows]


@dataclass(frozen=True)
class RefusalCount:
    requirement_id: str
    kind: str
    core: bool
    title_kk: str | None
    title_ru: str | None
    applications: int
    small_centres: int


async def refusals_by_requirement(
    conn: Connection, *, small_places: int, region: str | None
) -> list[RefusalCount]:
    """Rejected applications per unmet requirement, most refused first, and how many of
    those applicants are small centres (known places at most `small_places`)."""
    rows = await conn.fetch(
        """
        SELECT f.requirement_id, min(f.kind) AS kind, bool_or(f.core) AS core,
               max(f.title_kk) AS title_kk, max(f.title_ru) AS title_ru,
               count(DISTINCT f.application_id)::integer AS applications,
               (count(DISTINCT f.application_id) FILTER (WHERE a.places <= $1))::integer
                   AS small_centres
        FROM refusals f JOIN applications a USING (application_id)
        WHERE a.rejected_at IS NOT NULL AND ($2::text IS NULL OR a.region = $2)
        GROUP BY f.requirement_id
        ORDER BY applications DESC, f.requirement_id
        """,
        small_places,
        region,
    )
    return [RefusalCount(**dict(r)) for r in rows]


async def rejected_applications(
    conn: Connection, *, small_places: int, region: str | None
) -> tuple[int, int]:
    """Rejected applications, and how many of them are small centres."""
    row = await conn.fetchrow(
        """
        SELECT count(*)::integer AS rejected,
               (count(*) FILTER (WHERE places <= $1))::integer AS small
        FROM applications
        WHERE rejected_at IS NOT NULL AND ($2::text IS NULL OR region = $2)
        """,
        small_places,
        region,
    )
    assert row is not None
    return int(row["rejected"]), int(row["small"])


@dataclass(frozen=True)
class MonthFigures:
    region: str
    period: str
    recipients: int
    invoices: int
    invoiced: Decimal


async def recipients_and_payments(
    conn: Connection, *, first: date, last: date, region: str | None
) -> list[MonthFigures]:
    """Per region and month: recipients served (an enrollment covering a date of the month)
    and what billing invoiced for that month."""
    rows = await conn.fetch(
        """
        WITH months AS (
            SELECT m::date AS first_day, (m + interval '1 month - 1 day')::date AS last_day,
                   to_char(m, 'YYYY-MM') AS period
            FROM generate_series($1::date, $2::date, interval '1 month') m
        ),
        served AS (
            SELECT e.region, m.period, count(DISTINCT e.recipient_key)::integer AS recipients
            FROM enrollments e JOIN months m
              ON e.start_date <= m.last_day AND coalesce(e.end_date, m.last_day) >= m.first_day
            WHERE e.start_date IS NOT NULL AND ($3::text IS NULL OR e.region = $3)
            GROUP BY e.region, m.period
        ),
        paid AS (
            SELECT i.region, i.period, count(*)::integer AS invoices, sum(i.total) AS invoiced
            FROM invoices i JOIN months m USING (period)
            WHERE ($3::text IS NULL OR i.region = $3)
            GROUP BY i.region, i.period
        )
        SELECT region, period, coalesce(s.recipients, 0) AS recipients,
               coalesce(p.invoices, 0) AS invoices, coalesce(p.invoiced, 0) AS invoiced
        FROM served s FULL JOIN paid p USING (region, period)
        ORDER BY region, period
        """,
        first,
        last,
        region,
    )
    return [MonthFigures(**dict(r)) for r in rows]


async def registered_recipients_by_region(conn: Connection) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT region, count(*)::integer AS n FROM recipients GROUP BY region ORDER BY region"
    )
    return {r["region"]: r["n"] for r in rows}


# Sessions


@dataclass(frozen=True)
class SessionRow:
    client: str
    region: str | None
    scopes: list[str]
    sealed_key: bytes
    csrf_token: str


async def insert_session(
    conn: Connection,
    *,
    token_sha256: bytes,
    client: str,
    region: str | None,
    scopes: list[str],
    sealed_key: bytes,
    csrf_token: str,
    expires_at: datetime,
) -> None:
    await conn.execute(
        """
        INSERT INTO sessions (token_sha256, client, region, scopes, sealed_key, csrf_token,
                              expires_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        """,
        token_sha256,
        client,
        region,
        scopes,
        sealed_key,
        csrf_token,
        expires_at,
    )


async def get_session(conn: Connection, token_sha256: bytes) -> SessionRow | None:
    row = await conn.fetchrow(
        "SELECT client, region, scopes, sealed_key, csrf_token FROM sessions"
        " WHERE token_sha256 = $1 AND expires_at > now()",
        token_sha256,
    )
    return SessionRow(**dict(row)) if row is not None else None


async def delete_session(conn: Connection, token_sha256: bytes) -> None:
    await conn.execute("DELETE FROM sessions WHERE token_sha256 = $1", token_sha256)


async def delete_expired_sessions(conn: Connection) -> int:
    status = await conn.execute("DELETE FROM sessions WHERE expires_at <= now()")
    return int(status.split()[-1])
