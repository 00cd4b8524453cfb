"""All SQL of the registry service."""

import json
import uuid
from collections.abc import AsyncIterable, Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC, date, datetime

import asyncpg
from ssu_common import Connection, FieldCipher, SealedTable
from ssu_contracts import LicenseEvent
from ssu_contracts.ids import region_of

from ssu_registry.domain import IMPORT_COLUMNS, ImportRecord, RecipientContact, normalised_name

Record = asyncpg.Record

# A recipient's personal fields are sealed (ssu_common.crypto); the IIN is looked up and
# joined by its blind index `iin_index`. Rows leave this module with the fields opened. The one
# list of them: what is sealed on writing is what is opened on reading.
PERSONAL_COLUMNS = (
    "iin",
    "full_name",
    "birth_date",
    "phone",
    "email",
    "guardian_name",
    "guardian_phone",
    "guardian_email",
    "guardian_iin",
)
SEALED = (
    SealedTable(
        "recipients",
        ("iin_index", "bytea"),
        (*PERSONAL_COLUMNS, "search_name"),
        {"iin_index": "iin", "name_index": "search_name"},
    ),
    SealedTable("enrollments", ("id", "uuid"), ("iin", "alternatives"), {"iin_index": "iin"}),
    SealedTable("waiting_requests", ("id", "uuid"), ("iin",), {"iin_index": "iin"}),
    SealedTable("providers", ("license_number", "text"), ("email", "phone")),
    SealedTable("recipient_history", ("id", "bigint"), ("changes",)),
)
_cipher: list[FieldCipher] = []


def use_cipher(cipher: FieldCipher) -> None:
    _cipher[:] = [cipher]


def cipher() -> FieldCipher:
    if not _cipher:
        raise RuntimeError("registry store used before use_cipher()")
    return _cipher[0]


def iin_index(iin: str) -> bytes:
    return cipher().blind_index(iin)


def sealed_digest(
    full_name: str, birth_date: date, g_name: str | None, g_phone: str | None, g_email: str | None
) -> bytes:
    return cipher().blind_digest([full_name, birth_date.isoformat(), g_name, g_phone, g_email])


# Providers (read model of licenses)


async def upsert_provider_if_newer(conn: Connection, event: LicenseEvent) -> bool:
    """Store a license snapshot unless a snapshot with the same or a higher seq is held."""
    applied = await conn.fetchval(
        """
        INSERT INTO providers (license_number, bin, name, legal_form, region, email, phone,
                               language, status, seq, effective_date)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
        ON CONFLICT (license_number) DO UPDATE SET
            bin = EXCLUDED.bin, name = EXCLUDED.name, legal_form = EXCLUDED.legal_form,
            region = EXCLUDED.region, email = EXCLUDED.email, phone = EXCLUDED.phone,
            language = EXCLUDED.language, status = EXCLUDED.status, seq = EXCLUDED.seq,
            effective_date = EXCLUDED.effective_date, updated_at = now()
        WHERE providers.seq < EXCLUDED.seq
        RETURNING true
        """,
        event.license_number,
        event.bin,
        event.provider_name,
        str(event.legal_form),
        event.region,
        cipher().seal(event.contact.email, column="email"),
        cipher().seal(event.contact.phone, column="phone"),
        str(event.contact.language),
        str(event.status),
        event.seq,
        event.effective_date,
    )
    return bool(applied)


async def record_license_history(conn: Connection, event: LicenseEvent) -> None:
    """Keep a license snapshot (status, date, sites with places) for figures as of a date; an
    older snapshot arriving late is kept too: it still tells what held on its date."""
    recorded = await conn.fetchval(
        """
        INSERT INTO provider_history (license_number, seq, status, effective_date, legal_form,
                                      region)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (license_number, seq) DO NOTHING
        RETURNING true
        """,
        event.license_number,
        event.seq,
        str(event.status),
        event.effective_date,
        str(event.legal_form),
        event.region,
    )
    if not recorded:
        return
    await conn.execute(
        """
        INSERT INTO provider_site_history (license_number, seq, site_id, region, places)
        SELECT $1, $2, s, r, p FROM unnest($3::text[], $4::text[], $5::integer[]) AS t(s, r, p)
        ON CONFLICT DO NOTHING
        """,
        event.license_number,
        event.seq,
        [s.site_id for s in event.sites],
        [region_of(s.kato) for s in event.sites],
        [s.places for s in event.sites],
    )


async def mark_provider_active_from(conn: Connection, event: LicenseEvent, *, since: bool) -> None:
    """Remember since when a license is active: from an issue or reinstatement (`since`), kept
    through amendments."""
    await conn.execute(
        "UPDATE providers SET active_from = CASE WHEN $2 THEN $3 ELSE"
        " coalesce(active_from, $3) END WHERE license_number = $1",
        event.license_number,
        since,
        event.effective_date,
    )


async def replace_provider_subtypes(conn: Connection, event: LicenseEvent) -> None:
    await conn.execute(
        "DELETE FROM provider_subtypes WHERE license_number = $1", event.license_number
    )
    await conn.execute(
        """
        INSERT INTO provider_subtypes (license_number, form, category)
        SELECT $1, f, c FROM unnest($2::text[], $3::text[]) AS t(f, c)
        ON CONFLICT DO NOTHING
        """,
        event.license_number,
        [str(s.form) for s in event.subtypes],
        [str(s.category) for s in event.subtypes],
    )


async def replace_provider_sites(conn: Connection, event: LicenseEvent) -> None:
    """Upsert the snapshot's sites; sites no longer in it stay for history but are unlisted."""
    sites = event.sites
    await conn.execute(
        """
        INSERT INTO provider_sites (license_number, site_id, address, kato, region, places, listed)
        SELECT $1, s, a, k, r, p, true
        FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::integer[])
             AS t(s, a, k, r, p)
        ON CONFLICT (license_number, site_id) DO UPDATE SET
            address = EXCLUDED.address, kato = EXCLUDED.kato, region = EXCLUDED.region,
            places = EXCLUDED.places, listed = true
        """,
        event.license_number,
        [s.site_id for s in sites],
        [s.address for s in sites],
        [s.kato for s in sites],
        [region_of(s.kato) for s in sites],
        [s.places for s in sites],
    )
    await conn.execute(
        "UPDATE provider_sites SET listed = false"
        " WHERE license_number = $1 AND NOT (site_id = ANY($2::text[]))",
        event.license_number,
        [s.site_id for s in sites],
    )


async def get_provider(
    conn: Connection, license_number: str, *, share_lock: bool = False
) -> "ProviderRow | None":
    """A provider; with `share_lock` its status cannot change until the transaction ends."""
    sql = "SELECT * FROM providers WHERE license_number = $1"
    row = await conn.fetchrow(sql + (" FOR SHARE" if share_lock else ""), license_number)
    return _provider(row) if row is not None else None


@dataclass(frozen=True)
class ProviderRow:
    """A provider of the read model, its contact opened."""

    license_number: str
    bin: str
    name: str
    legal_form: str
    region: str
    email: str | None
    phone: str | None
    language: str
    status: str
    seq: int
    effective_date: date
    active_from: date | None  # since when enrollments may start (the license active)


def _provider(r: Record) -> ProviderRow:
    return ProviderRow(
        license_number=r["license_number"],
        bin=r["bin"],
        name=r["name"],
        legal_form=r["legal_form"],
        region=r["region"],
        email=cipher().open(r["email"], column="email"),
        phone=cipher().open(r["phone"], column="phone"),
        language=r["language"],
        status=r["status"],
        seq=r["seq"],
        effective_date=r["effective_date"],
        active_from=r["active_from"],
    )


@dataclass(frozen=True)
class SubtypeRow:
    license_number: str
    form: str
    category: str


@dataclass(frozen=True)
class SiteRow:
    """A listed site with its places taken and free (free_places None: places not counted)."""

    license_number: str
    site_id: str
    address: str
    kato: str
    region: str
    places: int | None
    occupied: int
    free_places: int | None


async def list_providers(
    conn: Connection,
    *,
    region: str | None,
    form: str | None,
    category: str | None,
    free_only: bool,
    status: str | None,
    bin: str | None,
    after: str | None,
    limit: int,
) -> list[ProviderRow]:
    """Providers matching the filters, ordered by license number, after a cursor."""
    rows = await conn.fetch(
        """
        SELECT p.* FROM providers p
        WHERE ($1::text IS NULL OR p.region = $1 OR EXISTS (
                  SELECT 1 FROM provider_sites s
                  WHERE s.license_number = p.license_number AND s.listed AND s.region = $1))
          AND (($2::text IS NULL AND $3::text IS NULL) OR EXISTS (
                  SELECT 1 FROM provider_subtypes t
                  WHERE t.license_number = p.license_number
                    AND ($2::text IS NULL OR t.form = $2)
                    AND ($3::text IS NULL OR t.category = $3)))
          AND (NOT $4::boolean OR (p.status = 'active' AND EXISTS (
                  SELECT 1 FROM site_occupancy o
                  WHERE o.license_number = p.license_number AND o.listed
                    AND o.free_places > 0
                    AND ($1::text IS NULL OR p.region = $1 OR o.region = $1))))
          AND ($5::text IS NULL OR p.status = $5)
          AND ($6::text IS NULL OR p.bin = $6)
          AND ($7::text IS NULL OR p.license_number > $7)
        ORDER BY p.license_number
        LIMIT $8
        """,
        region,
        form,
        category,
        free_only,
        status,
        bin,
        after,
        limit,
    )
    return [_provider(r) for r in rows]


async def subtypes_of(conn: Connection, license_numbers: Sequence[str]) -> list[SubtypeRow]:
    rows = await conn.fetch(
        "SELECT license_number, form, category FROM provider_subtypes"
        " WHERE license_number = ANY($1::text[]) ORDER BY license_number, form, category",
        list(license_numbers),
    )
    return [SubtypeRow(r["license_number"], r["form"], r["category"]) for r in rows]


async def sites_of(conn: Connection, license_numbers: Sequence[str]) -> list[SiteRow]:
    rows = await conn.fetch(
        "SELECT license_number, site_id, address, kato, region, places, occupied, free_places"
        " FROM site_occupancy WHERE license_number = ANY($1::text[]) AND listed"
        " ORDER BY license_number, site_id",
        list(license_numbers),
    )
    return [
        SiteRow(
            license_number=r["license_number"],
            site_id=r["site_id"],
            address=r["address"],
            kato=r["kato"],
            region=r["region"],
            places=r["places"],
            occupied=r["occupied"],
            free_places=r["free_places"],
        )
        for r in rows
    ]


# Recipients


@dataclass(frozen=True)
class _Reachable(RecipientContact):
    """A record carrying a recipient's contact fields (declared once, by RecipientContact)."""

    @property
    def contact(self) -> RecipientContact:
        return RecipientContact(**{f: getattr(self, f) for f in CONTACT_COLUMNS})


CONTACT_COLUMNS = tuple(f.name for f in fields(RecipientContact))
# The same columns as a select list of the recipients table aliased `r`.
_CONTACT_SELECT = ", ".join(f"r.{c}" for c in CONTACT_COLUMNS)


@dataclass(frozen=True)
class RecipientDetails:
    """What a recipient's PATCH may change; a guardian is replaced (or removed) whole."""

    phone: str | None
    email: str | None
    category: str
    disability_group: int | None
    guardian_name: str | None
    guardian_phone: str | None
    guardian_email: str | None
    guardian_iin: str | None


# Fields a PATCH may change, in RecipientDetails' order.
UPDATABLE = tuple(f.name for f in fields(RecipientDetails))


@dataclass(frozen=True)
class NewRecipient:
    """A recipient to register."""

    iin: str
    full_name: str
    birth_date: date
    category: str
    region: str
    disability_group: int | None
    language: str
    phone: str | None
    email: str | None
    guardian_name: str | None
    guardian_phone: str | None
    guardian_email: str | None
    guardian_iin: str | None


@dataclass(frozen=True)
class RecipientRow(_Reachable):
    """A registered (or de-registered) recipient, its personal fields opened."""

    iin: str
    iin_index: bytes
    category: str
    region: str
    disability_group: int | None
    guardian_iin: str | None
    registered_at: datetime
    status: str
    deregistered_on: date | None
    deregistration_reason: str | None
    version: int
    updated_at: datetime

    @property
    def details(self) -> RecipientDetails:
        return RecipientDetails(**{f: getattr(self, f) for f in UPDATABLE})


def _opened_text(row: Record, column: str) -> str | None:
    return cipher().open(row[column], column=column)


def _required_text(row: Record, column: str) -> str:
    """A sealed field the schema holds NOT NULL."""
    value = _opened_text(row, column)
    assert value is not None, column
    return value


def _opened_contact(row: Record) -> RecipientContact:
    """The contact fields of a row holding a recipient's (sealed) columns, opened."""
    birth_date = cipher().open_date(row["birth_date"], column="birth_date")
    assert birth_date is not None
    return RecipientContact(
        full_name=_required_text(row, "full_name"),
        birth_date=birth_date,
        language=row["language"],
        phone=_opened_text(row, "phone"),
        email=_opened_text(row, "email"),
        guardian_name=_opened_text(row, "guardian_name"),
        guardian_phone=_opened_text(row, "guardian_phone"),
        guardian_email=_opened_text(row, "guardian_email"),
    )


def _recipient(row: Record) -> RecipientRow:
    return RecipientRow(
        iin=_required_text(row, "iin"),
        iin_index=bytes(row["iin_index"]),
        **asdict(_opened_contact(row)),
        category=row["category"],
        region=row["region"],
        disability_group=row["disability_group"],
        guardian_iin=_opened_text(row, "guardian_iin"),
        registered_at=row["registered_at"],
        status=row["status"],
        deregistered_on=row["deregistered_on"],
        deregistration_reason=row["deregistration_reason"],
        version=row["version"],
        updated_at=row["updated_at"],
    )


async def get_recipient(conn: Connection, iin: str, *, lock: bool = False) -> RecipientRow | None:
    # NO KEY UPDATE: serialises the recipient's writers, yet lets a transaction that only
    # refers to the recipient (an enrollment's or a waiting request's foreign key) go on.
    sql = "SELECT * FROM recipients WHERE iin_index = $1"
    row = await conn.fetchrow(sql + (" FOR NO KEY UPDATE" if lock else ""), iin_index(iin))
    return _recipient(row) if row is not None else None


def _sealed(record: object, columns: Sequence[str]) -> list[bytes | None]:
    """A record's personal fields, each sealed under its column's name."""
    c = cipher()
    return [
        c.seal_date(getattr(record, col), column=col)
        if col == "birth_date"
        else c.seal(getattr(record, col), column=col)
        for col in columns
    ]


# The updatable fields that are sealed ($2.. of the UPDATE), in PERSONAL_COLUMNS' order.
_SEALED_UPDATABLE = tuple(c for c in PERSONAL_COLUMNS if c in UPDATABLE)
_SEALED_UPDATES = ", ".join(f"{col} = ${i}" for i, col in enumerate(_SEALED_UPDATABLE, 2))
assert len(_SEALED_UPDATABLE) == 6  # category is $8


async def insert_recipient(conn: Connection, r: NewRecipient) -> bool:
    """Insert a recipient; False when the IIN is already registered."""
    inserted = await conn.fetchval(
        f"""
        INSERT INTO recipients ({", ".join(PERSONAL_COLUMNS)}, category, region,
                                disability_group, language, iin_index, sealed_digest,
                                search_name, name_index)
        VALUES ({", ".join(f"${i}" for i in range(1, len(PERSONAL_COLUMNS) + 9))})
        ON CONFLICT (iin_index) DO NOTHING
        RETURNING true
        """,  # noqa: S608 (constant column lists, no input)
        *_sealed(r, PERSONAL_COLUMNS),
        r.category,
        r.region,
        r.disability_group,
        r.language,
        iin_index(r.iin),
        sealed_digest(
            r.full_name, r.birth_date, r.guardian_name, r.guardian_phone, r.guardian_email
        ),
        *_name_search(r.full_name),
    )
    return bool(inserted)


def _name_search(full_name: str) -> tuple[bytes | None, bytes]:
    """The sealed normalised name and its blind index (what a search by name compares)."""
    normal = normalised_name(full_name)
    return cipher().seal(normal, column="search_name"), cipher().blind_index(normal)


def name_index(full_name: str) -> bytes:
    return cipher().blind_index(normalised_name(full_name))


async def list_recipients(
    conn: Connection,
    *,
    region: str | None,
    category: str | None,
    status: str | None,
    name: bytes | None,
    after: bytes | None,
    limit: int,
) -> list[RecipientRow]:
    """Recipients matching the filters in blind-index order (names are sealed: no name
    order exists in SQL), after a cursor."""
    rows = await conn.fetch(
        """
        SELECT * FROM recipients
        WHERE ($1::text IS NULL OR region = $1)
          AND ($2::text IS NULL OR category = $2)
          AND ($3::text IS NULL OR status = $3)
          AND ($4::bytea IS NULL OR name_index = $4)
          AND ($5::bytea IS NULL OR iin_index > $5)
        ORDER BY iin_index
        LIMIT $6
        """,
        region,
        category,
        status,
        name,
        after,
        limit,
    )
    return [_recipient(r) for r in rows]


async def update_recipient(
    conn: Connection, current: RecipientRow, wanted: RecipientDetails
) -> RecipientRow:
    """Write a recipient's updatable fields (all of them, as given) and count the version up."""
    row = await conn.fetchrow(
        f"""
        UPDATE recipients SET {_SEALED_UPDATES}, category = $8, disability_group = $9,
               sealed_digest = $10, version = version + 1, updated_at = now()
        WHERE iin_index = $1
        RETURNING *
        """,  # noqa: S608 (constant column lists, no input)
        iin_index(current.iin),
        *_sealed(wanted, _SEALED_UPDATABLE),
        wanted.category,
        wanted.disability_group,
        sealed_digest(
            current.full_name,
            current.birth_date,
            wanted.guardian_name,
            wanted.guardian_phone,
            wanted.guardian_email,
        ),
    )
    assert row is not None
    return _recipient(row)


async def deregister_recipient(
    conn: Connection, iin: str, *, day: date, reason: str
) -> RecipientRow:
    row = await conn.fetchrow(
        """
        UPDATE recipients SET status = 'deregistered', deregistered_on = $2,
               deregistration_reason = $3, version = version + 1, updated_at = now()
        WHERE iin_index = $1
        RETURNING *
        """,
        iin_index(iin),
        day,
        reason,
    )
    assert row is not None
    return _recipient(row)


@dataclass(frozen=True)
class RecipientState:
    """Whether a recipient is registered, and their de-registration."""

    status: str
    deregistered_on: date | None
    deregistration_reason: str | None


async def recipient_states(conn: Connection, iins: Sequence[str]) -> dict[str, RecipientState]:
    """Status and de-registration of those of the IINs that are recipients, by IIN (one query
    for a whole file of death notices; most people in it are no recipients)."""
    by_index = {iin_index(iin): iin for iin in iins}
    rows = await conn.fetch(
        "SELECT iin_index, status, deregistered_on, deregistration_reason FROM recipients"
        " WHERE iin_index = ANY($1::bytea[])",
        list(by_index),
    )
    return {
        by_index[bytes(r["iin_index"])]: RecipientState(
            status=r["status"],
            deregistered_on=r["deregistered_on"],
            deregistration_reason=r["deregistration_reason"],
        )
        for r in rows
    }


# A history entry's change of one field: {"from": old, "to": new}, values as JSON holds them.
FieldChange = dict[str, object]


@dataclass(frozen=True)
class HistoryEntry:
    version: int
    action: str
    fields: list[str]
    changes: dict[str, FieldChange]
    actor: str
    changed_at: datetime


async def insert_history(
    conn: Connection,
    iin: str,
    *,
    version: int,
    action: str,
    changes: dict[str, FieldChange],
    actor: str,
) -> None:
    """One history entry; the old and new values are sealed (they are personal data)."""
    await conn.execute(
        "INSERT INTO recipient_history (iin_index, version, action, fields, changes, actor)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        iin_index(iin),
        version,
        action,
        sorted(changes),
        cipher().seal(json.dumps(changes, ensure_ascii=False, default=str), column="changes"),
        actor,
    )


async def recipient_history(conn: Connection, iin: str) -> list[HistoryEntry]:
    rows = await conn.fetch(
        "SELECT version, action, fields, changes, actor, changed_at FROM recipient_history"
        " WHERE iin_index = $1 ORDER BY version",
        iin_index(iin),
    )
    c = cipher()
    return [
        HistoryEntry(
            version=r["version"],
            action=r["action"],
            fields=list(r["fields"]),
            changes=json.loads(c.open(r["changes"], column="changes") or "{}"),
            actor=r["actor"],
            changed_at=r["changed_at"],
        )
        for r in rows
    ]


# Enrollments


@dataclass(frozen=True)
class NewEnrollment:
    """An enrollment to start (active from its start date)."""

    id: uuid.UUID
    iin: str
    license_number: str
    site_id: str
    provider_bin: str
    region: str
    form: str
    category: str
    start_date: date


@dataclass(frozen=True)
class EnrollmentRow:
    """An enrollment, its IIN and alternatives opened (`alternatives`: JSON text)."""

    id: uuid.UUID
    iin: str
    license_number: str
    site_id: str
    provider_bin: str
    region: str
    form: str
    category: str
    start_date: date
    end_date: date | None
    status: str
    end_reason: str | None
    disrupted_on: date | None
    disruption_reason: str | None
    alternatives: str | None
    created_at: datetime
    updated_at: datetime
    seq: int
    unplaced_on: date | None
    placed_again_on: date | None
    placed_again_by: uuid.UUID | None


def _enrollment(row: Record) -> EnrollmentRow:
    return EnrollmentRow(
        id=row["id"],
        iin=_required_text(row, "iin"),
        license_number=row["license_number"],
        site_id=row["site_id"],
        provider_bin=row["provider_bin"],
        region=row["region"],
        form=row["form"],
        category=row["category"],
        start_date=row["start_date"],
        end_date=row["end_date"],
        status=row["status"],
        end_reason=row["end_reason"],
        disrupted_on=row["disrupted_on"],
        disruption_reason=row["disruption_reason"],
        alternatives=_opened_text(row, "alternatives"),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        seq=row["seq"],
        unplaced_on=row["unplaced_on"],
        placed_again_on=row["placed_again_on"],
        placed_again_by=row["placed_again_by"],
    )


async def open_enrollments_of(conn: Connection, iin: str) -> list[EnrollmentRow]:
    """A recipient's enrollments not ended, locked, oldest first."""
    rows = await conn.fetch(
        "SELECT * FROM enrollments WHERE iin_index = $1 AND status <> 'ended'"
        " ORDER BY start_date, id FOR UPDATE",
        iin_index(iin),
    )
    return [_enrollment(r) for r in rows]


@dataclass(frozen=True)
class ProviderSite:
    """A site of a license as the provider's license lists it (or listed it: `listed`)."""

    license_number: str
    site_id: str
    address: str
    kato: str
    region: str
    places: int | None
    listed: bool


async def lock_site(conn: Connection, license_number: str, site_id: str) -> ProviderSite | None:
    """The site row, locked until the transaction ends: serialises enrollments for its places."""
    row = await conn.fetchrow(
        "SELECT * FROM provider_sites WHERE license_number = $1 AND site_id = $2 FOR UPDATE",
        license_number,
        site_id,
    )
    if row is None:
        return None
    return ProviderSite(
        license_number=row["license_number"],
        site_id=row["site_id"],
        address=row["address"],
        kato=row["kato"],
        region=row["region"],
        places=row["places"],
        listed=row["listed"],
    )


async def find_site_license(conn: Connection, bin: str | None, site_id: str) -> list[str]:
    """License numbers (of a provider's BIN, when given) that hold a site with this id."""
    rows = await conn.fetch(
        "SELECT s.license_number FROM provider_sites s JOIN providers p USING (license_number)"
        " WHERE ($1::text IS NULL OR p.bin = $1) AND s.site_id = $2"
        " ORDER BY (p.status = 'active') DESC,"
        " s.license_number",
        bin,
        site_id,
    )
    return [r["license_number"] for r in rows]


async def provider_covers(conn: Connection, license_number: str, form: str, category: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT true FROM provider_subtypes"
            " WHERE license_number = $1 AND form = $2 AND category = $3",
            license_number,
            form,
            category,
        )
    )


async def taken_places(conn: Connection, license_number: str, site_id: str, *, for_iin: str) -> int:
    """Places taken at a site: by enrollments of the place-taking forms, and held by open
    offers but the one offered to this recipient (theirs to take). One round trip."""
    return int(
        await conn.fetchval(
            "SELECT (SELECT count(*) FROM enrollments"
            "  WHERE license_number = $1 AND site_id = $2 AND status <> 'ended'"
            "  AND form IN ('stationary', 'semi_stationary', 'temporary_stay'))"
            " + (SELECT count(*) FROM offers o JOIN waiting_requests w ON w.id = o.request_id"
            "  WHERE o.license_number = $1 AND o.site_id = $2 AND o.status = 'open'"
            "  AND w.iin_index <> $3)",
            license_number,
            site_id,
            iin_index(for_iin),
        )
    )


async def open_enrollment_for_form(conn: Connection, iin: str, form: str) -> EnrollmentRow | None:
    row = await conn.fetchrow(
        "SELECT * FROM enrollments WHERE iin_index = $1 AND form = $2 AND status <> 'ended'",
        iin_index(iin),
        form,
    )
    return _enrollment(row) if row is not None else None


async def insert_enrollment(conn: Connection, new: NewEnrollment) -> EnrollmentRow:
    row = await conn.fetchrow(
        """
        INSERT INTO enrollments (id, iin, license_number, site_id, provider_bin, region, form,
                                 category, start_date, status, iin_index)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'active', $10)
        RETURNING *
        """,
        new.id,
        cipher().seal(new.iin, column="iin"),
        new.license_number,
        new.site_id,
        new.provider_bin,
        new.region,
        new.form,
        new.category,
        new.start_date,
        iin_index(new.iin),
    )
    assert row is not None
    return _enrollment(row)


async def get_enrollment(
    conn: Connection, enrollment_id: str, *, lock: bool = False
) -> EnrollmentRow | None:
    sql = "SELECT * FROM enrollments WHERE id = $1::uuid"
    row = await conn.fetchrow(sql + (" FOR UPDATE" if lock else ""), enrollment_id)
    return _enrollment(row) if row is not None else None


async def end_enrollment(
    conn: Connection, enrollment_id: str, *, end_date: date, reason: str
) -> EnrollmentRow:
    row = await conn.fetchrow(
        "UPDATE enrollments SET status = 'ended', end_date = $2, end_reason = $3,"
        " seq = seq + 1, updated_at = now() WHERE id = $1::uuid RETURNING *",
        enrollment_id,
        end_date,
        reason,
    )
    assert row is not None
    return _enrollment(row)


async def list_enrollments(
    conn: Connection,
    *,
    provider: str | None,
    recipient: str | None,
    status: str | None,
    region: str | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[EnrollmentRow]:
    """Enrollments matching the filters, newest first, after a cursor (created_at, id)."""
    rows = await conn.fetch(
        """
        SELECT e.*, p.name AS provider_name FROM enrollments e
        JOIN providers p USING (license_number)
        WHERE ($1::text IS NULL OR e.provider_bin = $1 OR e.license_number = $1)
          AND ($2::bytea IS NULL OR e.iin_index = $2)
          AND ($3::text IS NULL OR e.status = $3)
          AND ($4::text IS NULL OR e.region = $4)
          AND ($5::timestamptz IS NULL OR (e.created_at, e.id) < ($5, $6::uuid))
        ORDER BY e.created_at DESC, e.id DESC
        LIMIT $7
        """,
        provider,
        iin_index(recipient) if recipient is not None else None,
        status,
        region,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return [_enrollment(r) for r in rows]


# Continuity of care


_ENROLLMENT_WITH_RECIPIENT = (
    """
    e.id::text AS enrollment_id, e.iin, e.provider_bin, e.license_number, e.region, e.form,
    e.category, e.start_date, e.seq, """
    + _CONTACT_SELECT
)


@dataclass(frozen=True)
class AffectedEnrollment(_Reachable):
    """An enrollment a license change (or time) moved, with its recipient's contacts opened;
    `end_date`, `disrupted_on` and `disability_group` where the query reads them."""

    enrollment_id: str
    iin: str
    provider_bin: str
    license_number: str
    region: str
    form: str
    category: str
    start_date: date
    seq: int
    end_date: date | None = None
    disrupted_on: date | None = None
    disability_group: int | None = None


def _affected(row: Record) -> AffectedEnrollment:
    return AffectedEnrollment(
        enrollment_id=row["enrollment_id"],
        iin=_required_text(row, "iin"),
        provider_bin=row["provider_bin"],
        license_number=row["license_number"],
        region=row["region"],
        form=row["form"],
        category=row["category"],
        start_date=row["start_date"],
        seq=row["seq"],
        **asdict(_opened_contact(row)),
        end_date=row.get("end_date"),
        disrupted_on=row.get("disrupted_on"),
        disability_group=row.get("disability_group"),
    )


@dataclass(frozen=True)
class AlternativeSite:
    """A site with free places for a (region, form, category), offered after a disruption."""

    region: str
    form: str
    category: str
    bin: str
    name: str
    license_number: str
    phone: str | None
    site_id: str
    address: str
    free_places: int


async def disrupt_active_enrollments(
    conn: Connection, *, license_number: str, disrupted_on: date, reason: str
) -> list[AffectedEnrollment]:
    """Every active enrollment of a license becomes disrupted; returns them with recipients."""
    rows = await conn.fetch(
        f"""
        WITH changed AS (
            UPDATE enrollments SET status = 'disrupted', disrupted_on = $2,
                                   disruption_reason = $3, seq = seq + 1, updated_at = now()
            WHERE license_number = $1 AND status = 'active'
            RETURNING *
        )
        SELECT {_ENROLLMENT_WITH_RECIPIENT}
        FROM changed e JOIN recipients r USING (iin_index)
        ORDER BY e.iin_index, e.form
        """,  # noqa: S608 (a constant column list, no input)
        license_number,
        disrupted_on,
        reason,
    )
    return [_affected(r) for r in rows]


async def alternatives_for(
    conn: Connection, *, excluded_license: str, subtypes: Sequence[tuple[str, str, str]]
) -> list[AlternativeSite]:
    """Up to three sites per (region, form, category) with free places, most free first."""
    rows = await conn.fetch(
        """
        SELECT w.region, w.form, w.category, a.*
        FROM unnest($2::text[], $3::text[], $4::text[]) AS w(region, form, category)
        CROSS JOIN LATERAL (
            SELECT p.bin, p.name, p.license_number, p.phone, o.site_id, o.address,
                   o.free_places
            FROM site_occupancy o
            JOIN providers p USING (license_number)
            JOIN provider_subtypes t ON t.license_number = p.license_number
                 AND t.form = w.form AND t.category = w.category
            WHERE o.region = w.region AND o.listed AND p.status = 'active'
              AND o.free_places > 0 AND p.license_number <> $1
            ORDER BY o.free_places DESC, p.name, p.license_number, o.site_id
            LIMIT 3
        ) a
        ORDER BY w.region, w.form, w.category, a.free_places DESC, a.name, a.license_number,
                 a.site_id
        """,
        excluded_license,
        [s[0] for s in subtypes],
        [s[1] for s in subtypes],
        [s[2] for s in subtypes],
    )
    return [
        AlternativeSite(
            region=r["region"],
            form=r["form"],
            category=r["category"],
            bin=r["bin"],
            name=r["name"],
            license_number=r["license_number"],
            phone=_opened_text(r, "phone"),
            site_id=r["site_id"],
            address=r["address"],
            free_places=r["free_places"],
        )
        for r in rows
    ]


async def store_alternatives(conn: Connection, items: Sequence[tuple[str, str]]) -> None:
    """Keep the alternatives offered with each disruption (enrollment id, JSON array)."""
    c = cipher()
    await conn.execute(
        """
        UPDATE enrollments e SET alternatives = t.alts
        FROM unnest($1::uuid[], $2::bytea[]) AS t(id, alts)
        WHERE e.id = t.id
        """,
        [i[0] for i in items],
        [c.seal(i[1], column="alternatives") for i in items],
    )


async def resume_disrupted_enrollments(
    conn: Connection, *, license_number: str
) -> list[AffectedEnrollment]:
    rows = await conn.fetch(
        f"""
        WITH changed AS (
            UPDATE enrollments SET status = 'active', disrupted_on = NULL,
                                   disruption_reason = NULL, alternatives = NULL,
                                   seq = seq + 1, updated_at = now()
            WHERE license_number = $1 AND status = 'disrupted'
            RETURNING *
        )
        SELECT {_ENROLLMENT_WITH_RECIPIENT}
        FROM changed e JOIN recipients r USING (iin_index)
        ORDER BY e.iin_index, e.form
        """,  # noqa: S608 (a constant column list, no input)
        license_number,
    )
    return [_affected(r) for r in rows]


async def end_open_enrollments(
    conn: Connection, *, license_number: str, effective_date: date, reason: str
) -> list[AffectedEnrollment]:
    """End every active or disrupted enrollment of a license; the day before revocation is the
    last date of service (never before the start date). Their recipients are unplaced from the
    revocation date; two changes are published (ended, then unplaced), so seq counts up by two.
    Returns them with recipients."""
    rows = await conn.fetch(
        f"""
        WITH changed AS (
            UPDATE enrollments SET status = 'ended',
                   end_date = greatest(start_date, $2::date - 1), end_reason = $3,
                   unplaced_on = $2, seq = seq + 2, updated_at = now()
            WHERE license_number = $1 AND status <> 'ended'
            RETURNING *
        )
        SELECT {_ENROLLMENT_WITH_RECIPIENT}, e.end_date
        FROM changed e JOIN recipients r USING (iin_index)
        ORDER BY e.iin_index, e.form
        """,  # noqa: S608 (a constant column list, no input)
        license_number,
        effective_date,
        reason,
    )
    return [_affected(r) for r in rows]


async def mark_placed_again(
    conn: Connection, *, iin: str, form: str, on: date, enrollment_id: uuid.UUID
) -> int:
    """An enrollment of a form started: the recipient's unplaced enrollments of that form leave
    the disruption board. Returns how many."""
    result = await conn.execute(
        "UPDATE enrollments SET placed_again_on = $3, placed_again_by = $4, updated_at = now()"
        " WHERE iin_index = $1 AND form = $2 AND unplaced_on IS NOT NULL"
        " AND placed_again_by IS NULL",
        iin_index(iin),
        form,
        on,
        enrollment_id,
    )
    return int(result.split()[-1])


@dataclass(frozen=True)
class DisruptionRow(_Reachable):
    """A recipient without service: the enrollment disrupted, or unplaced and not placed again
    (`state`), with the recipient's contacts opened."""

    enrollment_id: str
    iin: str
    region: str
    form: str
    category: str
    license_number: str
    provider_bin: str
    provider_name: str
    site_id: str
    disrupted_on: date | None
    disruption_reason: str | None
    alternatives: str | None  # JSON text
    state: str
    unplaced_on: date | None
    end_reason: str | None


def _disruption(row: Record) -> DisruptionRow:
    return DisruptionRow(
        enrollment_id=row["enrollment_id"],
        iin=_required_text(row, "iin"),
        **asdict(_opened_contact(row)),
        region=row["region"],
        form=row["form"],
        category=row["category"],
        license_number=row["license_number"],
        provider_bin=row["provider_bin"],
        provider_name=row["provider_name"],
        site_id=row["site_id"],
        disrupted_on=row["disrupted_on"],
        disruption_reason=row["disruption_reason"],
        alternatives=_opened_text(row, "alternatives"),
        state=row["state"],
        unplaced_on=row["unplaced_on"],
        end_reason=row["end_reason"],
    )


async def list_disruptions(
    conn: Connection, *, region: str | None, after: str | None, limit: int
) -> list[DisruptionRow]:
    rows = await conn.fetch(
        f"""
        SELECT e.id::text AS enrollment_id, e.iin, e.region, e.form,
               e.category, e.license_number, e.provider_bin, p.name AS provider_name,
               e.site_id, e.disrupted_on, e.disruption_reason, e.alternatives,
               {_CONTACT_SELECT},
               CASE WHEN e.status = 'disrupted' THEN 'disrupted' ELSE 'unplaced' END AS state,
               e.unplaced_on, e.end_reason
        FROM enrollments e
        JOIN recipients r USING (iin_index)
        JOIN providers p USING (license_number)
        WHERE (e.status = 'disrupted'
               OR (e.unplaced_on IS NOT NULL AND e.placed_again_by IS NULL))
          AND ($1::text IS NULL OR e.region = $1)
          AND ($2::uuid IS NULL OR e.id > $2::uuid)
        ORDER BY e.id
        LIMIT $3
        """,  # noqa: S608 (constant column lists, no input)
        region,
        after,
        limit,
    )
    return [_disruption(r) for r in rows]


# Bulk import

# A staged row: the ImportRecord (the file's columns and its line), then what _sealed_records adds.
STAGING_COLUMNS = (
    *IMPORT_COLUMNS,
    "line",
    "iin_index",
    "iin_sealed",
    "full_name_sealed",
    "birth_date_sealed",
    "guardian_name_sealed",
    "guardian_phone_sealed",
    "guardian_email_sealed",
    "sealed_digest",
    "search_name_sealed",
    "name_index",
)


async def _sealed_records(
    records: AsyncIterable[ImportRecord] | Iterable[ImportRecord],
) -> AsyncIterable[tuple[object, ...]]:
    """Each staged record with its sealed fields, blind index and digest, computed here so
    that only tokens reach the recipients table."""
    c = cipher()
    seal, index, digest = c.seal, c.blind_index, c.blind_digest
    if isinstance(records, AsyncIterable):
        source: AsyncIterable[ImportRecord] = records
    else:

        async def _iterate() -> AsyncIterable[ImportRecord]:
            for r in records:
                yield r

        source = _iterate()
    async for r in source:
        iin, name, born, g_name, g_phone, g_email = r[0], r[1], r[2], r[7], r[8], r[9]
        birth = born.isoformat()
        yield (
            *r,
            index(iin),
            seal(iin, column="iin"),
            seal(name, column="full_name"),
            seal(birth, column="birth_date"),
            seal(g_name, column="guardian_name"),
            seal(g_phone, column="guardian_phone"),
            seal(g_email, column="guardian_email"),
            digest([name, birth, g_name, g_phone, g_email]),
            *_name_search(name),
        )


async def stage_import(
    conn: Connection, records: AsyncIterable[ImportRecord] | Iterable[ImportRecord]
) -> None:
    """COPY valid rows into a staging table that lives until the transaction ends (in this
    session only); the clear values there feed the outbox events, the tokens the table."""
    await conn.execute(
        """
        CREATE TEMP TABLE import_staging (
            iin text NOT NULL, full_name text NOT NULL, birth_date date NOT NULL,
            category text NOT NULL, region text NOT NULL, disability_group smallint,
            language text NOT NULL, guardian_name text, guardian_phone text,
            guardian_email text, line integer NOT NULL, iin_index bytea NOT NULL,
            iin_sealed bytea NOT NULL, full_name_sealed bytea NOT NULL,
            birth_date_sealed bytea NOT NULL, guardian_name_sealed bytea,
            guardian_phone_sealed bytea, guardian_email_sealed bytea,
            sealed_digest bytea NOT NULL, search_name_sealed bytea, name_index bytea
        ) ON COMMIT DROP
        """
    )
    await conn.copy_records_to_table(
        "import_staging", records=_sealed_records(records), columns=list(STAGING_COLUMNS)
    )


@dataclass(frozen=True)
class StagedConflict:
    """A staged import row whose IIN is registered with different data."""

    line: int
    iin: str


@dataclass(frozen=True)
class ProviderCount:
    region: str
    legal_form: str
    status: str
    n: int


@dataclass(frozen=True)
class PlaceCount:
    region: str
    places: int
    occupied: int
    free: int


@dataclass(frozen=True)
class RegionCount:
    """Recipients counted in a region (None: overall)."""

    region: str | None
    n: int


@dataclass(frozen=True)
class ProviderFigure:
    license_number: str
    bin: str
    name: str
    legal_form: str
    status: str
    places: int
    recipients: int


@dataclass(frozen=True)
class WaitingFigure:
    """Recipients waiting per line (region, form, category), per region (`whole_region`) and
    for all (`overall`), with the median of their days waited."""

    region: str | None
    form: str | None
    category: str | None
    n: int
    median_days: float | None
    overall: bool
    whole_region: bool


async def conflicting_staged_rows(conn: Connection) -> list[StagedConflict]:
    """Staged rows whose IIN is registered with different data."""
    rows = await conn.fetch(
        """
        SELECT s.line, s.iin FROM import_staging s JOIN recipients r USING (iin_index)
        WHERE (r.sealed_digest, r.category, r.region, r.disability_group, r.language)
              IS DISTINCT FROM
              (s.sealed_digest, s.category, s.region, s.disability_group, s.language)
        ORDER BY s.line
        """
    )
    return [StagedConflict(line=r["line"], iin=r["iin"]) for r in rows]


async def unstage(conn: Connection, iins: Sequence[str]) -> None:
    await conn.execute("DELETE FROM import_staging WHERE iin = ANY($1::text[])", list(iins))


async def merge_staged_recipients(conn: Connection, *, correlation_id: str, time: datetime) -> int:
    """Insert the staged recipients not registered yet and, in the same statement, one
    `registry.recipient.registered.v1` outbox event per inserted row; returns how many."""
    # Sort the batch by index in memory: index inserts in key order touch fewer pages.
    await conn.execute("SET LOCAL work_mem = '64MB'")
    inserted = await conn.fetchval(
        """
        WITH inserted AS (
            INSERT INTO recipients (iin_index, iin, full_name, birth_date, category, region,
                                    disability_group, language, guardian_name,
                                    guardian_phone, guardian_email, sealed_digest,
                                    search_name, name_index)
            SELECT iin_index, iin_sealed, full_name_sealed, birth_date_sealed, category, region,
                   disability_group, language, guardian_name_sealed, guardian_phone_sealed,
                   guardian_email_sealed, sealed_digest, search_name_sealed, name_index
            FROM import_staging
            ORDER BY iin_index
            ON CONFLICT (iin_index) DO NOTHING
            RETURNING iin_index
        ), events AS (
            -- Ids from the import's random seed and the (unique) IIN: as unique as random ids,
            -- and far cheaper than a strong random number per row. The event carries the
            -- staged clear values (the outbox is cleared once published).
            SELECT md5($3::text || s.iin)::uuid AS event_id, s.*
            FROM inserted i JOIN import_staging s USING (iin_index)
        ), written AS (
            -- The envelope of `make_event`, written as text: free text goes through to_json.
            INSERT INTO outbox (event_id, event_type, subject, body, correlation_id)
            SELECT e.event_id, 'registry.recipient.registered.v1', e.iin,
                   concat(
                       '{"specversion":"1.0","id":"', e.event_id,
                       '","type":"registry.recipient.registered.v1","source":"/ssu/registry"',
                       ',"subject":"', e.iin, '","time":"', $2::text,
                       '","datacontenttype":"application/json","correlationid":',
                       to_json($1::text), ',"causationid":null,"data":{"iin":"', e.iin,
                       '","full_name":', to_json(e.full_name),
                       ',"birth_date":"', to_char(e.birth_date, 'YYYY-MM-DD'),
                       '","category":"', e.category, '","region":"', e.region,
                       '","disability_group":', coalesce(e.disability_group::text, 'null'),
                       ',"language":"', e.language, '","phone":null,"email":null,"guardian":',
                       CASE WHEN e.guardian_name IS NULL THEN 'null'
                           ELSE json_build_object(
                               'name', e.guardian_name, 'phone', e.guardian_phone,
                               'email', e.guardian_email, 'iin', NULL)::text END,
                       '}}'),
                   $1::text
            FROM events e
            RETURNING 1
        )
        SELECT count(*) FROM written
        """,
        correlation_id,
        time.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        uuid.uuid4().hex,
    )
    await conn.execute("SELECT pg_notify('ssu_outbox', '')")
    return int(inserted)


# Statistics


# The snapshot of each license in force on a date ($1): its latest (effective date, seq) then.
_LICENSES_ON = """
    licenses_on AS (
        SELECT DISTINCT ON (h.license_number) h.license_number, h.seq, h.status, h.legal_form,
               h.region
        FROM provider_history h
        WHERE h.effective_date <= $1::date
        ORDER BY h.license_number, h.effective_date DESC, h.seq DESC
    )
"""
# Enrollments that cover the date $1, with the status of their license on it: served when it
# was active, disrupted when suspended (a revocation ends them the day before).
_COVERING = """
    covering AS (
        SELECT e.license_number, e.site_id, e.region, e.form, e.category, e.iin_index,
               l.status AS license_status, l.legal_form
        FROM enrollments e JOIN licenses_on l USING (license_number)
        WHERE e.start_date <= $1::date AND (e.end_date IS NULL OR e.end_date >= $1::date)
    )
"""


async def provider_counts(conn: Connection, region: str | None, on: date) -> list[ProviderCount]:
    """Licenses known on a date by region, legal form and their status on it."""
    rows = await conn.fetch(
        f"""
        WITH {_LICENSES_ON}
        SELECT region, legal_form, status, count(*)::integer AS n FROM licenses_on
        WHERE ($2::text IS NULL OR region = $2) GROUP BY region, legal_form, status
        """,  # noqa: S608 (constant SQL, no input)
        on,
        region,
    )
    return [
        ProviderCount(region=r["region"], legal_form=r["legal_form"], status=r["status"], n=r["n"])
        for r in rows
    ]


async def place_counts(conn: Connection, region: str | None, on: date) -> list[PlaceCount]:
    """Places on a date of the sites of licenses not revoked then, by the site's region; taken
    by the enrollments covering it (disrupted ones keep their place)."""
    rows = await conn.fetch(
        f"""
        WITH {_LICENSES_ON}, {_COVERING},
        sites AS (
            SELECT s.license_number, s.site_id, s.region, s.places
            FROM licenses_on l
            JOIN provider_site_history s ON s.license_number = l.license_number AND s.seq = l.seq
            WHERE l.status <> 'revoked' AND ($2::text IS NULL OR s.region = $2)
        ), taken AS (
            SELECT license_number, site_id, count(*)::integer AS n FROM covering
            WHERE license_status IN ('active', 'suspended')
              AND form IN ('stationary', 'semi_stationary', 'temporary_stay')
            GROUP BY license_number, site_id
        )
        SELECT s.region, coalesce(sum(s.places), 0)::integer AS places,
               coalesce(sum(t.n) FILTER (WHERE s.places IS NOT NULL), 0)::integer AS occupied,
               coalesce(sum(greatest(s.places - coalesce(t.n, 0), 0)), 0)::integer AS free
        FROM sites s LEFT JOIN taken t USING (license_number, site_id)
        GROUP BY s.region
        """,  # noqa: S608 (constant SQL, no input)
        on,
        region,
    )
    return [
        PlaceCount(region=r["region"], places=r["places"], occupied=r["occupied"], free=r["free"])
        for r in rows
    ]


@dataclass(frozen=True)
class ServedCount:
    """Recipients served (`n`) in one cell of a breakdown: `grouped` names it (total, form,
    category, legal_form), `key` its value; `by_region`: per region, else for all."""

    grouped: str
    by_region: bool
    region: str | None
    key: str | None
    n: int


async def served_counts(conn: Connection, region: str | None, on: date) -> list[ServedCount]:
    """Distinct recipients served on a date (an enrollment covering it, its license active), by
    region and each breakdown.

    `grouped` names the breakdown of a row: total, form, category or legal_form (age bands:
    `served_birth_dates`)."""
    rows = await conn.fetch(
        f"""
        WITH {_LICENSES_ON}, {_COVERING},
        served AS (
            SELECT region, form, category, legal_form, iin_index FROM covering
            WHERE license_status = 'active' AND ($2::text IS NULL OR region = $2)
        )
        SELECT CASE
                   WHEN grouping(form) = 0 THEN 'form'
                   WHEN grouping(category) = 0 THEN 'category'
                   WHEN grouping(legal_form) = 0 THEN 'legal_form'
                   ELSE 'total' END AS grouped,
               grouping(region) = 0 AS by_region,
               region, coalesce(form, category, legal_form) AS key,
               count(DISTINCT iin_index)::integer AS n
        FROM served
        GROUP BY GROUPING SETS (
            (), (form), (category), (legal_form),
            (region), (region, form), (region, category), (region, legal_form))
        """,  # noqa: S608 (constant SQL, no input)
        on,
        region,
    )
    return [
        ServedCount(
            grouped=r["grouped"],
            by_region=r["by_region"],
            region=r["region"],
            key=r["key"],
            n=r["n"],
        )
        for r in rows
    ]


async def served_birth_dates(
    conn: Connection, region: str | None, on: date
) -> list[tuple[str, bytes, date]]:
    """(region, IIN index, birth date) of each recipient served on a date per region: birth
    dates are sealed, so age bands are counted from these in Python."""
    rows = await conn.fetch(
        f"""
        WITH {_LICENSES_ON}, {_COVERING}
        SELECT DISTINCT c.region, c.iin_index, r.birth_date
        FROM covering c JOIN recipients r USING (iin_index)
        WHERE c.license_status = 'active' AND ($2::text IS NULL OR c.region = $2)
        """,  # noqa: S608 (constant SQL, no input)
        on,
        region,
    )
    c = cipher()
    out = []
    for r in rows:
        born = c.open_date(r["birth_date"], column="birth_date")
        assert born is not None
        out.append((r["region"], r["iin_index"], born))
    return out


async def disrupted_counts(conn: Connection, region: str | None, on: date) -> list[RegionCount]:
    """Distinct recipients disrupted on a date (an enrollment covering it, its license
    suspended), per region and overall (region null)."""
    rows = await conn.fetch(
        f"""
        WITH {_LICENSES_ON}, {_COVERING}
        SELECT region, count(DISTINCT iin_index)::integer AS n FROM covering
        WHERE license_status = 'suspended' AND ($2::text IS NULL OR region = $2)
        GROUP BY GROUPING SETS ((region), ())
        """,  # noqa: S608 (constant SQL, no input)
        on,
        region,
    )
    return [RegionCount(region=r["region"], n=r["n"]) for r in rows]


async def unplaced_counts(conn: Connection, region: str | None, on: date) -> list[RegionCount]:
    """Distinct recipients unplaced on a date (their provider's license revoked, not placed
    again yet), per region and overall (region null)."""
    rows = await conn.fetch(
        """
        SELECT region, count(DISTINCT iin_index)::integer AS n FROM enrollments
        WHERE unplaced_on <= $1::date
          AND (placed_again_on IS NULL OR placed_again_on > $1::date)
          AND ($2::text IS NULL OR region = $2)
        GROUP BY GROUPING SETS ((region), ())
        """,
        on,
        region,
    )
    return [RegionCount(region=r["region"], n=r["n"]) for r in rows]


async def provider_figures(conn: Connection, region: str, on: date) -> list[ProviderFigure]:
    """Every provider of a region known on a date (including those serving nobody) with its
    status, places and recipients served then."""
    rows = await conn.fetch(
        f"""
        WITH {_LICENSES_ON}, {_COVERING}
        SELECT l.license_number, p.bin, p.name, l.legal_form, l.status,
               coalesce((SELECT sum(s.places) FROM provider_site_history s
                         WHERE s.license_number = l.license_number AND s.seq = l.seq), 0)::integer
                   AS places,
               (SELECT count(DISTINCT c.iin_index) FROM covering c
                WHERE c.license_number = l.license_number AND c.license_status = 'active'
               )::integer AS recipients
        FROM licenses_on l JOIN providers p USING (license_number)
        WHERE l.region = $2
        ORDER BY p.name, l.license_number
        """,  # noqa: S608 (constant SQL, no input)
        on,
        region,
    )

    # Waiting list and offers
    return [
        ProviderFigure(
            license_number=r["license_number"],
            bin=r["bin"],
            name=r["name"],
            legal_form=r["legal_form"],
            status=r["status"],
            places=r["places"],
            recipients=r["recipients"],
        )
        for r in rows
    ]


async def lock_places(conn: Connection, regions: Iterable[str]) -> None:
    """Hold the places of regions until the transaction ends. Every writer that takes a place
    (an enrollment, an offer) or changes what is free (a license snapshot) takes this first,
    in region order, so offers are made from a true count on any number of replicas."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext('ssu.places.' || r))"
        " FROM (SELECT DISTINCT r FROM unnest($1::text[]) AS r ORDER BY r) AS regions",
        sorted(set(regions)),
    )


async def site_region(conn: Connection, license_number: str, site_id: str) -> str | None:
    region: str | None = await conn.fetchval(
        "SELECT region FROM provider_sites WHERE license_number = $1 AND site_id = $2",
        license_number,
        site_id,
    )
    return region


async def license_regions(conn: Connection, license_number: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT DISTINCT region FROM provider_sites WHERE license_number = $1", license_number
    )
    return [r["region"] for r in rows]


async def enrollment_region(conn: Connection, enrollment_id: str) -> str | None:
    region: str | None = await conn.fetchval(
        "SELECT region FROM enrollments WHERE id = $1::uuid", enrollment_id
    )
    return region


def _line_key(first: int) -> str:
    """The waiting line's sort key with the criteria's weights as parameters first..first+2."""
    return (
        f"(CASE WHEN w.disrupted THEN 0 ELSE ${first}::int END"
        f" + CASE WHEN w.child THEN 0 ELSE ${first + 1}::int END"
        f" + CASE WHEN w.group_one THEN 0 ELSE ${first + 2}::int END),"
        " w.asked_on, w.created_at, w.id"
    )


def _weights(weights: dict[str, int]) -> list[int]:
    return [weights["disrupted"], weights["child"], weights["group_one"]]


_WAITING_COLUMNS = (
    """
    w.id::text AS request_id, w.iin, w.region, w.form, w.category, w.preferred_bins,
    w.disrupted, w.child, w.group_one, w.asked_on, w.reason, w.status, w.closed_on,
    w.closed_reason, w.enrollment_id::text AS enrollment_id, w.created_at, """
    + _CONTACT_SELECT
)


@dataclass(frozen=True)
class WaitingRequest(_Reachable):
    """A request on a waiting line (waiting or closed), with its recipient's contacts opened."""

    request_id: str
    iin: str
    region: str
    form: str
    category: str
    preferred_bins: list[str]
    disrupted: bool
    child: bool
    group_one: bool
    asked_on: date
    reason: str | None
    status: str
    closed_on: date | None
    closed_reason: str | None
    enrollment_id: str | None
    created_at: datetime


def _waiting(row: Record) -> WaitingRequest:
    return WaitingRequest(
        request_id=row["request_id"],
        iin=_required_text(row, "iin"),
        region=row["region"],
        form=row["form"],
        category=row["category"],
        preferred_bins=list(row["preferred_bins"]),
        disrupted=row["disrupted"],
        child=row["child"],
        group_one=row["group_one"],
        asked_on=row["asked_on"],
        reason=row["reason"],
        status=row["status"],
        closed_on=row["closed_on"],
        closed_reason=row["closed_reason"],
        enrollment_id=row["enrollment_id"],
        created_at=row["created_at"],
        **asdict(_opened_contact(row)),
    )


@dataclass(frozen=True)
class HeldOffer:
    """The open offer holding a place for a waiting request."""

    offer_id: str
    license_number: str
    site_id: str
    made_on: date
    expires_on: date
    provider_name: str


@dataclass(frozen=True)
class WaitingEntry:
    """A waiting request with its place in its line and the line's length (None: closed)."""

    request: WaitingRequest
    position: int | None
    waiting: int | None
    offer: HeldOffer | None


@dataclass(frozen=True)
class WaitingCandidate:
    """A waiting request without an open offer and the sites offered to it before."""

    request: WaitingRequest
    offered_before: list[str]  # license number / site id


@dataclass(frozen=True)
class NewWaitingRequest:
    id: uuid.UUID
    iin: str
    region: str
    form: str
    category: str
    preferred_bins: list[str]
    disrupted: bool
    child: bool
    group_one: bool
    asked_on: date
    reason: str | None
    from_enrollment: str | None


@dataclass(frozen=True)
class OpenRequest:
    request_id: str
    disrupted: bool


@dataclass(frozen=True)
class OpenOffer:
    offer_id: str
    license_number: str
    site_id: str


@dataclass(frozen=True)
class OfferInRegion:
    offer_id: str
    region: str


@dataclass(frozen=True)
class FreeSite:
    """A listed site of an active license with a free place (`free` None: no limit)."""

    license_number: str
    site_id: str
    address: str
    bin: str
    name: str
    free: int | None
    forms: list[str]
    categories: list[str]


@dataclass(frozen=True)
class OfferRow:
    """An offer of a place to a waiting request, with the request."""

    offer_id: str
    license_number: str
    site_id: str
    made_on: date
    expires_on: date
    offer_status: str
    offer_closed_on: date | None
    offer_enrollment_id: str | None
    site_address: str
    provider_bin: str
    provider_name: str
    request: WaitingRequest


def _offer(row: Record) -> OfferRow:
    return OfferRow(
        offer_id=row["offer_id"],
        license_number=row["license_number"],
        site_id=row["site_id"],
        made_on=row["made_on"],
        expires_on=row["expires_on"],
        offer_status=row["offer_status"],
        offer_closed_on=row["offer_closed_on"],
        offer_enrollment_id=row["offer_enrollment_id"],
        site_address=row["site_address"],
        provider_bin=row["provider_bin"],
        provider_name=row["provider_name"],
        request=_waiting(row),
    )


async def insert_waiting(conn: Connection, new: NewWaitingRequest) -> str:
    await conn.execute(
        """
        INSERT INTO waiting_requests (id, iin_index, iin, region, form, category,
                                      preferred_bins, disrupted, child, group_one, asked_on,
                                      reason, from_enrollment)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
        """,
        new.id,
        iin_index(new.iin),
        cipher().seal(new.iin, column="iin"),
        new.region,
        new.form,
        new.category,
        new.preferred_bins,
        new.disrupted,
        new.child,
        new.group_one,
        new.asked_on,
        new.reason,
        new.from_enrollment,
    )
    return str(new.id)


async def providers_of_subtype(
    conn: Connection, region: str, form: str, category: str | None
) -> set[str]:
    """BINs of active licenses with a listed site in a region covering a subtype."""
    rows = await conn.fetch(
        "SELECT DISTINCT p.bin FROM providers p"
        " JOIN provider_subtypes t USING (license_number)"
        " JOIN provider_sites s USING (license_number)"
        " WHERE p.status = 'active' AND s.listed AND s.region = $1 AND t.form = $2"
        " AND ($3::text IS NULL OR t.category = $3)",
        region,
        form,
        category,
    )
    return {r["bin"] for r in rows}


async def waiting_of(conn: Connection, iin: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT id::text FROM waiting_requests WHERE iin_index = $1 AND status = 'waiting'",
        iin_index(iin),
    )
    return [r["id"] for r in rows]


async def waiting_for_form(conn: Connection, iin: str, form: str) -> OpenRequest | None:
    row = await conn.fetchrow(
        "SELECT id::text AS request_id, disrupted FROM waiting_requests"
        " WHERE iin_index = $1 AND form = $2 AND status = 'waiting'",
        iin_index(iin),
        form,
    )
    return OpenRequest(row["request_id"], row["disrupted"]) if row is not None else None


async def waiting_requests(
    conn: Connection,
    weights: dict[str, int],
    *,
    request_id: str | None = None,
    region: str | None = None,
    form: str | None = None,
    category: str | None = None,
    after: tuple[str, str, int] | None = None,
    limit: int = 1,
) -> list[WaitingEntry]:
    """Waiting requests with their place in their line (region, form, category) and the
    line's length, in line order; one request by id (waiting or closed: a closed one has no
    position), or a page of the waiting ones of a region after (form, category, position)."""
    rows = await conn.fetch(
        f"""
        WITH line AS (
            SELECT w.id,
                   row_number() OVER (PARTITION BY w.region, w.form, w.category
                                      ORDER BY {_line_key(1)}) AS position,
                   count(*) OVER (PARTITION BY w.region, w.form, w.category) AS waiting
            FROM waiting_requests w
            WHERE w.status = 'waiting'
              AND ($4::uuid IS NULL OR (w.region, w.form, w.category) =
                   (SELECT region, form, category FROM waiting_requests WHERE id = $4::uuid))
              AND ($5::text IS NULL OR w.region = $5)
              AND ($6::text IS NULL OR w.form = $6)
              AND ($7::text IS NULL OR w.category = $7)
        )
        SELECT {_WAITING_COLUMNS}, l.position, l.waiting,
               o.id::text AS offer_id, o.license_number AS offer_license,
               o.site_id AS offer_site, o.expires_on AS offer_expires_on,
               o.made_on AS offer_made_on, op.name AS offer_provider_name
        FROM waiting_requests w
        JOIN recipients r USING (iin_index)
        LEFT JOIN line l ON l.id = w.id
        LEFT JOIN offers o ON o.request_id = w.id AND o.status = 'open'
        LEFT JOIN providers op ON op.license_number = o.license_number
        WHERE ($4::uuid IS NOT NULL AND w.id = $4::uuid)
           OR ($4::uuid IS NULL AND l.id IS NOT NULL
               AND ($8::text IS NULL OR (w.form, w.category, l.position) > ($8, $9, $10)))
        ORDER BY w.form, w.category, l.position
        LIMIT $11
        """,  # noqa: S608 (constant SQL fragments, no input)
        *_weights(weights),
        request_id,
        region,
        form,
        category,
        after[0] if after else None,
        after[1] if after else None,
        after[2] if after else None,
        limit,
    )
    return [
        WaitingEntry(
            request=_waiting(r),
            position=r["position"],
            waiting=r["waiting"],
            offer=HeldOffer(
                offer_id=r["offer_id"],
                license_number=r["offer_license"],
                site_id=r["offer_site"],
                made_on=r["offer_made_on"],
                expires_on=r["offer_expires_on"],
                provider_name=r["offer_provider_name"],
            )
            if r["offer_id"]
            else None,
        )
        for r in rows
    ]


async def close_waiting(
    conn: Connection,
    request_id: str,
    *,
    status: str,
    on: date,
    reason: str,
    enrollment_id: uuid.UUID | None = None,
) -> bool:
    result = await conn.execute(
        "UPDATE waiting_requests SET status = $2, closed_on = $3, closed_reason = $4,"
        " enrollment_id = $5, updated_at = now() WHERE id = $1::uuid AND status = 'waiting'",
        request_id,
        status,
        on,
        reason,
        enrollment_id,
    )
    return result.endswith(" 1")


async def waiting_from_enrollments(conn: Connection, enrollment_ids: Sequence[str]) -> list[str]:
    """Waiting requests a lost place put on the line, of these enrollments."""
    rows = await conn.fetch(
        "SELECT id::text FROM waiting_requests WHERE status = 'waiting'"
        " AND from_enrollment = ANY($1::uuid[])",
        list(enrollment_ids),
    )
    return [r["id"] for r in rows]


async def free_sites(conn: Connection, region: str) -> list[FreeSite]:
    """Listed sites of active licenses in a region with a free place (places less occupied
    places less open offers; NULL: no limit), and the subtypes each covers."""
    rows = await conn.fetch(
        """
        SELECT s.license_number, s.site_id, s.address, p.bin, p.name, s.free_places AS free,
               array_agg(t.form) AS forms, array_agg(t.category) AS categories
        FROM site_occupancy s
        JOIN providers p USING (license_number)
        JOIN provider_subtypes t USING (license_number)
        WHERE s.region = $1 AND s.listed AND p.status = 'active'
          AND (s.places IS NULL OR s.free_places > 0)
        GROUP BY s.license_number, s.site_id, s.address, p.bin, p.name, s.free_places
        ORDER BY s.free_places DESC NULLS LAST, p.name, s.license_number, s.site_id
        """,
        region,
    )
    return [
        FreeSite(
            license_number=r["license_number"],
            site_id=r["site_id"],
            address=r["address"],
            bin=r["bin"],
            name=r["name"],
            free=r["free"],
            forms=list(r["forms"]),
            categories=list(r["categories"]),
        )
        for r in rows
    ]


async def waiting_candidates(
    conn: Connection, region: str, weights: dict[str, int]
) -> list[WaitingCandidate]:
    """The region's waiting requests without an open offer, in line order, with the sites
    offered to them before (not offered again) and their contacts."""
    rows = await conn.fetch(
        f"""
        SELECT {_WAITING_COLUMNS},
               coalesce((SELECT array_agg(o.license_number || '/' || o.site_id)
                         FROM offers o WHERE o.request_id = w.id), '{{}}') AS offered_before
        FROM waiting_requests w
        JOIN recipients r USING (iin_index)
        WHERE w.region = $4 AND w.status = 'waiting'
          AND NOT EXISTS (SELECT 1 FROM offers o WHERE o.request_id = w.id AND o.status = 'open')
        ORDER BY {_line_key(1)}
        """,  # noqa: S608 (constant SQL fragments, no input)
        *_weights(weights),
        region,
    )
    return [WaitingCandidate(_waiting(r), list(r["offered_before"])) for r in rows]


async def insert_offers(
    conn: Connection, offers: Sequence[tuple[uuid.UUID, str, str, str, date, date]]
) -> None:
    """(id, request id, license number, site id, made on, expires on) per offer."""
    await conn.executemany(
        "INSERT INTO offers (id, request_id, license_number, site_id, made_on, expires_on)"
        " VALUES ($1, $2::uuid, $3, $4, $5, $6)",
        offers,
    )


_OFFER = f"""
    SELECT o.id::text AS offer_id, o.license_number, o.site_id, o.made_on, o.expires_on,
           o.status AS offer_status, o.closed_on AS offer_closed_on,
           o.enrollment_id::text AS offer_enrollment_id, s.address AS site_address,
           p.bin AS provider_bin, p.name AS provider_name, {_WAITING_COLUMNS}
    FROM offers o
    JOIN waiting_requests w ON w.id = o.request_id
    JOIN recipients r USING (iin_index)
    JOIN providers p ON p.license_number = o.license_number
    JOIN provider_sites s ON s.license_number = o.license_number AND s.site_id = o.site_id
"""  # noqa: S608 (constant SQL fragments, no input)


async def get_offer(conn: Connection, offer_id: str) -> OfferRow | None:
    row = await conn.fetchrow(_OFFER + " WHERE o.id = $1::uuid", offer_id)
    return _offer(row) if row is not None else None


async def offers_by_ids(conn: Connection, offer_ids: Sequence[str]) -> list[OfferRow]:
    rows = await conn.fetch(_OFFER + " WHERE o.id = ANY($1::uuid[]) ORDER BY o.id", offer_ids)
    return [_offer(r) for r in rows]


async def list_offers(
    conn: Connection, *, region: str | None, status: str | None, after: str | None, limit: int
) -> list[OfferRow]:
    rows = await conn.fetch(
        _OFFER
        + " WHERE ($1::text IS NULL OR w.region = $1) AND ($2::text IS NULL OR o.status = $2)"
        " AND ($3::uuid IS NULL OR o.id > $3::uuid) ORDER BY o.id LIMIT $4",
        region,
        status,
        after,
        limit,
    )
    return [_offer(r) for r in rows]


async def close_offers(
    conn: Connection,
    offer_ids: Sequence[str],
    *,
    status: str,
    on: date,
    enrollment_id: uuid.UUID | None = None,
) -> list[str]:
    """Close the open offers among these; returns the ids closed."""
    rows = await conn.fetch(
        "UPDATE offers SET status = $2, closed_on = $3, enrollment_id = $4"
        " WHERE id = ANY($1::uuid[]) AND status = 'open' RETURNING id::text",
        list(offer_ids),
        status,
        on,
        enrollment_id,
    )
    return sorted(r["id"] for r in rows)


async def open_offer_of(conn: Connection, request_id: str) -> OpenOffer | None:
    row = await conn.fetchrow(
        "SELECT id::text AS offer_id, license_number, site_id FROM offers"
        " WHERE request_id = $1::uuid AND status = 'open'",
        request_id,
    )
    if row is None:
        return None
    return OpenOffer(row["offer_id"], row["license_number"], row["site_id"])


async def open_offers_where(
    conn: Connection,
    *,
    license_number: str | None = None,
    request_ids: Sequence[str] | None = None,
    due_before: date | None = None,
) -> list[OfferInRegion]:
    """Open offers at a license's sites that are no longer open to placements (license not
    active, site not listed), of some requests, or whose hold ended before a day."""
    rows = await conn.fetch(
        """
        SELECT o.id::text AS offer_id, w.region FROM offers o
        JOIN waiting_requests w ON w.id = o.request_id
        JOIN providers p ON p.license_number = o.license_number
        JOIN provider_sites s ON s.license_number = o.license_number AND s.site_id = o.site_id
        WHERE o.status = 'open'
          AND ($1::text IS NULL OR (o.license_number = $1
                                    AND (p.status <> 'active' OR NOT s.listed)))
          AND ($2::uuid[] IS NULL OR o.request_id = ANY($2::uuid[]))
          AND ($3::date IS NULL OR o.expires_on < $3)
        ORDER BY o.id
        """,
        license_number,
        list(request_ids) if request_ids is not None else None,
        due_before,
    )
    return [OfferInRegion(r["offer_id"], r["region"]) for r in rows]


async def stale_disruptions(conn: Connection, *, disrupted_by: date) -> list[AffectedEnrollment]:
    """Disrupted enrollments of place-taking forms since a day or earlier whose recipient is
    not waiting for that form yet: the disruption nobody resolved in time."""
    rows = await conn.fetch(
        f"""
        SELECT {_ENROLLMENT_WITH_RECIPIENT}, r.disability_group, e.disrupted_on
        FROM enrollments e JOIN recipients r USING (iin_index)
        WHERE e.status = 'disrupted' AND e.disrupted_on <= $1
          AND e.form IN ('stationary', 'semi_stationary', 'temporary_stay')
          AND NOT EXISTS (SELECT 1 FROM waiting_requests w WHERE w.iin_index = e.iin_index
                          AND w.form = e.form AND w.status = 'waiting')
        ORDER BY e.disrupted_on, e.id
        """,  # noqa: S608 (a constant column list, no input)
        disrupted_by,
    )
    return [_affected(r) for r in rows]


async def stale_disruption_regions(conn: Connection, *, disrupted_by: date) -> list[str]:
    rows = await conn.fetch(
        "SELECT DISTINCT region FROM enrollments WHERE status = 'disrupted' AND disrupted_on <= $1",
        disrupted_by,
    )
    return [r["region"] for r in rows]


async def waiting_figures(conn: Connection, region: str | None, on: date) -> list[WaitingFigure]:
    """Recipients waiting on a day and the median of their days waited, per line (region,
    form, category), per region and for all (region NULL), from the requests' dates."""
    rows = await conn.fetch(
        """
        SELECT region, form, category, count(*)::integer AS n,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY ($2::date - asked_on)) AS median_days,
               GROUPING(region) = 1 AS overall, GROUPING(form) = 1 AS whole_region
        FROM waiting_requests
        WHERE asked_on <= $2 AND (closed_on IS NULL OR closed_on > $2)
          AND ($1::text IS NULL OR region = $1)
        GROUP BY GROUPING SETS ((region, form, category), (region), ())
        ORDER BY region NULLS FIRST, form NULLS FIRST, category NULLS FIRST
        """,
        region,
        on,
    )

    # Gauges
    return [
        WaitingFigure(
            region=r["region"],
            form=r["form"],
            category=r["category"],
            n=r["n"],
            median_days=r["median_days"],
            overall=r["overall"],
            whole_region=r["whole_region"],
        )
        for r in rows
    ]


async def enrollments_by_status(conn: Connection) -> list[tuple[dict[str, str], float]]:
    """Enrollments not ended, by status and region (scraped as a gauge)."""
    rows = await conn.fetch(
        "SELECT status, region, count(*) AS n FROM enrollments WHERE status <> 'ended'"
        " GROUP BY status, region"
    )
    return [({"status": r["status"], "region": r["region"]}, float(r["n"])) for r in rows]


async def waiting_by_line(conn: Connection) -> list[tuple[dict[str, str], float]]:
    """Recipients waiting for a place, by region, form and category (scraped as a gauge)."""
    rows = await conn.fetch(
        "SELECT region, form, category, count(*) AS n FROM waiting_requests"
        " WHERE status = 'waiting' GROUP BY region, form, category"
    )
    return [
        ({"region": r["region"], "form": r["form"], "category": r["category"]}, float(r["n"]))
        for r in rows
    ]


async def waiting_median_days(conn: Connection) -> list[tuple[dict[str, str], float]]:
    """The median of the days waited so far, by region, form and category (a gauge)."""
    rows = await conn.fetch(
        "SELECT region, form, category, percentile_cont(0.5) WITHIN GROUP"
        " (ORDER BY ((now() AT TIME ZONE 'Asia/Almaty')::date - asked_on)) AS days"
        " FROM waiting_requests WHERE status = 'waiting' GROUP BY region, form, category"
    )
    return [
        ({"region": r["region"], "form": r["form"], "category": r["category"]}, float(r["days"]))
        for r in rows
    ]
