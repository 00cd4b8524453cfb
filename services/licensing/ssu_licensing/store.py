"""All SQL of the licensing service."""

import json
from datetime import date, datetime
from typing import Any

import asyncpg
from ssu_common import Connection, FieldCipher, SealedTable

# A provider's contact and the named workers (their full names) are sealed
# (ssu_common.crypto): one token of each one's JSON.
SEALED = (
    SealedTable("applications", ("id", "uuid"), ("contact", "workers")),
    SealedTable("licenses", ("number", "text"), ("contact", "workers")),
)
_cipher: list[FieldCipher] = []


def use_cipher(cipher: FieldCipher) -> None:
    _cipher[:] = [cipher]


def _c() -> FieldCipher:
    if not _cipher:
        raise RuntimeError("licensing store used before use_cipher()")
    return _cipher[0]


def _sealed_contact(contact: Any) -> bytes | None:
    return _c().seal(_json(contact), column="contact")


def _sealed_workers(workers: list[dict[str, Any]] | None) -> bytes | None:
    # No workers named: NULL, as in the rows written before workers were.
    return _c().seal(_json(workers), column="workers") if workers else None


_JSON_COLUMNS = (
    "requirements",
    "contact",
    "subtypes",
    "sites",
    "staffing",
    "equipment",
    "premises",
    "findings",
    "observations",
    "photos",
    "before",
    "after",
    "detail",
)


def _dict(record: asyncpg.Record | None) -> dict[str, Any] | None:
    if record is None:
        return None
    row = dict(record)
    if isinstance(row.get("contact"), bytes):
        row["contact"] = _c().open(row["contact"], column="contact")
    if "workers" in row:
        sealed = row["workers"]
        row["workers"] = json.loads(_c().open(sealed, column="workers") or "[]") if sealed else []
    for column in _JSON_COLUMNS:
        if isinstance(row.get(column), str):
            row[column] = json.loads(row[column])
    return row


def _dicts(records: list[asyncpg.Record]) -> list[dict[str, Any]]:
    return [r for r in (_dict(rec) for rec in records) if r is not None]


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


# requirement sets


async def insert_requirement_set(
    conn: Connection,
    *,
    version: str,
    title: str,
    non_core_blocking: bool,
    requirements: list[dict[str, Any]],
    effective_from: date | None,
    created_by: str,
) -> bool:
    """Store a new set; False when the version exists already."""
    inserted = await conn.fetchval(
        "INSERT INTO requirement_sets (version, title, non_core_blocking, requirements,"
        " effective_from, activated_at, created_by)"
        " VALUES ($1, $2, $3, $4::jsonb, $5, CASE WHEN $5::date IS NULL THEN NULL ELSE now() END,"
        " $6) ON CONFLICT (version) DO NOTHING RETURNING true",
        version,
        title,
        non_core_blocking,
        _json(requirements),
        effective_from,
        created_by,
    )
    return bool(inserted)


async def get_requirement_set(conn: Connection, version: str) -> dict[str, Any] | None:
    return _dict(await conn.fetchrow("SELECT * FROM requirement_sets WHERE version = $1", version))


async def requirement_set_in_force(conn: Connection, on: date) -> dict[str, Any] | None:
    return _dict(
        await conn.fetchrow(
            "SELECT * FROM requirement_sets WHERE effective_from <= $1"
            " ORDER BY effective_from DESC, activated_at DESC LIMIT 1",
            on,
        )
    )


async def list_requirement_sets(conn: Connection) -> list[dict[str, Any]]:
    return _dicts(
        await conn.fetch(
            "SELECT * FROM requirement_sets ORDER BY effective_from NULLS LAST, version"
        )
    )


async def activate_requirement_set(
    conn: Connection, *, version: str, effective_from: date
) -> dict[str, Any] | None:
    return _dict(
        await conn.fetchrow(
            "UPDATE requirement_sets SET effective_from = $2, activated_at = now()"
            " WHERE version = $1 RETURNING *",
            version,
            effective_from,
        )
    )


# applications


async def insert_application(conn: Connection, app: dict[str, Any]) -> dict[str, Any]:
    row = await conn.fetchrow(
        "INSERT INTO applications (id, bin, provider_name, legal_form, region, contact, subtypes,"
        " sites, staffing, equipment, premises, requirement_set, findings, submitted_on, workers)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, $9::jsonb, $10::jsonb,"
        " $11::jsonb, $12, $13::jsonb, $14, $15) RETURNING *",
        app["id"],
        app["bin"],
        app["provider_name"],
        app["legal_form"],
        app["region"],
        _sealed_contact(app["contact"]),
        _json(app["subtypes"]),
        _json(app["sites"]),
        _json(app["staffing"]),
        _json(app["equipment"]),
        _json(app["premises"]),
        app["requirement_set"],
        _json(app["findings"]),
        app["submitted_on"],
        _sealed_workers(app.get("workers")),
    )
    result = _dict(row)
    assert result is not None
    return result


async def get_application(
    conn: Connection, application_id: str, *, for_update: bool = False
) -> dict[str, Any] | None:
    query = "SELECT * FROM applications WHERE id = $1"
    if for_update:
        query += " FOR UPDATE"
    return _dict(await conn.fetchrow(query, application_id))


async def list_applications(
    conn: Connection,
    *,
    region: str | None,
    status: str | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[dict[str, Any]]:
    return _dicts(
        await conn.fetch(
            "SELECT * FROM applications"
            " WHERE ($1::text IS NULL OR region = $1) AND ($2::text IS NULL OR status = $2)"
            " AND ($3::timestamptz IS NULL OR (submitted_at, id) > ($3, $4::uuid))"
            " ORDER BY submitted_at, id LIMIT $5",
            region,
            status,
            after[0] if after else None,
            after[1] if after else None,
            limit,
        )
    )


async def pending_applications(conn: Connection, *, region: str | None) -> list[dict[str, Any]]:
    return _dicts(
        await conn.fetch(
            "SELECT * FROM applications WHERE status = 'submitted'"
            " AND ($1::text IS NULL OR region = $1) ORDER BY submitted_at, id",
            region,
        )
    )


async def update_application_findings(
    conn: Connection,
    *,
    application_id: str,
    requirement_set: str,
    findings: list[dict[str, Any]],
    source: str,
) -> dict[str, Any]:
    row = await conn.fetchrow(
        "UPDATE applications SET requirement_set = $2, findings = $3::jsonb, findings_source = $4"
        " WHERE id = $1 RETURNING *",
        application_id,
        requirement_set,
        _json(findings),
        source,
    )
    result = _dict(row)
    assert result is not None
    return result


async def decide_application(
    conn: Connection,
    *,
    application_id: str,
    status: str,
    reason: str | None,
    decided_by: str,
    license_number: str | None,
) -> dict[str, Any]:
    row = await conn.fetchrow(
        "UPDATE applications SET status = $2, decision_reason = $3, decided_by = $4,"
        " decided_at = now(), license_number = $5 WHERE id = $1 RETURNING *",
        application_id,
        status,
        reason,
        decided_by,
        license_number,
    )
    result = _dict(row)
    assert result is not None
    return result


async def insert_inspection(conn: Connection, inspection: dict[str, Any]) -> dict[str, Any]:
    row = await conn.fetchrow(
        "INSERT INTO inspections (id, application_id, inspected_on, inspector, observations,"
        " photos, notes) VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7) RETURNING *",
        inspection["id"],
        inspection["application_id"],
        inspection["inspected_on"],
        inspection["inspector"],
        _json(inspection["observations"]),
        _json(inspection["photos"]),
        inspection["notes"],
    )
    result = _dict(row)
    assert result is not None
    return result


async def latest_inspection(conn: Connection, application_id: str) -> dict[str, Any] | None:
    return _dict(
        await conn.fetchrow(
            "SELECT * FROM inspections WHERE application_id = $1"
            " ORDER BY recorded_at DESC, id LIMIT 1",
            application_id,
        )
    )


async def latest_inspections(conn: Connection, application_ids: list[str]) -> dict[str, Any]:
    """The latest inspection of each of many applications, by application id."""
    rows = _dicts(
        await conn.fetch(
            "SELECT DISTINCT ON (application_id) * FROM inspections"
            " WHERE application_id = ANY($1::uuid[])"
            " ORDER BY application_id, recorded_at DESC, id",
            application_ids,
        )
    )
    return {str(r["application_id"]): r for r in rows}


async def inspections_of(conn: Connection, application_id: str) -> list[dict[str, Any]]:
    return _dicts(
        await conn.fetch(
            "SELECT * FROM inspections WHERE application_id = $1 ORDER BY recorded_at, id",
            application_id,
        )
    )


# licenses


async def next_license_sequence(conn: Connection, *, region_prefix: str, year: int) -> int:
    value = await conn.fetchval(
        "INSERT INTO license_sequences (region_prefix, year, last_value) VALUES ($1, $2, 1)"
        " ON CONFLICT (region_prefix, year)"
        " DO UPDATE SET last_value = license_sequences.last_value + 1 RETURNING last_value",
        region_prefix,
        year,
    )
    return int(value)


async def insert_license(conn: Connection, lic: dict[str, Any]) -> dict[str, Any]:
    row = await conn.fetchrow(
        "INSERT INTO licenses (number, application_id, bin, provider_name, legal_form, region,"
        " contact, subtypes, sites, staffing, equipment, premises, status, seq, issued_on,"
        " status_since, workers, requirement_set, findings, findings_on)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb,"
        " $10::jsonb, $11::jsonb, $12::jsonb, 'active', 1, $13, $13, $14, $15, $16::jsonb, $13)"
        " RETURNING *",
        lic["number"],
        lic["application_id"],
        lic["bin"],
        lic["provider_name"],
        lic["legal_form"],
        lic["region"],
        _sealed_contact(lic["contact"]),
        _json(lic["subtypes"]),
        _json(lic["sites"]),
        _json(lic["staffing"]),
        _json(lic["equipment"]),
        _json(lic["premises"]),
        lic["issued_on"],
        _sealed_workers(lic.get("workers")),
        lic["requirement_set"],
        _json(lic["findings"]),
    )
    result = _dict(row)
    assert result is not None
    return result


async def get_license(
    conn: Connection, number: str, *, for_update: bool = False
) -> dict[str, Any] | None:
    query = "SELECT * FROM licenses WHERE number = $1"
    if for_update:
        query += " FOR UPDATE"
    return _dict(await conn.fetchrow(query, number))


async def get_license_facts(conn: Connection, number: str) -> dict[str, Any] | None:
    """What `license_view` shows of a license: no contact to open (the public registry never
    shows it), no staffing, equipment or premises to decode."""
    return _dict(
        await conn.fetchrow(
            "SELECT number, bin, provider_name, legal_form, region, status, status_since,"
            " status_reason, suspended_until, issued_on, seq, subtypes, sites"
            " FROM licenses WHERE number = $1",
            number,
        )
    )


async def list_license_summaries(
    conn: Connection,
    *,
    bin: str | None,
    region: str | None,
    status: str | None,
    after: str | None,
    limit: int,
) -> list[dict[str, Any]]:
    """The columns a list shows, totals computed in SQL: no contact to open, no staffing,
    equipment or premises to decode for a page of the public registry."""
    return _dicts(
        await conn.fetch(
            "SELECT number, bin, provider_name, legal_form, region, status, status_since,"
            " status_reason, suspended_until, issued_on, seq, subtypes,"
            " (SELECT coalesce(sum((s ->> 'places')::int), 0) FROM jsonb_array_elements(sites) s)"
            " AS places, jsonb_array_length(sites) AS site_count"
            " FROM licenses WHERE ($1::text IS NULL OR bin = $1)"
            " AND ($2::text IS NULL OR region = $2) AND ($3::text IS NULL OR status = $3)"
            " AND ($4::text IS NULL OR number > $4) ORDER BY number LIMIT $5",
            bin,
            region,
            status,
            after,
            limit,
        )
    )


async def current_licenses(conn: Connection, *, region: str | None) -> list[dict[str, Any]]:
    """Licenses whose holders are licensees today: active or suspended, not revoked."""
    return _dicts(
        await conn.fetch(
            "SELECT * FROM licenses WHERE status IN ('active', 'suspended')"
            " AND ($1::text IS NULL OR region = $1) ORDER BY number",
            region,
        )
    )


async def change_license_status(
    conn: Connection,
    *,
    number: str,
    status: str,
    since: date,
    reason: str | None,
    until: date | None,
) -> dict[str, Any]:
    row = await conn.fetchrow(
        "UPDATE licenses SET status = $2, status_since = $3, status_reason = $4,"
        " suspended_until = $5, seq = seq + 1, updated_at = now() WHERE number = $1 RETURNING *",
        number,
        status,
        since,
        reason,
        until,
    )
    result = _dict(row)
    assert result is not None
    return result


async def replace_license_sites(
    conn: Connection, *, number: str, sites: list[dict[str, Any]]
) -> dict[str, Any]:
    row = await conn.fetchrow(
        "UPDATE licenses SET sites = $2::jsonb, seq = seq + 1, updated_at = now()"
        " WHERE number = $1 RETURNING *",
        number,
        _json(sites),
    )
    result = _dict(row)
    assert result is not None
    return result


async def replace_license_staffing(
    conn: Connection,
    *,
    number: str,
    staffing: list[dict[str, Any]],
    workers: list[dict[str, Any]],
) -> dict[str, Any]:
    row = await conn.fetchrow(
        "UPDATE licenses SET staffing = $2::jsonb, workers = $3, seq = seq + 1,"
        " updated_at = now() WHERE number = $1 RETURNING *",
        number,
        _json(staffing),
        _sealed_workers(workers),
    )
    result = _dict(row)
    assert result is not None
    return result


async def update_license_findings(
    conn: Connection,
    *,
    number: str,
    requirement_set: str,
    findings: list[dict[str, Any]],
    on: date,
) -> dict[str, Any]:
    row = await conn.fetchrow(
        "UPDATE licenses SET requirement_set = $2, findings = $3::jsonb, findings_on = $4"
        " WHERE number = $1 RETURNING *",
        number,
        requirement_set,
        _json(findings),
        on,
    )
    result = _dict(row)
    assert result is not None
    return result


async def reinstate_due_suspensions(conn: Connection, *, today: date) -> list[dict[str, Any]]:
    """End every suspension whose end date has come; effective on that end date."""
    return _dicts(
        await conn.fetch(
            "WITH due AS (SELECT number FROM licenses WHERE status = 'suspended'"
            " AND suspended_until <= $1 ORDER BY number FOR UPDATE SKIP LOCKED)"
            " UPDATE licenses l SET status = 'active', status_since = l.suspended_until,"
            " status_reason = NULL, suspended_until = NULL, seq = l.seq + 1, updated_at = now()"
            " FROM due WHERE l.number = due.number RETURNING l.*",
            today,
        )
    )


# enrollments (read model from registry events)


async def record_enrollment_started(conn: Connection, *, enrollment_id: str, bin: str) -> None:
    # An `ended` that arrived first wins: the enrollment stays inactive.
    await conn.execute(
        "INSERT INTO enrollments (enrollment_id, provider_bin, active) VALUES ($1, $2, true)"
        " ON CONFLICT (enrollment_id) DO NOTHING",
        enrollment_id,
        bin,
    )


async def record_enrollment_ended(conn: Connection, *, enrollment_id: str, bin: str) -> None:
    await conn.execute(
        "INSERT INTO enrollments (enrollment_id, provider_bin, active) VALUES ($1, $2, false)"
        " ON CONFLICT (enrollment_id) DO UPDATE SET active = false",
        enrollment_id,
        bin,
    )


async def recipients_by_provider(conn: Connection, bins: list[str]) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT provider_bin, count(*) AS n FROM enrollments"
        " WHERE active AND provider_bin = ANY($1::text[]) GROUP BY provider_bin",
        bins,
    )
    return {r["provider_bin"]: int(r["n"]) for r in rows}


# decisions


async def insert_decision(
    conn: Connection,
    *,
    actor: str,
    action: str,
    subject: str,
    before: Any,
    after: Any,
    detail: Any = None,
) -> None:
    await conn.execute(
        "INSERT INTO decisions (actor, action, subject, before, after, detail)"
        " VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6::jsonb)",
        actor,
        action,
        subject,
        None if before is None else _json(before),
        None if after is None else _json(after),
        None if detail is None else _json(detail),
    )


async def insert_decisions(conn: Connection, entries: list[tuple[Any, ...]]) -> None:
    """Entries of (actor, action, subject, before, after, detail)."""
    await conn.executemany(
        "INSERT INTO decisions (actor, action, subject, before, after, detail)"
        " VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6::jsonb)",
        [
            (a, act, s, _json(b) if b is not None else None, _json(af), _json(d) if d else None)
            for a, act, s, b, af, d in entries
        ],
    )


async def list_decisions(
    conn: Connection,
    *,
    subject: str | None,
    action: str | None,
    after: int | None,
    limit: int,
) -> list[dict[str, Any]]:
    return _dicts(
        await conn.fetch(
            "SELECT * FROM decisions WHERE ($1::text IS NULL OR subject = $1)"
            " AND ($2::text IS NULL OR action = $2) AND ($3::bigint IS NULL OR id > $3)"
            " ORDER BY id LIMIT $4",
            subject,
            action,
            after,
            limit,
        )
    )


# gauges


async def licenses_by_status(conn: Connection) -> list[tuple[dict[str, str], float]]:
    rows = await conn.fetch(
        "SELECT status, region, count(*) AS n FROM licenses GROUP BY status, region"
    )
    return [({"status": r["status"], "region": r["region"]}, float(r["n"])) for r in rows]


async def applications_by_status(conn: Connection) -> list[tuple[dict[str, str], float]]:
    rows = await conn.fetch("SELECT status, count(*) AS n FROM applications GROUP BY status")
    return [({"status": r["status"]}, float(r["n"])) for r in rows]
