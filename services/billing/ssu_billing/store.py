"""All SQL of the billing service."""

from datetime import date
from typing import Any

from ssu_common import Connection

# Transitions that change a license's status; an amendment keeps it.
STATUS_CHANGES = frozenset(
    {
        "licensing.license.issued.v1",
        "licensing.license.suspended.v1",
        "licensing.license.reinstated.v1",
        "licensing.license.revoked.v1",
    }
)


# read model: licenses and providers


async def upsert_license_if_newer(
    conn: Connection, *, license_number: str, bin: str, status: str, seq: int, subtypes: str
) -> bool:
    """Keep the snapshot when its seq is newer than the one held; False when it is not."""
    row = await conn.fetchrow(
        "INSERT INTO licenses (license_number, bin, status, seq, subtypes)"
        " VALUES ($1, $2, $3, $4, $5::jsonb)"
        " ON CONFLICT (license_number) DO UPDATE SET bin = EXCLUDED.bin,"
        "  status = EXCLUDED.status, seq = EXCLUDED.seq, subtypes = EXCLUDED.subtypes,"
        "  updated_at = now()"
        " WHERE licenses.seq < EXCLUDED.seq"
        " RETURNING seq",
        license_number,
        bin,
        status,
        seq,
        subtypes,
    )
    return row is not None


async def insert_license_transition(
    conn: Connection,
    *,
    license_number: str,
    seq: int,
    status: str,
    effective_date: date,
    event_type: str,
) -> None:
    await conn.execute(
        "INSERT INTO license_transitions (license_number, seq, status, effective_date, event_type)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        license_number,
        seq,
        status,
        effective_date,
        event_type,
    )


async def refresh_license_active_ranges(conn: Connection, license_number: str) -> None:
    """Derive the dates a license is active on from its status changes in seq order."""
    await conn.execute(
        "UPDATE licenses SET active = coalesce(("
        "  SELECT range_agg(r) FROM ("
        "    SELECT status, CASE WHEN nxt IS NULL THEN daterange(effective_date, NULL)"
        "      ELSE daterange(effective_date, greatest(effective_date, nxt)) END AS r"
        "    FROM (SELECT status, effective_date,"
        "      lead(effective_date) OVER (ORDER BY seq) AS nxt"
        "    FROM license_transitions WHERE license_number = $1) s) t"
        "  WHERE status = 'active' AND NOT isempty(r)), '{}'::datemultirange)"
        " WHERE license_number = $1",
        license_number,
    )


async def upsert_provider(
    conn: Connection,
    *,
    bin: str,
    name: str,
    legal_form: str,
    region: str,
    contact: str,
    license_number: str,
    status: str,
    seq: int,
) -> None:
    await conn.execute(
        "INSERT INTO providers"
        " (bin, name, legal_form, region, contact, license_number, status, seq)"
        " VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8)"
        " ON CONFLICT (bin) DO UPDATE SET name = EXCLUDED.name,"
        "  legal_form = EXCLUDED.legal_form, region = EXCLUDED.region,"
        "  contact = EXCLUDED.contact, license_number = EXCLUDED.license_number,"
        "  status = EXCLUDED.status, seq = EXCLUDED.seq, updated_at = now()",
        bin,
        name,
        legal_form,
        region,
        contact,
        license_number,
        status,
        seq,
    )


async def get_provider(conn: Connection, bin: str) -> Any:
    return await conn.fetchrow("SELECT * FROM providers WHERE bin = $1", bin)


async def license_active_ranges(conn: Connection, license_number: str) -> str | None:
    value = await conn.fetchval(
        "SELECT active::text FROM licenses WHERE license_number = $1", license_number
    )
    return None if value is None else str(value)


# read model: enrollments


async def insert_enrollment(
    conn: Connection,
    *,
    enrollment_id: str,
    iin: str,
    provider_bin: str,
    license_number: str,
    site_id: str,
    region: str,
    form: str,
    category: str,
    start_date: date,
) -> None:
    await conn.execute(
        "INSERT INTO enrollments (enrollment_id, iin, provider_bin, license_number, site_id,"
        " region, form, category, start_date, status)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'active')"
        " ON CONFLICT (enrollment_id) DO NOTHING",
        enrollment_id,
        iin,
        provider_bin,
        license_number,
        site_id,
        region,
        form,
        category,
        start_date,
    )


async def end_enrollment(conn: Connection, *, enrollment_id: str, end_date: date) -> bool:
    result = await conn.execute(
        "UPDATE enrollments SET end_date = $2, status = 'ended', updated_at = clock_timestamp()"
        " WHERE enrollment_id = $1",
        enrollment_id,
        end_date,
    )
    return result != "UPDATE 0"


async def set_enrollment_status(conn: Connection, *, enrollment_id: str, status: str) -> bool:
    """Disrupted/active; an ended enrollment stays ended."""
    result = await conn.execute(
        "UPDATE enrollments SET status = $2, updated_at = clock_timestamp()"
        " WHERE enrollment_id = $1 AND status <> 'ended'",
        enrollment_id,
        status,
    )
    if result != "UPDATE 0":
        return True
    return bool(
        await conn.fetchval("SELECT 1 FROM enrollments WHERE enrollment_id = $1", enrollment_id)
    )


async def get_enrollment(conn: Connection, enrollment_id: str) -> Any:
    return await conn.fetchrow("SELECT * FROM enrollments WHERE enrollment_id = $1", enrollment_id)
