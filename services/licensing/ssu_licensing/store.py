"""All SQL of the licensing service; rows come back as the small typed records below."""

import dataclasses
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import TYPE_CHECKING, Literal, TypeVar

import asyncpg
from pydantic import JsonValue
from ssu_common import Connection, FieldCipher, SealedTable
from ssu_contracts import ApplicationStatus, LicenseStatus

from ssu_licensing.domain import (
    ContactDoc,
    Declared,
    FindingDoc,
    ObservationDoc,
    PremisesDoc,
    SiteDoc,
    StaffDoc,
    SubtypeDoc,
    WorkerDoc,
)

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

# A JSON object as stored in jsonb (a decision's before, after and detail; a requirement).
JsonObject = dict[str, JsonValue]

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


# records: one per row shape; a query's columns are named as the record's fields


@dataclass(frozen=True)
class RequirementSetRow:
    version: str
    title: str
    non_core_blocking: bool
    # The set's requirements as `domain.RequirementSet` dumped them (service.py validates).
    requirements: list[JsonObject]
    effective_from: date | None
    activated_at: datetime | None
    created_by: str
    created_at: datetime


@dataclass(frozen=True)
class ApplicationRow:
    id: uuid.UUID
    status: ApplicationStatus
    bin: str
    provider_name: str
    legal_form: str
    region: str
    contact: ContactDoc
    subtypes: list[SubtypeDoc]
    sites: list[SiteDoc]
    staffing: list[StaffDoc]
    workers: list[WorkerDoc]
    equipment: list[str]
    premises: PremisesDoc
    requirement_set: str
    findings_source: Literal["declaration", "inspection"]
    findings: list[FindingDoc]
    license_number: str | None
    decision_reason: str | None
    decided_by: str | None
    decided_at: datetime | None
    submitted_at: datetime
    submitted_on: date


@dataclass(frozen=True)
class InspectionRow:
    id: uuid.UUID
    application_id: uuid.UUID
    inspected_on: date
    inspector: str
    observations: list[ObservationDoc]
    photos: list[str]
    notes: str | None
    recorded_at: datetime


@dataclass(frozen=True)
class LicenseFacts:
    """What every view of a license shows, the public registry's list included."""

    number: str
    bin: str
    provider_name: str
    legal_form: str
    region: str
    status: LicenseStatus
    status_since: date
    status_reason: str | None
    suspended_until: date | None
    issued_on: date
    seq: int
    subtypes: list[SubtypeDoc]


@dataclass(frozen=True)
class LicenseSummaryRow(LicenseFacts):
    """A license as a list shows it: totals instead of sites."""

    places: int
    site_count: int


@dataclass(frozen=True)
class LicenseFactsRow(LicenseFacts):
    """A license as the public registry shows one: its facts and sites, no contact."""

    sites: list[SiteDoc]


@dataclass(frozen=True)
class LicenseRow(LicenseFactsRow):
    """A whole license (contact and workers opened)."""

    application_id: uuid.UUID | None
    contact: ContactDoc
    staffing: list[StaffDoc]
    workers: list[WorkerDoc]
    equipment: list[str]
    premises: PremisesDoc
    # None for licenses issued before findings were kept, until their next amendment.
    requirement_set: str | None
    findings: list[FindingDoc] | None
    findings_on: date | None
    updated_at: datetime


@dataclass(frozen=True)
class DecisionRow:
    id: int
    at: datetime
    actor: str
    action: str
    subject: str
    before: JsonObject | None
    after: JsonObject | None
    detail: JsonObject | None


_JSON_COLUMNS = frozenset(
    {
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
    }
)

R = TypeVar("R", bound="DataclassInstance")


def _column(record: asyncpg.Record, name: str) -> object:
    value: object = record[name]
    if name == "contact" and isinstance(value, bytes):
        value = _c().open(value, column="contact")
    if name == "workers":
        # NULL (no workers named, as in the rows written before workers were): none.
        if not isinstance(value, bytes) or not value:
            return []
        return json.loads(_c().open(value, column="workers") or "[]")
    if name in _JSON_COLUMNS and isinstance(value, str):
        return json.loads(value)
    return value


def _row(kind: type[R], record: asyncpg.Record) -> R:
    """A record of `kind` from the columns its fields name (a query may select more)."""
    return kind(
        **{f.name: _typed(f.type, _column(record, f.name)) for f in dataclasses.fields(kind)}
    )


def _typed(annotation: object, value: object) -> object:
    # A status column as its enum: the column's CHECK holds exactly the enum's values.
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return annotation(value)
    return value


def _maybe(kind: type[R], record: asyncpg.Record | None) -> R | None:
    return None if record is None else _row(kind, record)


def _one(kind: type[R], record: asyncpg.Record | None) -> R:
    """The row a write returned (it always returns one: the row it wrote)."""
    assert record is not None
    return _row(kind, record)


def _rows(kind: type[R], records: list[asyncpg.Record]) -> list[R]:
    return [_row(kind, r) for r in records]


def _json(value: object) -> str:
    # `default=str`: dates and decimals of a decision's trail as ISO text.
    return json.dumps(value, ensure_ascii=False, default=str)


def _sealed_contact(contact: ContactDoc) -> bytes | None:
    return _c().seal(_json(contact), column="contact")


def _sealed_workers(workers: Sequence[WorkerDoc] | None) -> bytes | None:
    # No workers named: NULL, as in the rows written before workers were.
    return _c().seal(_json(workers), column="workers") if workers else None


# requirement sets


async def insert_requirement_set(
    conn: Connection,
    *,
    version: str,
    title: str,
    non_core_blocking: bool,
    requirements: Sequence[JsonObject],
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


async def get_requirement_set(conn: Connection, version: str) -> RequirementSetRow | None:
    return _maybe(
        RequirementSetRow,
        await conn.fetchrow("SELECT * FROM requirement_sets WHERE version = $1", version),
    )


async def requirement_set_in_force(conn: Connection, on: date) -> RequirementSetRow | None:
    return _maybe(
        RequirementSetRow,
        await conn.fetchrow(
            "SELECT * FROM requirement_sets WHERE effective_from <= $1"
            " ORDER BY effective_from DESC, activated_at DESC LIMIT 1",
            on,
        ),
    )


async def list_requirement_sets(conn: Connection) -> list[RequirementSetRow]:
    return _rows(
        RequirementSetRow,
        await conn.fetch(
            "SELECT * FROM requirement_sets ORDER BY effective_from NULLS LAST, version"
        ),
    )


async def activate_requirement_set(
    conn: Connection, *, version: str, effective_from: date
) -> RequirementSetRow | None:
    return _maybe(
        RequirementSetRow,
        await conn.fetchrow(
            "UPDATE requirement_sets SET effective_from = $2, activated_at = now()"
            " WHERE version = $1 RETURNING *",
            version,
            effective_from,
        ),
    )


# applications


async def insert_application(
    conn: Connection,
    *,
    id: str,
    bin: str,
    provider_name: str,
    legal_form: str,
    region: str,
    contact: ContactDoc,
    declared: Declared,
    requirement_set: str,
    findings: Sequence[FindingDoc],
    submitted_on: date,
) -> ApplicationRow:
    row = await conn.fetchrow(
        "INSERT INTO applications (id, bin, provider_name, legal_form, region, contact, subtypes,"
        " sites, staffing, equipment, premises, requirement_set, findings, submitted_on, workers)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, $9::jsonb, $10::jsonb,"
        " $11::jsonb, $12, $13::jsonb, $14, $15) RETURNING *",
        id,
        bin,
        provider_name,
        legal_form,
        region,
        _sealed_contact(contact),
        _json(declared.subtypes),
        _json(declared.sites),
        _json(declared.staffing),
        _json(declared.equipment),
        _json(declared.premises),
        requirement_set,
        _json(findings),
        submitted_on,
        _sealed_workers(declared.workers),
    )
    return _one(ApplicationRow, row)


async def get_application(
    conn: Connection, application_id: str, *, for_update: bool = False
) -> ApplicationRow | None:
    query = "SELECT * FROM applications WHERE id = $1"
    if for_update:
        query += " FOR UPDATE"
    return _maybe(ApplicationRow, await conn.fetchrow(query, application_id))


async def list_applications(
    conn: Connection,
    *,
    region: str | None,
    status: ApplicationStatus | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[ApplicationRow]:
    return _rows(
        ApplicationRow,
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
        ),
    )


async def pending_applications(conn: Connection, *, region: str | None) -> list[ApplicationRow]:
    return _rows(
        ApplicationRow,
        await conn.fetch(
            "SELECT * FROM applications WHERE status = 'submitted'"
            " AND ($1::text IS NULL OR region = $1) ORDER BY submitted_at, id",
            region,
        ),
    )


async def update_application_findings(
    conn: Connection,
    *,
    application_id: str,
    requirement_set: str,
    findings: Sequence[FindingDoc],
    source: str,
) -> ApplicationRow:
    row = await conn.fetchrow(
        "UPDATE applications SET requirement_set = $2, findings = $3::jsonb, findings_source = $4"
        " WHERE id = $1 RETURNING *",
        application_id,
        requirement_set,
        _json(findings),
        source,
    )
    return _one(ApplicationRow, row)


async def decide_application(
    conn: Connection,
    *,
    application_id: str,
    status: ApplicationStatus,
    reason: str | None,
    decided_by: str,
    license_number: str | None,
) -> ApplicationRow:
    row = await conn.fetchrow(
        "UPDATE applications SET status = $2, decision_reason = $3, decided_by = $4,"
        " decided_at = now(), license_number = $5 WHERE id = $1 RETURNING *",
        application_id,
        status,
        reason,
        decided_by,
        license_number,
    )
    return _one(ApplicationRow, row)


async def insert_inspection(
    conn: Connection,
    *,
    id: str,
    application_id: str,
    inspected_on: date,
    inspector: str,
    observations: Sequence[ObservationDoc],
    photos: Sequence[str],
    notes: str | None,
) -> InspectionRow:
    row = await conn.fetchrow(
        "INSERT INTO inspections (id, application_id, inspected_on, inspector, observations,"
        " photos, notes) VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7) RETURNING *",
        id,
        application_id,
        inspected_on,
        inspector,
        _json(observations),
        _json(photos),
        notes,
    )
    return _one(InspectionRow, row)


async def latest_inspection(conn: Connection, application_id: str) -> InspectionRow | None:
    return _maybe(
        InspectionRow,
        await conn.fetchrow(
            "SELECT * FROM inspections WHERE application_id = $1"
            " ORDER BY recorded_at DESC, id LIMIT 1",
            application_id,
        ),
    )


async def latest_inspections(
    conn: Connection, application_ids: list[str]
) -> dict[str, InspectionRow]:
    """The latest inspection of each of many applications, by application id."""
    rows = _rows(
        InspectionRow,
        await conn.fetch(
            "SELECT DISTINCT ON (application_id) * FROM inspections"
            " WHERE application_id = ANY($1::uuid[])"
            " ORDER BY application_id, recorded_at DESC, id",
            application_ids,
        ),
    )
    return {str(r.application_id): r for r in rows}


async def inspections_of(conn: Connection, application_id: str) -> list[InspectionRow]:
    return _rows(
        InspectionRow,
        await conn.fetch(
            "SELECT * FROM inspections WHERE application_id = $1 ORDER BY recorded_at, id",
            application_id,
        ),
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


async def insert_license(
    conn: Connection, *, number: str, application: ApplicationRow, issued_on: date
) -> LicenseRow:
    """A license of an approved application: it keeps the provider and what was evaluated."""
    row = await conn.fetchrow(
        "INSERT INTO licenses (number, application_id, bin, provider_name, legal_form, region,"
        " contact, subtypes, sites, staffing, equipment, premises, status, seq, issued_on,"
        " status_since, workers, requirement_set, findings, findings_on)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb,"
        " $10::jsonb, $11::jsonb, $12::jsonb, 'active', 1, $13, $13, $14, $15, $16::jsonb, $13)"
        " RETURNING *",
        number,
        str(application.id),
        application.bin,
        application.provider_name,
        application.legal_form,
        application.region,
        _sealed_contact(application.contact),
        _json(application.subtypes),
        _json(application.sites),
        _json(application.staffing),
        _json(application.equipment),
        _json(application.premises),
        issued_on,
        _sealed_workers(application.workers),
        application.requirement_set,
        _json(application.findings),
    )
    return _one(LicenseRow, row)


async def get_license(
    conn: Connection, number: str, *, for_update: bool = False
) -> LicenseRow | None:
    query = "SELECT * FROM licenses WHERE number = $1"
    if for_update:
        query += " FOR UPDATE"
    return _maybe(LicenseRow, await conn.fetchrow(query, number))


async def get_license_facts(conn: Connection, number: str) -> LicenseFactsRow | None:
    """What `license_view` shows of a license: no contact to open (the public registry never
    shows it), no staffing, equipment or premises to decode."""
    return _maybe(
        LicenseFactsRow,
        await conn.fetchrow(
            "SELECT number, bin, provider_name, legal_form, region, status, status_since,"
            " status_reason, suspended_until, issued_on, seq, subtypes, sites"
            " FROM licenses WHERE number = $1",
            number,
        ),
    )


async def list_license_summaries(
    conn: Connection,
    *,
    bin: str | None,
    region: str | None,
    status: LicenseStatus | None,
    after: str | None,
    limit: int,
) -> list[LicenseSummaryRow]:
    """The columns a list shows, totals computed in SQL: no contact to open, no staffing,
    equipment or premises to decode for a page of the public registry."""
    return _rows(
        LicenseSummaryRow,
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
        ),
    )


async def current_licenses(conn: Connection, *, region: str | None) -> list[LicenseRow]:
    """Licenses whose holders are licensees today: active or suspended, not revoked."""
    return _rows(
        LicenseRow,
        await conn.fetch(
            "SELECT * FROM licenses WHERE status IN ('active', 'suspended')"
            " AND ($1::text IS NULL OR region = $1) ORDER BY number",
            region,
        ),
    )


async def change_license_status(
    conn: Connection,
    *,
    number: str,
    status: LicenseStatus,
    since: date,
    reason: str | None,
    until: date | None,
) -> LicenseRow:
    row = await conn.fetchrow(
        "UPDATE licenses SET status = $2, status_since = $3, status_reason = $4,"
        " suspended_until = $5, seq = seq + 1, updated_at = now() WHERE number = $1 RETURNING *",
        number,
        status,
        since,
        reason,
        until,
    )
    return _one(LicenseRow, row)


async def replace_license_sites(
    conn: Connection, *, number: str, sites: Sequence[SiteDoc]
) -> LicenseRow:
    row = await conn.fetchrow(
        "UPDATE licenses SET sites = $2::jsonb, seq = seq + 1, updated_at = now()"
        " WHERE number = $1 RETURNING *",
        number,
        _json(sites),
    )
    return _one(LicenseRow, row)


async def replace_license_staffing(
    conn: Connection,
    *,
    number: str,
    staffing: Sequence[StaffDoc],
    workers: Sequence[WorkerDoc],
) -> LicenseRow:
    row = await conn.fetchrow(
        "UPDATE licenses SET staffing = $2::jsonb, workers = $3, seq = seq + 1,"
        " updated_at = now() WHERE number = $1 RETURNING *",
        number,
        _json(staffing),
        _sealed_workers(workers),
    )
    return _one(LicenseRow, row)


async def update_license_findings(
    conn: Connection,
    *,
    number: str,
    requirement_set: str,
    findings: Sequence[FindingDoc],
    on: date,
) -> LicenseRow:
    row = await conn.fetchrow(
        "UPDATE licenses SET requirement_set = $2, findings = $3::jsonb, findings_on = $4"
        " WHERE number = $1 RETURNING *",
        number,
        requirement_set,
        _json(findings),
        on,
    )
    return _one(LicenseRow, row)


async def reinstate_due_suspensions(conn: Connection, *, today: date) -> list[LicenseRow]:
    """End every suspension whose end date has come; effective on that end date."""
    return _rows(
        LicenseRow,
        await conn.fetch(
            "WITH due AS (SELECT number FROM licenses WHERE status = 'suspended'"
            " AND suspended_until <= $1 ORDER BY number FOR UPDATE SKIP LOCKED)"
            " UPDATE licenses l SET status = 'active', status_since = l.suspended_until,"
            " status_reason = NULL, suspended_until = NULL, seq = l.seq + 1, updated_at = now()"
            " FROM due WHERE l.number = due.number RETURNING l.*",
            today,
        ),
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


# A document of the trail to write (before, after, detail): JSON once written, but it may hold
# dates and decimals (written as their ISO text), so an `object` mapping, not a `JsonObject`.
TrailDocument = Mapping[str, object]


async def insert_decision(
    conn: Connection,
    *,
    actor: str,
    action: str,
    subject: str,
    before: TrailDocument | None,
    after: TrailDocument | None,
    detail: TrailDocument | None = None,
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


# A trail entry to write: (actor, action, subject, before, after, detail).
NewDecision = tuple[str, str, str, TrailDocument | None, TrailDocument, TrailDocument | None]


async def insert_decisions(conn: Connection, entries: Sequence[NewDecision]) -> None:
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
) -> list[DecisionRow]:
    return _rows(
        DecisionRow,
        await conn.fetch(
            "SELECT * FROM decisions WHERE ($1::text IS NULL OR subject = $1)"
            " AND ($2::text IS NULL OR action = $2) AND ($3::bigint IS NULL OR id > $3)"
            " ORDER BY id LIMIT $4",
            subject,
            action,
            after,
            limit,
        ),
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
