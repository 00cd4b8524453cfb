"""All SQL of the billing service."""

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Literal

from asyncpg import Record
from ssu_common import Connection, FieldCipher, GaugeRows, SealedTable

# IINs are sealed (ssu_common.crypto); enrollments are found by the IIN's blind index.
SEALED = (
    SealedTable("enrollments", ("enrollment_id", "text"), ("iin",), {"iin_index": "iin"}),
    SealedTable("providers", ("bin", "text"), ("contact",)),
    # Lines have a composite key; the row's ctid is stable while the batch holds its lock.
    SealedTable("invoice_lines", ("ctid", "tid"), ("iin",)),
    SealedTable("attendance_confirmations", ("ctid", "tid"), ("dispute_reason",)),
)
_cipher: list[FieldCipher] = []


def use_cipher(cipher: FieldCipher) -> None:
    _cipher[:] = [cipher]


def cipher() -> FieldCipher:
    if not _cipher:
        raise RuntimeError("billing store used before use_cipher()")
    return _cipher[0]


def _returned(row: Record | None) -> Record:
    """The row of a statement that returns one whenever its caller's rows exist (locked)."""
    if row is None:
        raise LookupError("the statement returned no row")
    return row


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
    conn: Connection,
    *,
    license_number: str,
    bin: str,
    status: str,
    seq: int,
    subtypes: str,
    sites: str = "[]",
) -> bool:
    """Keep the snapshot when its seq is newer than the one held; False when it is not."""
    row = await conn.fetchrow(
        "INSERT INTO licenses (license_number, bin, status, seq, subtypes, sites)"
        " VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb)"
        " ON CONFLICT (license_number) DO UPDATE SET bin = EXCLUDED.bin,"
        "  status = EXCLUDED.status, seq = EXCLUDED.seq, subtypes = EXCLUDED.subtypes,"
        "  sites = EXCLUDED.sites, updated_at = now()"
        " WHERE licenses.seq < EXCLUDED.seq"
        " RETURNING seq",
        license_number,
        bin,
        status,
        seq,
        subtypes,
        sites,
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
    until: date | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO license_transitions"
        " (license_number, seq, status, effective_date, event_type, until)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        license_number,
        seq,
        status,
        effective_date,
        event_type,
        until,
    )


async def refresh_license_active_ranges(conn: Connection, license_number: str) -> None:
    """Derive the dates a license is active on from its status changes in seq order; a timed
    suspension is active again from its `until` (up to the next change), reinstated or not."""
    await conn.execute(
        "UPDATE licenses SET active = coalesce(("
        "  SELECT range_agg(r) FROM ("
        "    SELECT CASE WHEN status = 'active' THEN daterange(effective_date, nxt_or_open)"
        "      ELSE daterange(greatest(until, effective_date), nxt_or_open) END AS r"
        "    FROM (SELECT status, effective_date, until,"
        "      CASE WHEN nxt IS NULL THEN NULL"
        "       ELSE greatest(effective_date, until, nxt) END AS nxt_or_open"
        "     FROM (SELECT status, effective_date, until,"
        "       lead(effective_date) OVER (ORDER BY seq) AS nxt"
        "      FROM license_transitions WHERE license_number = $1) s) s2"
        "    WHERE status = 'active' OR (status = 'suspended' AND until IS NOT NULL)) t"
        "  WHERE NOT isempty(r)), '{}'::datemultirange)"
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
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " ON CONFLICT (bin) DO UPDATE SET name = EXCLUDED.name,"
        "  legal_form = EXCLUDED.legal_form, region = EXCLUDED.region,"
        "  contact = EXCLUDED.contact, license_number = EXCLUDED.license_number,"
        "  status = EXCLUDED.status, seq = EXCLUDED.seq, updated_at = now()",
        bin,
        name,
        legal_form,
        region,
        cipher().seal(contact, column="contact"),
        license_number,
        status,
        seq,
    )


async def provider_known(conn: Connection, bin: str) -> bool:
    """A licensed provider of this BIN has been told of (by a license event)."""
    return await conn.fetchval("SELECT 1 FROM providers WHERE bin = $1", bin) is not None


async def license_active_ranges(conn: Connection, license_number: str) -> str | None:
    value = await conn.fetchval(
        "SELECT active::text FROM licenses WHERE license_number = $1", license_number
    )
    return None if value is None else str(value)


@dataclass(frozen=True)
class LicenseView:
    """What billing holds of a license: its snapshot, its provider's region and name, and the
    dates it is active on (`active_until[i]` the first date after `active_from[i]`; None open)."""

    license_number: str
    bin: str
    provider_name: str | None
    region: str | None
    status: str
    seq: int
    # the license's subtypes as JSON text: [{"form": ..., "category": ...}]
    subtypes: str
    active_from: list[date]
    active_until: list[date | None]
    updated_at: datetime


@dataclass(frozen=True)
class LicenseTransition:
    seq: int
    event_type: str
    status: str
    effective_date: date
    until: date | None
    recorded_at: datetime


async def license_view(conn: Connection, license_number: str) -> LicenseView | None:
    """What billing holds of a license: its snapshot, provider region and active dates."""
    row = await conn.fetchrow(
        "SELECT l.*, p.region, p.name AS provider_name,"
        "  (SELECT coalesce(array_agg(lower(r) ORDER BY lower(r)), '{}') FROM unnest(l.active) r)"
        "   AS active_from,"
        "  (SELECT coalesce(array_agg(upper(r) ORDER BY lower(r)), '{}') FROM unnest(l.active) r)"
        "   AS active_until"
        " FROM licenses l LEFT JOIN providers p ON p.bin = l.bin WHERE l.license_number = $1",
        license_number,
    )
    if row is None:
        return None
    return LicenseView(
        license_number=row["license_number"],
        bin=row["bin"],
        provider_name=row["provider_name"],
        region=row["region"],
        status=row["status"],
        seq=row["seq"],
        subtypes=row["subtypes"],
        active_from=list(row["active_from"]),
        active_until=list(row["active_until"]),
        updated_at=row["updated_at"],
    )


async def license_transitions(conn: Connection, license_number: str) -> list[LicenseTransition]:
    rows = await conn.fetch(
        "SELECT seq, event_type, status, effective_date, until, recorded_at"
        " FROM license_transitions WHERE license_number = $1 ORDER BY seq",
        license_number,
    )
    return [LicenseTransition(**dict(r.items())) for r in rows]


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
    seq: int | None,
    person_key: str | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO enrollments (enrollment_id, iin, provider_bin, license_number, site_id,"
        " region, form, category, start_date, status, seq, iin_index, name_index)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'active', coalesce($10, 0), $11, $12)"
        " ON CONFLICT (enrollment_id) DO NOTHING",
        enrollment_id,
        cipher().seal(iin, column="iin"),
        provider_bin,
        license_number,
        site_id,
        region,
        form,
        category,
        start_date,
        seq,
        cipher().blind_index(iin),
        None if person_key is None else cipher().blind_index(person_key),
    )


class EnrollmentChange(Enum):
    APPLIED = "applied"
    STALE = "stale"  # the enrollment holds a newer seq (or is ended, for an event without one)
    UNKNOWN = "unknown"  # its start has not arrived yet


async def _change_outcome(conn: Connection, result: str, enrollment_id: str) -> EnrollmentChange:
    if result != "UPDATE 0":
        return EnrollmentChange.APPLIED
    known = await conn.fetchval("SELECT 1 FROM enrollments WHERE enrollment_id = $1", enrollment_id)
    return EnrollmentChange.STALE if known else EnrollmentChange.UNKNOWN


async def end_enrollment(
    conn: Connection, *, enrollment_id: str, end_date: date, seq: int | None
) -> EnrollmentChange:
    """Ended on end_date, unless the enrollment holds a newer seq."""
    result = await conn.execute(
        "UPDATE enrollments SET end_date = $2, status = 'ended', seq = coalesce($3, seq),"
        " updated_at = clock_timestamp()"
        " WHERE enrollment_id = $1 AND ($3::integer IS NULL OR seq < $3)",
        enrollment_id,
        end_date,
        seq,
    )
    return await _change_outcome(conn, result, enrollment_id)


async def set_enrollment_status(
    conn: Connection, *, enrollment_id: str, status: str, seq: int | None
) -> EnrollmentChange:
    """Disrupted/active, unless the enrollment holds a newer seq; without a seq (an older
    publisher) an ended enrollment stays ended."""
    result = await conn.execute(
        "UPDATE enrollments SET status = $2, seq = coalesce($3, seq),"
        " updated_at = clock_timestamp()"
        " WHERE enrollment_id = $1 AND CASE WHEN $3::integer IS NULL THEN status <> 'ended'"
        " ELSE seq < $3 END",
        enrollment_id,
        status,
        seq,
    )
    return await _change_outcome(conn, result, enrollment_id)


# deaths (the state population register's notices, through registry)


async def record_death(conn: Connection, *, iin: str, died_on: date) -> None:
    """The person died on died_on, by the IIN's blind index; a redelivery changes nothing and
    of two notices for one person the earlier date is kept (no date after it is paid)."""
    await conn.execute(
        "INSERT INTO deaths (iin_index, died_on) VALUES ($1, $2)"
        " ON CONFLICT (iin_index) DO UPDATE SET died_on = EXCLUDED.died_on,"
        "  recorded_at = clock_timestamp()"
        " WHERE deaths.died_on > EXCLUDED.died_on",
        cipher().blind_index(iin),
        died_on,
    )


@dataclass(frozen=True)
class Enrollment:
    """An enrollment as registry's events built it in billing (without the IIN)."""

    enrollment_id: str
    provider_bin: str
    license_number: str
    site_id: str
    region: str
    form: str
    category: str
    start_date: date
    end_date: date | None
    status: str
    seq: int
    updated_at: datetime


async def get_enrollment(conn: Connection, enrollment_id: str) -> Enrollment | None:
    row = await conn.fetchrow(
        "SELECT enrollment_id, provider_bin, license_number, site_id, region, form, category,"
        "  start_date, end_date, status, seq, updated_at"
        " FROM enrollments WHERE enrollment_id = $1",
        enrollment_id,
    )
    return None if row is None else Enrollment(**dict(row.items()))


# tariffs


@dataclass(frozen=True)
class Tariff:
    """A version of an akimat's tariff; the current one has no `superseded_at`."""

    id: int
    region: str
    form: str
    category: str
    effective_from: date
    rate: Decimal
    unit: Literal["day", "month"]
    act_reference: str
    version: int
    ended_from: date | None
    # None: a version recorded before who made it was kept
    created_by: str | None
    updated_at: datetime
    superseded_at: datetime | None


def _tariff(row: Record) -> Tariff:
    return Tariff(**{name: row[name] for name in Tariff.__dataclass_fields__})


@dataclass(frozen=True)
class TariffVersion:
    """A version of the tariff whose current version is `current_id`."""

    current_id: int
    tariff: Tariff


async def current_tariff_for_update(
    conn: Connection, *, region: str, form: str, category: str, effective_from: date
) -> Tariff | None:
    row = await conn.fetchrow(
        "SELECT * FROM tariffs WHERE region = $1 AND form = $2 AND category = $3"
        " AND effective_from = $4 AND superseded_at IS NULL FOR UPDATE",
        region,
        form,
        category,
        effective_from,
    )
    return None if row is None else _tariff(row)


async def insert_tariff_version(
    conn: Connection,
    *,
    region: str,
    form: str,
    category: str,
    effective_from: date,
    rate: Decimal,
    unit: str,
    act_reference: str,
    ended_from: date | None,
    created_by: str,
) -> Tariff:
    """The next version of a tariff (the first, if none): the current one is superseded."""
    row = await conn.fetchrow(
        "WITH old AS (UPDATE tariffs SET superseded_at = clock_timestamp()"
        "  WHERE region = $1 AND form = $2 AND category = $3 AND effective_from = $4"
        "   AND superseded_at IS NULL RETURNING version)"
        " INSERT INTO tariffs (region, form, category, effective_from, rate, unit,"
        "  act_reference, ended_from, created_by, version)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,"
        "  coalesce((SELECT version FROM old), 0) + 1)"
        " RETURNING *",
        region,
        form,
        category,
        effective_from,
        rate,
        unit,
        act_reference,
        ended_from,
        created_by,
    )
    return _tariff(_returned(row))


async def tariff_history(conn: Connection, *, ids: list[int]) -> list[TariffVersion]:
    """Every version of the tariffs of these (current) ids, oldest first."""
    rows = await conn.fetch(
        "SELECT v.*, c.id AS current_id FROM tariffs c JOIN tariffs v"
        "  ON v.region = c.region AND v.form = c.form AND v.category = c.category"
        "  AND v.effective_from = c.effective_from"
        " WHERE c.id = ANY($1::bigint[]) ORDER BY v.version",
        ids,
    )
    return [TariffVersion(current_id=r["current_id"], tariff=_tariff(r)) for r in rows]


async def list_tariffs(conn: Connection, *, region: str | None, year: int | None) -> list[Tariff]:
    """Tariffs of a region (or all) that are in force at some date of a year (or any)."""
    rows = await conn.fetch(
        "SELECT t.* FROM tariffs t"
        " WHERE ($1::text IS NULL OR t.region = $1) AND t.superseded_at IS NULL"
        "  AND ($2::int IS NULL OR (t.effective_from <= make_date($2, 12, 31)"
        "   AND (t.ended_from IS NULL OR t.ended_from > make_date($2, 1, 1))"
        "   AND NOT EXISTS (SELECT 1 FROM tariffs n WHERE n.region = t.region"
        "    AND n.superseded_at IS NULL AND n.form = t.form AND n.category = t.category"
        "    AND n.effective_from > t.effective_from AND n.effective_from <= make_date($2, 1, 1))))"
        " ORDER BY t.region, t.form, t.category, t.effective_from",
        region,
        year,
    )
    return [_tariff(r) for r in rows]


# contracts


@dataclass(frozen=True)
class Contract:
    """A contract of a provider, region and year, with the bank details the treasury pays to
    (None until set) and who set them."""

    number: str
    provider_bin: str
    region: str
    year: int
    budget: Decimal
    iik: str | None
    bik: str | None
    kbk: str | None
    knp: str | None
    bank_details_by: str | None
    bank_details_at: datetime | None


def _contract(row: Record) -> Contract:
    return Contract(**{name: row[name] for name in Contract.__dataclass_fields__})


def _maybe_contract(row: Record | None) -> Contract | None:
    return None if row is None else _contract(row)


async def insert_contract(
    conn: Connection, *, number: str, provider_bin: str, region: str, year: int, budget: Decimal
) -> Contract | None:
    """The contract made; None when its number, or its provider, region and year, is held."""
    row = await conn.fetchrow(
        "INSERT INTO contracts (number, provider_bin, region, year, budget)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING *",
        number,
        provider_bin,
        region,
        year,
        budget,
    )
    return _maybe_contract(row)


async def get_contract(conn: Connection, number: str) -> Contract | None:
    return _maybe_contract(await conn.fetchrow("SELECT * FROM contracts WHERE number = $1", number))


async def contract_for(
    conn: Connection, *, provider_bin: str, region: str, year: int
) -> Contract | None:
    return _maybe_contract(
        await conn.fetchrow(
            "SELECT * FROM contracts WHERE provider_bin = $1 AND region = $2 AND year = $3",
            provider_bin,
            region,
            year,
        )
    )


async def set_bank_details(
    conn: Connection,
    *,
    number: str,
    iik: str,
    bik: str,
    kbk: str,
    knp: str,
    changed_by: str,
    reason: str,
    invoice_number: str | None = None,
) -> Contract:
    """The contract's bank details from now on, kept as a new version with who and why."""
    row = await conn.fetchrow(
        "WITH v AS (INSERT INTO contract_bank_details"
        "  (contract_number, iik, bik, kbk, knp, reason, invoice_number, changed_by)"
        "  VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *)"
        " UPDATE contracts c SET iik = v.iik, bik = v.bik, kbk = v.kbk, knp = v.knp,"
        "  bank_details_by = v.changed_by, bank_details_at = v.changed_at"
        " FROM v WHERE c.number = v.contract_number RETURNING c.*",
        number,
        iik,
        bik,
        kbk,
        knp,
        reason,
        invoice_number,
        changed_by,
    )
    return _contract(_returned(row))


async def get_contract_for_update(conn: Connection, number: str) -> Contract | None:
    return _maybe_contract(
        await conn.fetchrow("SELECT * FROM contracts WHERE number = $1 FOR UPDATE", number)
    )


async def contract_invoiced(conn: Connection, number: str) -> Decimal:
    """What a contract's invoices bill within its budget."""
    value = await conn.fetchval(
        "SELECT coalesce(sum(l.amount), 0) FROM invoices i"
        " JOIN invoice_lines l ON l.invoice_id = i.id"
        " WHERE i.contract_number = $1 AND l.status = 'billed'",
        number,
    )
    return Decimal(value)


async def amend_budget(
    conn: Connection,
    *,
    number: str,
    budget: Decimal,
    act_number: str,
    act_date: date,
    amended_by: str,
) -> Contract:
    """Set a contract's budget by an amendment; a grown budget may be exhausted (and told) again."""
    await conn.execute(
        "INSERT INTO budget_amendments"
        " (contract_number, previous_budget, budget, act_number, act_date, amended_by)"
        " SELECT number, budget, $2, $3, $4, $5 FROM contracts WHERE number = $1",
        number,
        budget,
        act_number,
        act_date,
        amended_by,
    )
    row = await conn.fetchrow(
        "UPDATE contracts SET budget = $2,"
        "  exhausted_at = CASE WHEN $2 > budget THEN NULL ELSE exhausted_at END"
        " WHERE number = $1 RETURNING *",
        number,
        budget,
    )
    return _contract(_returned(row))


@dataclass(frozen=True)
class BudgetAmendment:
    previous_budget: Decimal
    budget: Decimal
    act_number: str
    act_date: date
    amended_by: str
    amended_at: datetime


async def budget_amendments(conn: Connection, number: str) -> list[BudgetAmendment]:
    rows = await conn.fetch(
        "SELECT previous_budget, budget, act_number, act_date, amended_by, amended_at"
        " FROM budget_amendments WHERE contract_number = $1 ORDER BY amended_at, id",
        number,
    )
    return [BudgetAmendment(**dict(r.items())) for r in rows]


@dataclass(frozen=True)
class BankDetailsVersion:
    """Bank details a contract had from `changed_at`, who set them and why."""

    iik: str
    bik: str
    kbk: str
    knp: str
    reason: str
    invoice_number: str | None
    changed_by: str
    changed_at: datetime


async def bank_details_history(conn: Connection, number: str) -> list[BankDetailsVersion]:
    rows = await conn.fetch(
        "SELECT iik, bik, kbk, knp, reason, invoice_number, changed_by, changed_at"
        " FROM contract_bank_details WHERE contract_number = $1 ORDER BY id",
        number,
    )
    return [BankDetailsVersion(**dict(r.items())) for r in rows]


@dataclass(frozen=True)
class ContractBudget:
    """A contract's budget and what is invoiced, over budget, held and paid of it."""

    number: str
    provider_bin: str
    provider_name: str | None
    region: str
    year: int
    budget: Decimal
    invoiced: Decimal
    over_budget: Decimal
    held: Decimal
    paid: Decimal


async def budgets(conn: Connection, *, year: int, region: str | None) -> list[ContractBudget]:
    rows = await conn.fetch(
        "SELECT c.number, c.provider_bin, p.name AS provider_name, c.region, c.year, c.budget,"
        "  coalesce(sum(l.amount) FILTER (WHERE l.status = 'billed'), 0)::numeric(14,2)"
        "   AS invoiced,"
        "  coalesce(sum(l.amount) FILTER (WHERE l.status = 'over_budget'"
        "   AND l.released_by IS NULL), 0)::numeric(14,2)"
        "   AS over_budget,"
        # of what is invoiced (committed): held for review, and paid by the treasury
        "  coalesce(sum(l.held_amount) FILTER (WHERE l.hold = 'held'), 0)::numeric(14,2)"
        "   AS held,"
        "  (SELECT coalesce(sum(paid_amount), 0) FROM invoices p"
        "   WHERE p.contract_number = c.number)::numeric(14,2) AS paid"
        " FROM contracts c"
        " LEFT JOIN providers p ON p.bin = c.provider_bin"
        " LEFT JOIN invoices i ON i.contract_number = c.number"
        " LEFT JOIN invoice_lines l ON l.invoice_id = i.id"
        " WHERE c.year = $1 AND ($2::text IS NULL OR c.region = $2)"
        " GROUP BY c.number, p.name ORDER BY c.region, c.number",
        year,
        region,
    )
    return [ContractBudget(**dict(r.items())) for r in rows]


# attendance


@dataclass(frozen=True)
class ResolvedAttendance:
    """The enrollment an attendance row (`line`) names, None when none is found; by IIN,
    `iin_matches` counts the enrollments of the IIN at the provider on that date."""

    line: int
    day: date
    enrollment_id: str | None
    start_date: date | None
    end_date: date | None
    iin_matches: int


async def resolve_attendance(
    conn: Connection,
    *,
    lines: list[int],
    enrollment_ids: list[str | None],
    iins: list[str | None],
    provider_bins: list[str],
    days: list[date],
    region: str | None = None,
) -> list[ResolvedAttendance]:
    """For each row, the enrollment it names (by id, or by IIN at the provider on that date);
    with `region`, only enrollments of that region are found (a regional key's scope)."""
    rows = await conn.fetch(
        "SELECT r.line, r.day,"
        "  coalesce(byid.enrollment_id, byiin.enrollment_id) AS enrollment_id,"
        "  coalesce(byid.start_date, byiin.start_date) AS start_date,"
        "  coalesce(byid.end_date, byiin.end_date) AS end_date,"
        "  coalesce(byiin.matches, 0) AS iin_matches"
        " FROM unnest($1::int[], $2::text[], $3::bytea[], $4::text[], $5::date[])"
        "  AS r(line, enrollment_id, iin_index, provider_bin, day)"
        " LEFT JOIN enrollments byid ON byid.enrollment_id = r.enrollment_id"
        "  AND byid.provider_bin = r.provider_bin AND ($6::text IS NULL OR byid.region = $6)"
        " LEFT JOIN LATERAL ("
        "  SELECT e.enrollment_id, e.start_date, e.end_date,"
        "   count(*) OVER () AS matches FROM enrollments e"
        "  WHERE r.enrollment_id IS NULL AND e.provider_bin = r.provider_bin"
        "   AND e.iin_index = r.iin_index"
        "   AND e.start_date <= r.day AND (e.end_date IS NULL OR e.end_date >= r.day)"
        "   AND ($6::text IS NULL OR e.region = $6)"
        "  ORDER BY e.enrollment_id LIMIT 1) byiin ON true"
        " ORDER BY r.line",
        lines,
        enrollment_ids,
        [cipher().blind_index(i) if i is not None else None for i in iins],
        provider_bins,
        days,
        region,
    )
    return [ResolvedAttendance(**dict(r.items())) for r in rows]


async def insert_attendance(
    conn: Connection, *, lines: list[int], enrollment_ids: list[str], days: list[date]
) -> list[int]:
    """Store attendance rows; returns the lines that were new (the others were held already)."""
    rows = await conn.fetch(
        "WITH r AS (SELECT * FROM unnest($1::int[], $2::text[], $3::date[])"
        "  AS r(line, enrollment_id, day)),"
        " ins AS (INSERT INTO attendance (enrollment_id, day)"
        "  SELECT enrollment_id, day FROM r ON CONFLICT DO NOTHING"
        "  RETURNING enrollment_id, day)"
        " SELECT r.line FROM r JOIN ins USING (enrollment_id, day)",
        lines,
        enrollment_ids,
        days,
    )
    return [r["line"] for r in rows]


async def invoice_counting_attendance(
    conn: Connection, *, enrollment_id: str, day: date
) -> str | None:
    """The number of an invoice whose line counted this attended date, or None."""
    number = await conn.fetchval(
        "SELECT i.number FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id"
        " WHERE l.enrollment_id = $1 AND l.month = date_trunc('month', $2::date)::date"
        "  AND (l.attended_mask >> ($2::date - l.month)) & 1 = 1"
        " ORDER BY i.issued_at LIMIT 1",
        enrollment_id,
        day,
    )
    return None if number is None else str(number)


async def delete_attendance(conn: Connection, *, enrollment_id: str, day: date) -> bool:
    result = await conn.execute(
        "DELETE FROM attendance WHERE enrollment_id = $1 AND day = $2", enrollment_id, day
    )
    return result != "DELETE 0"


# billing runs

RunStatus = Literal["queued", "running", "completed", "failed"]
RunPhase = Literal["loading", "amounts", "checks", "invoices", "done"]


@dataclass(frozen=True)
class Run:
    """A billing run: accepted (`queued`), billed by a worker (`running`), then `completed` or
    `failed`; `phase` and `progress_*` are what the worker last committed."""

    id: str
    period: str
    period_start: date
    region: str | None
    status: RunStatus
    phase: RunPhase | None
    progress_done: int
    progress_total: int | None
    attempts: int
    started_by: str
    approved_by: str | None
    approved_at: datetime | None
    invoices: int
    lines: int
    total: Decimal
    over_budget: Decimal
    unbilled_dates: int
    uncontracted: int
    held: Decimal
    held_lines: int
    blocking_rules: list[str]
    unconfirmed_share: Decimal | None
    correlation_id: str | None
    checks_seconds: float | None
    error: str | None
    accepted_at: datetime
    started_at: datetime
    completed_at: datetime | None
    failed_at: datetime | None


_RUN_FIELDS = tuple(Run.__dataclass_fields__)


def _run(returned: Record | None) -> Run:
    row = _returned(returned)
    values = {name: row[name] for name in _RUN_FIELDS}
    values["id"] = str(row["id"])
    values["blocking_rules"] = list(row["blocking_rules"] or [])
    return Run(**values)


def _maybe_run(row: Record | None) -> Run | None:
    return None if row is None else _run(row)


async def lock_run_acceptance(conn: Connection) -> None:
    """Transaction lock while a run is accepted: the order of runs is checked against runs
    accepted before it (short: acceptance only, never the billing)."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('ssu.billing.runs.accept', 0))"
    )


# Run workers LISTEN here: an accepted run wakes them at once (at the commit).
RUNS_CHANNEL = "ssu_billing_runs"


async def announce_run(conn: Connection, run_id: str) -> None:
    await conn.execute("SELECT pg_notify($1, $2)", RUNS_CHANNEL, run_id)


async def try_lock_runs(conn: Connection) -> bool:
    """Session lock of the run worker: one process (of any replica) bills at a time, so runs of
    different periods never interleave (adjustments read what earlier runs wrote) and a run is
    never billed twice. Released by `unlock_runs`, or by PostgreSQL when the process dies."""
    return bool(
        await conn.fetchval("SELECT pg_try_advisory_lock(hashtextextended('ssu.billing.runs', 0))")
    )


async def unlock_runs(conn: Connection) -> None:
    await conn.execute("SELECT pg_advisory_unlock(hashtextextended('ssu.billing.runs', 0))")


async def get_run_by_period(conn: Connection, period: str, region: str | None) -> Run | None:
    """The run of a period and scope that has not failed (queued, running or completed)."""
    return _maybe_run(
        await conn.fetchrow(
            "SELECT * FROM runs WHERE period = $1 AND region IS NOT DISTINCT FROM $2"
            " AND status <> 'failed'",
            period,
            region,
        )
    )


async def runs_of_year(
    conn: Connection, year: int, *, completed_only: bool = False
) -> list[tuple[date, str | None]]:
    """(first day, region or None) of every run of a year's months that has not failed (or,
    `completed_only`, that completed)."""
    rows = await conn.fetch(
        "SELECT period_start, region FROM runs"
        " WHERE period_start >= make_date($1, 1, 1) AND period_start < make_date($1 + 1, 1, 1)"
        " AND status <> 'failed' AND (NOT $2 OR status = 'completed')",
        year,
        completed_only,
    )
    return [(r["period_start"], r["region"]) for r in rows]


async def failed_while_waiting(conn: Connection, run: Run) -> Run | None:
    """A run of an earlier month of the year and an overlapping scope that was accepted before
    `run` and failed after it (so `run` was accepted counting on it), the earliest."""
    return _maybe_run(
        await conn.fetchrow(
            "SELECT * FROM runs WHERE status = 'failed' AND accepted_at < $1"
            " AND failed_at > $1 AND period_start < $2"
            " AND period_start >= date_trunc('year', $2::date)"
            " AND ($3::text IS NULL OR region IS NULL OR region = $3)"
            " ORDER BY period_start, accepted_at LIMIT 1",
            run.accepted_at,
            run.period_start,
            run.region,
        )
    )


async def get_run(conn: Connection, run_id: str) -> Run | None:
    return _maybe_run(await conn.fetchrow("SELECT * FROM runs WHERE id = $1::uuid", run_id))


async def insert_run(
    conn: Connection,
    *,
    run_id: str,
    period: str,
    region: str | None,
    period_start: date,
    started_by: str,
    blocking_rules: list[str],
    unconfirmed_share: Decimal | None,
    correlation_id: str,
) -> Run:
    return _run(
        await conn.fetchrow(
            "INSERT INTO runs (id, period, region, period_start, status, started_by,"
            "  blocking_rules, unconfirmed_share, correlation_id)"
            " VALUES ($1::uuid, $2, $3, $4, 'queued', $5, $6, $7, $8) RETURNING *",
            run_id,
            period,
            region,
            period_start,
            started_by,
            blocking_rules,
            unconfirmed_share,
            correlation_id,
        )
    )


async def next_unfinished_run(conn: Connection) -> Run | None:
    """The first accepted run not billed yet: queued, or left running by a stopped process
    (the caller holds `try_lock_runs`, so no one else is billing it)."""
    return _maybe_run(
        await conn.fetchrow(
            "SELECT * FROM runs WHERE status IN ('queued', 'running')"
            " ORDER BY accepted_at, id LIMIT 1"
        )
    )


async def begin_run(conn: Connection, run_id: str) -> None:
    """Committed at once (outside the run's transaction): the run is running, from now."""
    await conn.execute(
        "UPDATE runs SET status = 'running', phase = 'loading', progress_done = 0,"
        " progress_total = NULL, attempts = attempts + 1, started_at = clock_timestamp()"
        " WHERE id = $1::uuid",
        run_id,
    )


async def set_run_progress(
    conn: Connection,
    run_id: str,
    *,
    phase: RunPhase,
    done: int = 0,
    total: int | None = None,
) -> None:
    """Committed from a connection of its own while the run's transaction is open."""
    await conn.execute(
        "UPDATE runs SET phase = $2, progress_done = $3, progress_total = $4"
        " WHERE id = $1::uuid AND status = 'running'",
        run_id,
        phase,
        done,
        total,
    )


async def fail_run(conn: Connection, run_id: str, *, error: str) -> Run:
    """The run billed nothing (its transaction rolled back) and says why."""
    return _run(
        await conn.fetchrow(
            "UPDATE runs SET status = 'failed', error = $2, failed_at = clock_timestamp()"
            " WHERE id = $1::uuid RETURNING *",
            run_id,
            error,
        )
    )


async def months_to_correct(conn: Connection, period_start: date) -> list[date]:
    """Invoiced months before this one whose inputs changed since they were invoiced.

    The margin covers changes committed while that run was in progress; recomputing a month
    that did not change yields no adjustment, so a generous margin is only a cost.
    """
    rows = await conn.fetch(
        "SELECT DISTINCT r.period_start FROM runs r,"
        " LATERAL (SELECT r.started_at - interval '10 minutes' AS since,"
        "   (r.period_start + interval '1 month')::date AS next_month) w"
        " WHERE r.period_start < $1 AND r.status = 'completed' AND ("
        "  EXISTS (SELECT 1 FROM attendance a WHERE a.recorded_at > w.since"
        "   AND a.day >= r.period_start AND a.day < w.next_month)"
        "  OR EXISTS (SELECT 1 FROM license_transitions t WHERE t.recorded_at > w.since"
        "   AND t.effective_date < w.next_month)"
        "  OR EXISTS (SELECT 1 FROM tariffs t WHERE t.updated_at > w.since"
        "   AND t.effective_from < w.next_month)"
        "  OR EXISTS (SELECT 1 FROM enrollments e WHERE e.updated_at > w.since"
        "   AND e.start_date < w.next_month)"
        "  OR EXISTS (SELECT 1 FROM deaths d WHERE d.recorded_at > w.since"
        "   AND d.died_on < w.next_month))"
        " ORDER BY r.period_start",
        period_start,
    )
    return [r["period_start"] for r in rows]


# Amount of every contracted enrollment for each month given (DESIGN §3), in one set-based
# statement. The dates of a month are bits of a bigint (bit n = day n+1): the dates an
# enrollment covers, the dates its license is active (from the license's date ranges), the
# dates attended, and per tariff the dates it is the one in force (latest effective, the exact
# category before `*`). Eligible = covered & active; billable = eligible & attended; counting
# is bit_count, so the work is per enrollment and tariff, not per enrollment and day.
_RUN_MONTHS = """
CREATE TEMP TABLE run_months ON COMMIT DROP AS
SELECT m AS month, ((m + interval '1 month')::date - 1) AS last_day,
       ((m + interval '1 month')::date - m) AS dim
FROM unnest($1::date[]) AS m
"""

_RUN_LICENSES = """
CREATE TEMP TABLE run_licenses ON COMMIT DROP AS
SELECT l.license_number, mo.month,
       coalesce(bit_or(1::bigint << (g::date - mo.month))
                FILTER (WHERE l.active @> g::date), 0) AS mask
FROM licenses l
CROSS JOIN run_months mo
CROSS JOIN LATERAL generate_series(mo.month, mo.last_day, interval '1 day') AS g
GROUP BY l.license_number, mo.month
"""

_RUN_TARIFFS = """
CREATE TEMP TABLE run_tariffs ON COMMIT DROP AS
WITH keys AS (
    SELECT DISTINCT e.region, e.form, e.category FROM enrollments e
    WHERE EXISTS (SELECT 1 FROM contracts c WHERE c.provider_bin = e.provider_bin
                  AND c.region = e.region AND c.year = $1)
)
SELECT k.region, k.form, k.category, mo.month, t.id AS tariff_id,
       bit_or(1::bigint << d.n) AS mask
FROM keys k
CROSS JOIN run_months mo
CROSS JOIN LATERAL generate_series(0, mo.dim - 1) AS d(n)
JOIN LATERAL (
    SELECT t.id, t.ended_from FROM tariffs t
    WHERE t.region = k.region AND t.form = k.form AND t.category IN (k.category, '*')
      AND t.effective_from <= mo.month + d.n AND t.superseded_at IS NULL
    ORDER BY t.category = '*', t.effective_from DESC
    LIMIT 1
) t ON true
-- an ended tariff leaves its dates without a tariff (reported) until a later one starts
WHERE t.ended_from IS NULL OR mo.month + d.n < t.ended_from
GROUP BY k.region, k.form, k.category, mo.month, t.id
"""

# Each enrollment's attended dates per month as bits. The months come as parameters, not from
# run_months: a statement that reads a temporary table runs in one process, and this is the
# run's largest scan (22.8 million dates at 1,000,000 recipients: 25 s alone, 7.8 s with
# PostgreSQL's parallel workers).
_RUN_ATTENDANCE = """
CREATE TEMP TABLE run_attendance ON COMMIT DROP AS
SELECT a.enrollment_id, a.day - extract(day FROM a.day)::int + 1 AS month,
       bit_or(1::bigint << (extract(day FROM a.day)::int - 1)) AS mask
FROM attendance a
WHERE a.day >= $2 AND a.day < ($3::date + interval '1 month')::date
  AND a.day - extract(day FROM a.day)::int + 1 = ANY($1::date[])
GROUP BY 1, 2
"""

_COMPUTE = """
CREATE TEMP TABLE calc ON COMMIT DROP AS
WITH cov AS (
    SELECT e.enrollment_id, e.region, e.form, e.category, mo.month, mo.dim, covered, alive,
           coalesce(a.mask, 0) AS reported,
           covered & alive & coalesce(l.mask, 0) AS eligible,
           covered & alive & coalesce(a.mask, 0) AS attended
    FROM enrollments e
    JOIN contracts c ON c.provider_bin = e.provider_bin AND c.region = e.region AND c.year = $1
        AND ($2::text IS NULL OR e.region = $2)
    JOIN run_months mo ON e.start_date <= mo.last_day
        AND (e.end_date IS NULL OR e.end_date >= mo.month)
    CROSS JOIN LATERAL (
        SELECT ((1::bigint << (least(e.end_date, mo.last_day) - mo.month + 1)) - 1)
               & ~((1::bigint << greatest(e.start_date - mo.month, 0)) - 1) AS covered
    ) cv
    -- no date after the recipient's death is paid (deaths as registry reported them)
    LEFT JOIN deaths dd ON dd.iin_index = e.iin_index
    CROSS JOIN LATERAL (
        SELECT CASE WHEN dd.died_on IS NULL OR dd.died_on >= mo.last_day THEN -1::bigint
                    WHEN dd.died_on < mo.month THEN 0::bigint
                    ELSE (1::bigint << (dd.died_on - mo.month + 1)) - 1 END AS alive
    ) al
    LEFT JOIN run_licenses l ON l.license_number = e.license_number AND l.month = mo.month
    LEFT JOIN run_attendance a ON a.enrollment_id = e.enrollment_id AND a.month = mo.month
),
parts AS (
    SELECT c.enrollment_id, c.month, c.dim, c.eligible, c.attended, c.covered, c.alive,
           c.reported, t.id AS tariff_id,
           t.rate, t.unit,
           CASE WHEN t.unit = 'day' THEN c.eligible & c.attended & s.mask
                WHEN c.attended <> 0 THEN c.eligible & s.mask
                ELSE 0 END AS counted,
           s.mask AS tariff_mask
    FROM cov c
    LEFT JOIN run_tariffs s ON s.region = c.region AND s.form = c.form
        AND s.category = c.category AND s.month = c.month
    LEFT JOIN tariffs t ON t.id = s.tariff_id
)
SELECT p.enrollment_id, p.month,
       round(coalesce(sum(p.rate * bit_count(p.counted::bit(64))) FILTER (WHERE p.unit = 'day'),
                      0)
             + coalesce(sum(p.rate * bit_count(p.counted::bit(64)))
                        FILTER (WHERE p.unit = 'month'), 0) / min(p.dim),
             2)::numeric(14,2) AS amount,
       bit_count(min(p.eligible)::bit(64))::int AS eligible_days,
       bit_count(min(p.attended)::bit(64))::int AS attended_days,
       bit_count((min(p.eligible) & ~coalesce(bit_or(p.tariff_mask), 0))::bit(64))::int
           AS untariffed_days,
       min(p.eligible) AS eligible_mask,
       min(p.attended) AS attended_mask,
       min(p.eligible) & ~coalesce(bit_or(p.tariff_mask), 0) AS untariffed_mask,
       coalesce(array_agg(p.tariff_id) FILTER (WHERE p.tariff_id IS NOT NULL), '{}')
           AS tariff_ids,
       coalesce(array_agg(p.counted) FILTER (WHERE p.tariff_id IS NOT NULL), '{}')
           AS counted_masks,
       min(p.covered) AS covered_mask, min(p.alive) AS alive_mask,
       min(p.reported) AS reported_mask
FROM parts p
GROUP BY p.enrollment_id, p.month
"""

# Lines of the run: this month's amounts, for earlier invoiced months the difference
# between what is due now and what was billed, and over-budget lines released after the
# contract's budget grew; numbered per contract in the budget order (DESIGN §3): the month
# billed, then the enrollment's start date, then its id.
_PLACED = """
CREATE TEMP TABLE run_placed ON COMMIT DROP AS
WITH billed AS (
    -- a released over-budget line counts through the line that released it
    SELECT l.enrollment_id, l.month, sum(l.amount) AS billed,
           -- what review rejected of it: never paid, so never taken back
           coalesce(sum(l.held_amount) FILTER (WHERE l.hold = 'rejected'), 0) AS rejected,
           -- the latest line of the month: the one an adjustment corrects
           (array_agg(l.invoice_id ORDER BY i.issued_at DESC, l.line_no DESC))[1] AS last_invoice,
           (array_agg(l.line_no ORDER BY i.issued_at DESC, l.line_no DESC))[1] AS last_line
    FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id
    WHERE l.month = ANY($2::date[]) AND l.released_by IS NULL
    GROUP BY l.enrollment_id, l.month
),
released AS (
    SELECT l.enrollment_id, l.month, 'release' AS kind, l.amount, l.computed_amount AS computed,
           l.previously_billed AS previously, l.eligible_days, l.attended_days,
           l.eligible_mask, l.attended_mask, l.untariffed_mask, l.tariff_ids, l.counted_masks,
           l.invoice_id AS source_invoice_id, l.line_no AS source_line_no
    FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id
    JOIN contracts k ON k.number = i.contract_number AND k.year = $3
    WHERE l.status = 'over_budget' AND l.released_by IS NULL
      AND ($4::text IS NULL OR k.region = $4)
      AND EXISTS (SELECT 1 FROM budget_amendments a WHERE a.contract_number = k.number
                  AND a.amended_at > i.issued_at AND a.budget > a.previous_budget)
),
due AS (
    SELECT c.enrollment_id, c.month, 'regular' AS kind, c.amount, c.amount AS computed,
           0::numeric(14,2) AS previously, c.eligible_days, c.attended_days,
           c.eligible_mask, c.attended_mask, c.untariffed_mask, c.tariff_ids, c.counted_masks,
           NULL::uuid AS source_invoice_id, NULL::integer AS source_line_no
    FROM calc c WHERE c.month = $1
    UNION ALL
    SELECT coalesce(c.enrollment_id, b.enrollment_id), coalesce(c.month, b.month), 'adjustment',
           adj.amount, coalesce(c.amount, 0),
           coalesce(b.billed, 0), coalesce(c.eligible_days, 0), coalesce(c.attended_days, 0),
           coalesce(c.eligible_mask, 0), coalesce(c.attended_mask, 0),
           coalesce(c.untariffed_mask, 0), coalesce(c.tariff_ids, '{}'),
           coalesce(c.counted_masks, '{}'), b.last_invoice, b.last_line
    FROM (SELECT * FROM calc WHERE month <> $1) c
    FULL JOIN billed b ON b.enrollment_id = c.enrollment_id AND b.month = c.month
    -- less due than billed takes back what was granted (billed less rejected), no more
    CROSS JOIN LATERAL (
        SELECT CASE WHEN coalesce(c.amount, 0) < coalesce(b.billed, 0)
                    THEN least(0, coalesce(c.amount, 0) - b.billed + b.rejected)
                    ELSE coalesce(c.amount, 0) - coalesce(b.billed, 0) END AS amount
    ) adj
    WHERE adj.amount <> 0
    UNION ALL
    SELECT * FROM released
)
SELECT d.*, e.iin, e.form, e.category, k.number AS contract_number, k.budget,
       row_number() OVER w AS line_no, sum(d.amount) OVER w AS running
FROM due d
JOIN enrollments e ON e.enrollment_id = d.enrollment_id
JOIN contracts k ON k.provider_bin = e.provider_bin AND k.region = e.region AND k.year = $3
-- a regional run bills its region only; a national run after regional ones bills the
-- contracts they have not (each contract is invoiced once a month)
WHERE ($4::text IS NULL OR k.region = $4)
  AND NOT EXISTS (SELECT 1 FROM invoices i WHERE i.contract_number = k.number
                  AND i.period = to_char($1::date, 'YYYY-MM'))
WINDOW w AS (PARTITION BY k.number
             ORDER BY d.month, e.start_date, d.enrollment_id, d.kind, d.source_invoice_id
             ROWS UNBOUNDED PRECEDING)
"""

# The budget along that order (domain.budget_statuses): a line that would take the contract
# past its budget is over budget, and a later line that still fits is billed. From each
# contract's first crossing on, one step per line number, every such contract at once.
_BUDGET = """
CREATE TEMP TABLE run_lines ON COMMIT DROP AS
WITH RECURSIVE spent AS (
    SELECT i.contract_number, sum(l.amount) AS spent
    FROM invoices i JOIN invoice_lines l ON l.invoice_id = i.id
    WHERE l.status = 'billed'
      AND i.contract_number IN (SELECT contract_number FROM run_placed)
    GROUP BY i.contract_number
),
-- every line before a contract's first crossing of its budget is billed: the walk starts there
crossing AS (
    SELECT p.contract_number, min(p.line_no) AS line_no
    FROM run_placed p LEFT JOIN spent s USING (contract_number)
    WHERE p.amount > 0 AND coalesce(s.spent, 0) + p.running > p.budget
    GROUP BY p.contract_number
),
walk AS (
    SELECT p.contract_number, p.line_no, true AS over,
           coalesce(s.spent, 0) + p.running - p.amount AS after
    FROM crossing c JOIN run_placed p USING (contract_number, line_no)
    LEFT JOIN spent s USING (contract_number)
    UNION ALL
    SELECT p.contract_number, p.line_no, w.after + p.amount > p.budget AND p.amount > 0,
           w.after + CASE WHEN p.amount > 0 AND w.after + p.amount > p.budget THEN 0
                          ELSE p.amount END
    FROM walk w
    -- the next line of each contract still walking, looked up by the index: as a plain join
    -- the planner, guessing the walk large, scans all of run_placed at every step (145 steps
    -- of a million lines at a national month of 1,000,000 recipients: 38 s); OFFSET 0 keeps
    -- the subquery a per-row lookup
    CROSS JOIN LATERAL (
        SELECT q.contract_number, q.line_no, q.amount, q.budget FROM run_placed q
        WHERE q.contract_number = w.contract_number AND q.line_no = w.line_no + 1
        OFFSET 0
    ) p
)
SELECT p.*, CASE WHEN w.over THEN 'over_budget' ELSE 'billed' END AS status
FROM run_placed p LEFT JOIN walk w USING (contract_number, line_no)
"""

# Checks before payment (issue 19, domain.RULES): each rule is one set-based statement over the
# run's lines that adds a row to `run_checks` per line it finds (the line's dates it concerns as
# bits of the month, and what it found); `run_verdicts` then says per line which rules failed and
# what is held. The facts the rules read, one row per line of the run:
_CHECK_FACTS = """
CREATE TEMP TABLE run_facts ON COMMIT DROP AS
SELECT r.contract_number, r.line_no, r.enrollment_id, r.month, r.kind, r.amount, r.status,
       e.iin_index, e.name_index, e.provider_bin, e.license_number, e.site_id, e.form,
       e.start_date, d.died_on, r.attended_mask AS attended,
       coalesce(c.reported_mask, 0) AS reported, coalesce(c.covered_mask, 0) AS covered,
       coalesce(c.alive_mask, -1) AS alive
FROM run_lines r
JOIN enrollments e ON e.enrollment_id = r.enrollment_id
LEFT JOIN calc c ON c.enrollment_id = r.enrollment_id AND c.month = r.month
LEFT JOIN deaths d ON d.iin_index = e.iin_index
"""

_CHECKS_TABLE = """
CREATE TEMP TABLE run_checks (
    contract_number text NOT NULL, line_no bigint NOT NULL, rule text NOT NULL,
    mask bigint NOT NULL DEFAULT 0, detail jsonb NOT NULL DEFAULT '{}'
) ON COMMIT DROP
"""

# double_attendance: dates the recipient (same IIN) is also reported at another provider in the
# same form, within that enrollment.
_CHECK_DOUBLE_ATTENDANCE = """
INSERT INTO run_checks (contract_number, line_no, rule, mask, detail)
SELECT f.contract_number, f.line_no, 'double_attendance', f.attended & bit_or(oa.mask),
       jsonb_build_object('enrollment_ids', array_agg(o.enrollment_id ORDER BY o.enrollment_id))
FROM run_facts f
JOIN enrollments o ON o.iin_index = f.iin_index AND o.form = f.form
    AND o.provider_bin <> f.provider_bin AND o.start_date < (f.month + interval '1 month')::date
    AND (o.end_date IS NULL OR o.end_date >= f.month)
JOIN run_attendance a ON a.enrollment_id = o.enrollment_id AND a.month = f.month
CROSS JOIN LATERAL (
    SELECT a.mask
           & ((1::bigint << (least(o.end_date, (f.month + interval '1 month')::date - 1)
                             - f.month + 1)) - 1)
           & ~((1::bigint << greatest(o.start_date - f.month, 0)) - 1) AS mask
) oa
WHERE f.attended & oa.mask <> 0
GROUP BY f.contract_number, f.line_no, f.attended
"""

# over_site_capacity: dates more recipients attended a site than it has places; on such a date
# the first `places` by enrollment (start date, then id) pass, the later ones are found. Only
# sites with more recipients in the month than places are looked at date by date.
_CHECK_SITE_CAPACITY = """
INSERT INTO run_checks (contract_number, line_no, rule, mask, detail)
WITH places AS (
    SELECT l.license_number, s.value ->> 'site_id' AS site_id,
           (s.value ->> 'places')::int AS places
    FROM licenses l CROSS JOIN LATERAL jsonb_array_elements(l.sites) s
    WHERE s.value ->> 'places' IS NOT NULL
),
crowded AS (
    SELECT p.license_number, p.site_id, p.places, a.month
    FROM places p
    JOIN enrollments e ON e.license_number = p.license_number AND e.site_id = p.site_id
    JOIN run_attendance a ON a.enrollment_id = e.enrollment_id
    GROUP BY p.license_number, p.site_id, p.places, a.month
    HAVING count(*) > p.places
),
days AS (
    SELECT c.places, a.month, e.enrollment_id, d.n,
           row_number() OVER (PARTITION BY c.license_number, c.site_id, a.month, d.n
                              ORDER BY e.start_date, e.enrollment_id) AS k
    FROM crowded c
    JOIN enrollments e ON e.license_number = c.license_number AND e.site_id = c.site_id
    JOIN run_attendance a ON a.enrollment_id = e.enrollment_id AND a.month = c.month
    CROSS JOIN generate_series(0, 30) AS d(n)
    WHERE (a.mask >> d.n) & 1 = 1
),
over AS (
    SELECT enrollment_id, month, min(places) AS places, bit_or(1::bigint << n) AS mask
    FROM days WHERE k > places GROUP BY enrollment_id, month
)
SELECT f.contract_number, f.line_no, 'over_site_capacity', f.attended & o.mask,
       jsonb_build_object('site_id', f.site_id, 'places', o.places)
FROM run_facts f JOIN over o ON o.enrollment_id = f.enrollment_id AND o.month = f.month
WHERE f.attended & o.mask <> 0
"""

# after_death: dates reported after the recipient's death (never paid); outside_enrollment:
# dates reported outside the enrollment (never paid).
_CHECK_DATES = """
INSERT INTO run_checks (contract_number, line_no, rule, mask, detail)
SELECT f.contract_number, f.line_no, 'after_death', f.reported & ~f.alive,
       jsonb_build_object('died_on', f.died_on)
FROM run_facts f WHERE f.reported & ~f.alive <> 0
UNION ALL
SELECT f.contract_number, f.line_no, 'outside_enrollment', f.reported & ~f.covered & f.alive, '{}'
FROM run_facts f WHERE f.reported & ~f.covered & f.alive <> 0
"""

# duplicate_person: the recipient (same IIN, or the same name and birth date under another
# IIN) has another enrollment in the same form covering some of the same dates that began
# before this one (start date, then id): the later is found.
_CHECK_DUPLICATE_PERSON = """
INSERT INTO run_checks (contract_number, line_no, rule, mask, detail)
WITH same AS (
    SELECT f.contract_number, f.line_no, f.month, f.covered, o.enrollment_id AS other,
           o.start_date AS other_start, o.end_date AS other_end, 'iin' AS by
    FROM run_facts f
    JOIN enrollments o ON o.iin_index = f.iin_index AND o.form = f.form
        AND (o.start_date, o.enrollment_id) < (f.start_date, f.enrollment_id)
    UNION ALL
    SELECT f.contract_number, f.line_no, f.month, f.covered, o.enrollment_id, o.start_date,
           o.end_date, 'name_and_birth_date'
    FROM run_facts f
    JOIN enrollments o ON o.name_index = f.name_index AND o.iin_index <> f.iin_index
        AND o.form = f.form
        AND (o.start_date, o.enrollment_id) < (f.start_date, f.enrollment_id)
)
SELECT s.contract_number, s.line_no, 'duplicate_person', s.covered & bit_or(oc.covered),
       jsonb_build_object('enrollment_ids', array_agg(s.other ORDER BY s.other),
                          'by', array_agg(DISTINCT s.by))
FROM same s
CROSS JOIN LATERAL (
    SELECT ((1::bigint << (least(s.other_end, (s.month + interval '1 month')::date - 1)
                           - s.month + 1)) - 1)
           & ~((1::bigint << greatest(s.other_start - s.month, 0)) - 1) AS covered
) oc
WHERE s.other_start < (s.month + interval '1 month')::date
  AND (s.other_end IS NULL OR s.other_end >= s.month) AND s.covered & oc.covered <> 0
GROUP BY s.contract_number, s.line_no, s.covered
"""

# over_licensed_places: a license paid this month (lines of the month with an amount) for more
# recipients than the places of its sites (every site with places); the first by enrollment
# (start date, then id) pass, the later ones are found.
_CHECK_LICENSED_PLACES = """
INSERT INTO run_checks (contract_number, line_no, rule, mask, detail)
WITH licensed AS (
    SELECT l.license_number, sum((s.value ->> 'places')::int) AS places
    FROM licenses l CROSS JOIN LATERAL jsonb_array_elements(l.sites) s
    GROUP BY l.license_number
    HAVING bool_and(s.value ->> 'places' IS NOT NULL)
),
paid AS (
    SELECT f.license_number, f.iin_index, min(f.start_date) AS start_date,
           min(f.enrollment_id) AS enrollment_id
    FROM run_facts f JOIN licensed USING (license_number)
    WHERE f.kind = 'regular' AND f.amount > 0
    GROUP BY f.license_number, f.iin_index
),
ranked AS (
    SELECT p.*, row_number() OVER (PARTITION BY p.license_number
                                   ORDER BY p.start_date, p.enrollment_id) AS k
    FROM paid p
)
SELECT f.contract_number, f.line_no, 'over_licensed_places', f.attended,
       jsonb_build_object('places', l.places, 'recipient_rank', r.k)
FROM ranked r JOIN licensed l USING (license_number)
JOIN run_facts f ON f.license_number = r.license_number AND f.iin_index = r.iin_index
    AND f.kind = 'regular' AND f.amount > 0
WHERE r.k > l.places
"""

# disputed_month / unconfirmed_month: the recipient disputed the month, or was asked and has
# not answered (no row: not asked, passes).
_CHECK_CONFIRMATIONS = """
INSERT INTO run_checks (contract_number, line_no, rule, mask, detail)
SELECT f.contract_number, f.line_no,
       CASE c.state WHEN 'disputed' THEN 'disputed_month' ELSE 'unconfirmed_month' END,
       f.attended, jsonb_build_object('state', c.state)
FROM run_facts f
JOIN attendance_confirmations c ON c.enrollment_id = f.enrollment_id AND c.month = f.month
WHERE c.state IN ('disputed', 'requested')
"""

# Per line with a finding: the rules it failed and what is held ($1 the blocking rules; $2 the
# share paid of an unconfirmed month under the `partial` policy, NULL otherwise). A line that
# bills nothing, a credit or an over-budget line holds nothing.
_VERDICTS = """
CREATE TEMP TABLE run_verdicts ON COMMIT DROP AS
SELECT k.contract_number, k.line_no,
       jsonb_agg(jsonb_build_object('rule', k.rule, 'blocking', k.rule = ANY($1::text[]),
                                    'mask', k.mask, 'detail', k.detail) ORDER BY k.rule)
           AS checks,
       CASE WHEN r.status <> 'billed' OR r.amount <= 0 THEN 0
            WHEN bool_or(k.rule = ANY($1::text[])) THEN r.amount
            WHEN $2::numeric IS NOT NULL AND bool_or(k.rule = 'unconfirmed_month')
                THEN r.amount - round(r.amount * $2::numeric, 2)
            ELSE 0 END::numeric(14,2) AS held_amount
FROM run_checks k JOIN run_lines r USING (contract_number, line_no)
GROUP BY k.contract_number, k.line_no, r.status, r.amount
"""

_CHECKS = (
    _CHECK_DOUBLE_ATTENDANCE,
    _CHECK_SITE_CAPACITY,
    _CHECK_DATES,
    _CHECK_DUPLICATE_PERSON,
    _CHECK_LICENSED_PLACES,
    _CHECK_CONFIRMATIONS,
)


async def check_run(
    conn: Connection, *, blocking: list[str], unconfirmed_share: Decimal | None
) -> None:
    """Run the checks over the run's lines (after compute_run): fills `run_verdicts`."""
    await conn.execute(_CHECK_FACTS)
    await conn.execute("ANALYZE run_facts")
    await conn.execute(_CHECKS_TABLE)
    for statement in _CHECKS:
        await conn.execute(statement)
    await conn.execute(_VERDICTS, blocking, unconfirmed_share)
    await conn.execute("CREATE INDEX ON run_verdicts (contract_number, line_no)")


# The run's invoices, all in one statement, before any of their lines: each line's foreign key
# to its invoice is then checked against a table already holding the run's invoices, by its
# index (written a batch at a time beside their lines, the check's plan, made while the table
# held the first batch only, scanned the growing table for every line: 77 µs a line).
_INVOICES = """
WITH inv AS (
    INSERT INTO invoices (id, number, run_id, contract_number, provider_bin, region, period,
                          total, over_budget, lines, issued_at, held)
    SELECT gen_random_uuid(), k.number || '/' || $2, $1::uuid, k.number, k.provider_bin,
           k.region, $2,
           coalesce(sum(r.amount) FILTER (WHERE r.status = 'billed'), 0),
           coalesce(sum(r.amount) FILTER (WHERE r.status = 'over_budget'), 0),
           count(*), now(), coalesce(sum(v.held_amount), 0)
    FROM run_lines r JOIN contracts k ON k.number = r.contract_number
    LEFT JOIN run_verdicts v ON v.contract_number = r.contract_number AND v.line_no = r.line_no
    GROUP BY k.number
    RETURNING *
)
SELECT inv.*, p.name AS provider_name, p.contact
FROM inv LEFT JOIN providers p ON p.bin = inv.provider_bin
ORDER BY inv.number
"""

# The lines of a batch of the run's contracts, under their invoices of the period.
_INVOICE_LINES = """
WITH inv AS (
    SELECT i.id, i.contract_number FROM invoices i
    WHERE i.period = $1 AND i.contract_number = ANY($2::text[])
),
releases AS (
    UPDATE invoice_lines o SET released_by = inv.id
    FROM run_lines r JOIN inv ON inv.contract_number = r.contract_number
    WHERE r.kind = 'release' AND o.invoice_id = r.source_invoice_id
      AND o.line_no = r.source_line_no AND r.contract_number = ANY($2::text[])
)
INSERT INTO invoice_lines (invoice_id, line_no, enrollment_id, iin, form, category, month,
                           kind, amount, computed_amount, previously_billed, status,
                           eligible_days, attended_days, eligible_mask, attended_mask,
                           untariffed_mask, tariff_ids, counted_masks,
                           source_invoice_id, source_line_no, checks, hold, held_amount)
SELECT inv.id, r.line_no, r.enrollment_id, r.iin, r.form, r.category, r.month, r.kind,
       r.amount, r.computed, r.previously, r.status, r.eligible_days, r.attended_days,
       r.eligible_mask, r.attended_mask, r.untariffed_mask, r.tariff_ids, r.counted_masks,
       r.source_invoice_id, r.source_line_no, coalesce(v.checks, '[]'),
       CASE WHEN v.held_amount > 0 THEN 'held' ELSE 'none' END, coalesce(v.held_amount, 0)
FROM run_lines r JOIN inv ON inv.contract_number = r.contract_number
LEFT JOIN run_verdicts v ON v.contract_number = r.contract_number AND v.line_no = r.line_no
WHERE r.contract_number = ANY($2::text[])
"""


async def load_run_inputs(
    conn: Connection, *, period_start: date, months: list[date], year: int
) -> None:
    """Fill the transaction's input tables (months, licenses, tariffs, attendance) of a run."""
    # Sized for a national month; local to the run's transaction.
    await conn.execute("SET LOCAL work_mem = '128MB'")
    # Compiling the run's statements (their estimates are large, so PostgreSQL would) costs more
    # than it saves: 1.3 s of 23.7 s at 300,000 recipients, in the same place every time.
    await conn.execute("SET LOCAL jit = off")
    await conn.execute(_RUN_MONTHS, [period_start, *months])
    await conn.execute(_RUN_LICENSES)
    await conn.execute(_RUN_TARIFFS, year)
    billed_months = sorted({period_start, *months})
    await conn.execute(
        _RUN_ATTENDANCE,
        billed_months,
        billed_months[0],
        billed_months[-1],
    )
    await conn.execute("ANALYZE run_months, run_licenses, run_tariffs, run_attendance")


async def compute_run(
    conn: Connection, *, period_start: date, months: list[date], year: int, region: str | None
) -> list[str]:
    """Fill the transaction's `calc` and `run_lines` tables for a run of `period_start` (after
    load_run_inputs); the contracts it invoices, in order."""
    await conn.execute(_COMPUTE, year, region)
    await conn.execute(_PLACED, period_start, months, year, region)
    await conn.execute("CREATE INDEX ON run_placed (contract_number, line_no)")
    await conn.execute("ANALYZE run_placed")
    await conn.execute(_BUDGET)
    # The invoices are written a batch of contracts at a time (the run's progress): each batch
    # reads its own contracts' lines by this index, not all the run's lines (at 1,000,000
    # recipients, ten batches scanning all lines three times each took 84 s instead of 26 s).
    await conn.execute("CREATE INDEX ON run_lines (contract_number, line_no)")
    await conn.execute("ANALYZE run_lines")
    rows = await conn.fetch("SELECT DISTINCT contract_number FROM run_lines ORDER BY 1")
    return [r["contract_number"] for r in rows]


@dataclass(frozen=True)
class IssuedInvoice:
    """An invoice a run has just issued, with what its provider is told by (`contact`, the
    provider's contact as JSON text, opened; None when billing holds no provider)."""

    id: str
    number: str
    contract_number: str
    provider_bin: str
    provider_name: str | None
    region: str
    total: Decimal
    over_budget: Decimal
    lines: int
    issued_at: datetime
    contact: str | None


async def issue_invoices(conn: Connection, *, run_id: str, period: str) -> list[IssuedInvoice]:
    """The invoices of the run's contracts (after check_run), one statement for all; their
    lines follow, a batch of contracts at a time (write_invoice_lines)."""
    c = cipher()
    return [
        IssuedInvoice(
            id=str(r["id"]),
            number=r["number"],
            contract_number=r["contract_number"],
            provider_bin=r["provider_bin"],
            provider_name=r["provider_name"],
            region=r["region"],
            total=r["total"],
            over_budget=r["over_budget"],
            lines=r["lines"],
            issued_at=r["issued_at"],
            contact=c.open(r["contact"], column="contact"),
        )
        for r in await conn.fetch(_INVOICES, run_id, period)
    ]


async def write_invoice_lines(conn: Connection, *, period: str, contracts: list[str]) -> None:
    """The lines of these contracts' invoices of the period (after issue_invoices)."""
    await conn.execute(_INVOICE_LINES, period, contracts)


@dataclass(frozen=True)
class UnbilledCounts:
    """Dates of the month not billed for want of a tariff; enrollments without a contract."""

    unbilled_dates: int
    uncontracted: int


async def unbilled_counts(
    conn: Connection, *, period_start: date, year: int, region: str | None
) -> UnbilledCounts:
    """Dates not billed for want of a tariff, and enrollments of the month without a contract."""
    row = await conn.fetchrow(
        "SELECT (SELECT coalesce(sum(untariffed_days), 0) FROM calc WHERE month = $1)::int"
        "  AS unbilled_dates,"
        " (SELECT count(*) FROM enrollments e WHERE e.start_date"
        "   <= ($1 + interval '1 month')::date - 1"
        "   AND (e.end_date IS NULL OR e.end_date >= $1)"
        "   AND ($3::text IS NULL OR e.region = $3)"
        "   AND NOT EXISTS (SELECT 1 FROM contracts c WHERE c.provider_bin = e.provider_bin"
        "    AND c.region = e.region AND c.year = $2))::int AS uncontracted",
        period_start,
        year,
        region,
    )
    counts = _returned(row)
    return UnbilledCounts(
        unbilled_dates=counts["unbilled_dates"], uncontracted=counts["uncontracted"]
    )


async def complete_run(
    conn: Connection,
    *,
    run_id: str,
    unbilled_dates: int,
    uncontracted: int,
    checks_seconds: float | None = None,
) -> Run:
    return _run(
        await conn.fetchrow(
            "UPDATE runs r SET status = 'completed', completed_at = clock_timestamp(),"
            "  phase = 'done', progress_done = s.invoices, progress_total = s.invoices,"
            "  invoices = s.invoices, lines = s.lines, total = s.total,"
            "  over_budget = s.over_budget, unbilled_dates = $2, uncontracted = $3,"
            "  held = s.held, held_lines = (SELECT count(*) FROM invoices i"
            "   JOIN invoice_lines l ON l.invoice_id = i.id"
            "   WHERE i.run_id = $1::uuid AND l.hold = 'held'),"
            "  checks_seconds = $4"
            " FROM (SELECT count(*)::int AS invoices, coalesce(sum(lines), 0)::int AS lines,"
            "   coalesce(sum(total), 0) AS total, coalesce(sum(over_budget), 0) AS over_budget,"
            "   coalesce(sum(held), 0) AS held"
            "   FROM invoices WHERE run_id = $1::uuid) s"
            " WHERE r.id = $1::uuid RETURNING r.*",
            run_id,
            unbilled_dates,
            uncontracted,
            checks_seconds,
        )
    )


async def _mark_exhausted_contracts(conn: Connection, *, run_id: str) -> list[Record]:
    """Contracts of this run with lines over budget that were not reported before."""
    return await conn.fetch(
        "WITH hit AS ("
        "  UPDATE contracts c SET exhausted_at = now() FROM invoices i"
        "  WHERE i.run_id = $1::uuid AND i.contract_number = c.number AND i.over_budget > 0"
        "   AND c.exhausted_at IS NULL RETURNING c.*, i.over_budget AS invoice_over_budget)"
        # What each hit contract has been invoiced, summed once for all of them: a sum per
        # contract over lines written moments ago (no statistics yet) was planned as a scan of
        # all the lines per contract (26 s at 1,000,000 recipients, 6,000 contracts).
        " , invoiced AS (SELECT i2.contract_number, sum(l.amount) AS invoiced"
        "  FROM invoices i2 JOIN invoice_lines l ON l.invoice_id = i2.id"
        "  WHERE i2.contract_number IN (SELECT number FROM hit) AND l.status = 'billed'"
        "  GROUP BY i2.contract_number)"
        " SELECT h.*, p.name AS provider_name, coalesce(v.invoiced, 0) AS invoiced"
        " FROM hit h LEFT JOIN providers p ON p.bin = h.provider_bin"
        " LEFT JOIN invoiced v ON v.contract_number = h.number ORDER BY h.number",
        run_id,
    )


@dataclass(frozen=True)
class ExhaustedContract:
    """A contract a run took past its budget, told once (until its budget grows)."""

    number: str
    provider_bin: str
    provider_name: str | None
    region: str
    year: int
    budget: Decimal
    invoiced: Decimal
    # what this run's invoice of it is over budget by
    invoice_over_budget: Decimal


async def mark_exhausted_contracts(conn: Connection, *, run_id: str) -> list[ExhaustedContract]:
    """Contracts of this run with lines over budget that were not reported before."""
    return [
        ExhaustedContract(**{name: r[name] for name in ExhaustedContract.__dataclass_fields__})
        for r in await _mark_exhausted_contracts(conn, run_id=run_id)
    ]


async def get_run_for_update(conn: Connection, run_id: str) -> Run | None:
    return _maybe_run(
        await conn.fetchrow("SELECT * FROM runs WHERE id = $1::uuid FOR UPDATE", run_id)
    )


async def approve_run(conn: Connection, *, run_id: str, approver: str) -> Run:
    await conn.execute(
        "UPDATE invoices SET status = 'approved', approved_by = $2, approved_at = now()"
        " WHERE run_id = $1::uuid AND status = 'issued'",
        run_id,
        approver,
    )
    return _run(
        await conn.fetchrow(
            "UPDATE runs SET approved_by = $2, approved_at = now() WHERE id = $1::uuid RETURNING *",
            run_id,
            approver,
        )
    )


# invoices and payments


@dataclass(frozen=True)
class Invoice:
    """An invoice with its provider's name (and, read alone, the checks its run held on)."""

    id: str
    number: str
    run_id: str
    contract_number: str
    provider_bin: str
    provider_name: str | None
    region: str
    period: str
    status: str
    total: Decimal
    held: Decimal
    rejected: Decimal
    payable: Decimal
    over_budget: Decimal
    lines: int
    issued_at: datetime
    approved_by: str | None
    paid_amount: Decimal | None
    blocking_rules: list[str] | None = None


def _invoice(row: Record) -> Invoice:
    return Invoice(
        id=str(row["id"]),
        number=row["number"],
        run_id=str(row["run_id"]),
        contract_number=row["contract_number"],
        provider_bin=row["provider_bin"],
        provider_name=row["provider_name"],
        region=row["region"],
        period=row["period"],
        status=row["status"],
        total=row["total"],
        held=row["held"],
        rejected=row["rejected"],
        payable=row["payable"],
        over_budget=row["over_budget"],
        lines=row["lines"],
        issued_at=row["issued_at"],
        approved_by=row["approved_by"],
        paid_amount=row["paid_amount"],
        # only an invoice read alone carries its run's blocking rules
        blocking_rules=None if row.get("blocking_rules") is None else list(row["blocking_rules"]),
    )


async def list_invoices(
    conn: Connection,
    *,
    provider: str | None,
    period: str | None,
    region: str | None,
    after: str,
    limit: int,
) -> list[Invoice]:
    rows = await conn.fetch(
        "SELECT i.*, p.name AS provider_name FROM invoices i"
        " LEFT JOIN providers p ON p.bin = i.provider_bin"
        " WHERE ($1::text IS NULL OR i.provider_bin = $1) AND ($2::text IS NULL OR i.period = $2)"
        "  AND ($3::text IS NULL OR i.region = $3) AND i.number > $4"
        " ORDER BY i.number LIMIT $5",
        provider,
        period,
        region,
        after,
        limit,
    )
    return [_invoice(r) for r in rows]


async def get_invoice(conn: Connection, invoice_id: str) -> Invoice | None:
    row = await conn.fetchrow(
        "SELECT i.*, p.name AS provider_name, r.blocking_rules"
        " FROM invoices i JOIN runs r ON r.id = i.run_id"
        " LEFT JOIN providers p ON p.bin = i.provider_bin WHERE i.id = $1::uuid",
        invoice_id,
    )
    return None if row is None else _invoice(row)


@dataclass(frozen=True)
class LineTariff:
    """A tariff version an invoice line was computed by."""

    id: int
    category: str
    effective_from: date
    rate: Decimal
    unit: str
    act_reference: str
    version: int


async def tariffs_by_id(conn: Connection, ids: list[int]) -> list[LineTariff]:
    rows = await conn.fetch(
        "SELECT id, category, effective_from, rate, unit, act_reference, version"
        " FROM tariffs WHERE id = ANY($1::bigint[])",
        ids,
    )
    return [LineTariff(**dict(r.items())) for r in rows]


@dataclass(frozen=True)
class InvoiceLine:
    """An invoice line with its IIN opened; dates as bit masks over the month (bit n: day n+1)."""

    line_no: int
    kind: str
    enrollment_id: str
    iin: str
    form: str
    category: str
    month: date
    amount: Decimal
    computed_amount: Decimal
    previously_billed: Decimal
    status: str
    eligible_days: int
    attended_days: int
    eligible_mask: int
    attended_mask: int
    tariff_ids: list[int]
    counted_masks: list[int]
    untariffed_mask: int
    source_invoice_id: str | None
    source_line_no: int | None
    # the failed checks as JSON text (None: billed before the checks existed)
    checks: str | None
    hold: str
    held_amount: Decimal
    hold_decided_by: str | None
    hold_decided_at: datetime | None
    hold_reason: str | None


def _invoice_line(row: Record) -> InvoiceLine:
    opened = cipher().open_fields(dict(row.items()), text=("iin",))
    source = opened["source_invoice_id"]
    return InvoiceLine(
        **{
            f.name: opened[f.name]
            for f in InvoiceLine.__dataclass_fields__.values()
            if f.name not in ("tariff_ids", "counted_masks", "source_invoice_id")
        },
        tariff_ids=list(opened["tariff_ids"]),
        counted_masks=list(opened["counted_masks"]),
        source_invoice_id=None if source is None else str(source),
    )


async def invoice_lines(conn: Connection, invoice_id: str) -> list[InvoiceLine]:
    rows = await conn.fetch(
        "SELECT * FROM invoice_lines WHERE invoice_id = $1::uuid ORDER BY line_no", invoice_id
    )
    return [_invoice_line(r) for r in rows]


@dataclass(frozen=True)
class RegisterLine:
    """An approved invoice's amount still due (`due`), to its contract's bank details."""

    number: str
    contract_number: str
    provider_bin: str
    provider_name: str | None
    region: str
    period: str
    total: Decimal
    status: str
    approved_by: str | None
    placement: int
    paid_amount: Decimal
    due: Decimal
    iik: str | None
    bik: str | None
    kbk: str | None
    knp: str | None


async def payment_register(conn: Connection, *, region: str, period: str) -> list[RegisterLine]:
    """What the treasury is to pay for a region's month now: each approved invoice's amount
    still due, to the bank details of its contract, until it is paid (a rejected payment
    waits for its correction)."""
    rows = await conn.fetch(
        "SELECT i.number, i.contract_number, i.provider_bin, p.name AS provider_name, i.region,"
        # held lines wait for their review: the treasury pays what is payable
        "  i.period, i.payable AS total, i.status, i.approved_by, i.placement,"
        "  coalesce(i.paid_amount, 0) AS paid_amount,"
        "  i.payable - coalesce(i.paid_amount, 0) AS due, c.iik, c.bik, c.kbk, c.knp"
        " FROM invoices i JOIN contracts c ON c.number = i.contract_number"
        " LEFT JOIN providers p ON p.bin = i.provider_bin"
        " WHERE i.region = $1 AND i.period = $2 AND i.status IN ('approved', 'partially_paid')"
        "  AND i.payable > coalesce(i.paid_amount, 0)"
        " ORDER BY i.number",
        region,
        period,
    )
    return [RegisterLine(**dict(r.items())) for r in rows]


@dataclass(frozen=True)
class PayableInvoice:
    """An invoice a treasury file pays: `total` is what is payable of it."""

    number: str
    status: str
    total: Decimal
    paid_amount: Decimal
    placement: int


async def invoices_for_update(
    conn: Connection, *, region: str, period: str, numbers: list[str]
) -> list[PayableInvoice]:
    rows = await conn.fetch(
        "SELECT number, status, payable AS total, coalesce(paid_amount, 0) AS paid_amount,"
        "  placement"
        " FROM invoices"
        " WHERE region = $1 AND period = $2 AND number = ANY($3::text[]) FOR UPDATE",
        region,
        period,
        numbers,
    )
    return [PayableInvoice(**dict(r.items())) for r in rows]


@dataclass(frozen=True)
class RecordedPayment:
    """A treasury row held: a tranche paid or a payment rejected, of one placement."""

    invoice_number: str
    placement: int
    status: str
    amount_paid: Decimal
    paid_on: date
    reference: str


async def recorded_payments(conn: Connection, numbers: list[str]) -> list[RecordedPayment]:
    """The treasury rows held for these invoices (to recognise a file sent again)."""
    rows = await conn.fetch(
        "SELECT invoice_number, placement, status, amount_paid, paid_on, reference"
        " FROM reconciliations WHERE invoice_number = ANY($1::text[])",
        numbers,
    )
    return [RecordedPayment(**dict(r.items())) for r in rows]


async def record_payments(
    conn: Connection,
    *,
    numbers: list[str],
    placements: list[int],
    amounts: list[Decimal],
    treasury_statuses: list[str],
    paid_on: list[date],
    references: list[str],
    recorded_by: str,
) -> None:
    """Keep each treasury row (a tranche or a rejection) as it came."""
    if not numbers:
        return
    await conn.execute(
        "INSERT INTO reconciliations"
        " (invoice_number, placement, amount_paid, status, paid_on, reference, recorded_by)"
        " SELECT r.*, $7 FROM unnest($1::text[], $2::int[], $3::numeric[], $4::text[],"
        "  $5::date[], $6::text[])"
        "  AS r(number, placement, amount, treasury_status, paid_on, reference)",
        numbers,
        placements,
        amounts,
        treasury_statuses,
        paid_on,
        references,
        recorded_by,
    )


async def settle_invoices(
    conn: Connection,
    *,
    numbers: list[str],
    statuses: list[str],
    paid_amounts: list[Decimal],
    paid_on: list[date],
) -> None:
    """Each invoice's status and sum paid after a treasury file."""
    await conn.execute(
        "UPDATE invoices i SET status = r.status, paid_amount = r.paid, paid_on = r.paid_on"
        " FROM unnest($1::text[], $2::text[], $3::numeric[], $4::date[])"
        "  AS r(number, status, paid, paid_on)"
        " WHERE i.number = r.number",
        numbers,
        statuses,
        paid_amounts,
        paid_on,
    )


@dataclass(frozen=True)
class InvoicePlacement:
    """An invoice's place in its region and month's payment register: `total` as issued,
    `paid_amount` None until a treasury file paid some of it."""

    number: str
    contract_number: str
    region: str
    period: str
    status: str
    total: Decimal
    paid_amount: Decimal | None
    placement: int


def _placement(row: Record) -> InvoicePlacement:
    return InvoicePlacement(**{name: row[name] for name in InvoicePlacement.__dataclass_fields__})


async def get_invoice_for_update(conn: Connection, invoice_id: str) -> InvoicePlacement | None:
    row = await conn.fetchrow("SELECT * FROM invoices WHERE id = $1::uuid FOR UPDATE", invoice_id)
    return None if row is None else _placement(row)


async def place_again(conn: Connection, *, invoice_id: str, status: str) -> InvoicePlacement:
    """A corrected invoice back in its register, as a new placement."""
    row = await conn.fetchrow(
        "UPDATE invoices SET status = $2, placement = placement + 1"
        " WHERE id = $1::uuid RETURNING *",
        invoice_id,
        status,
    )
    return _placement(_returned(row))


@dataclass(frozen=True)
class PeriodSums:
    """A region's month: invoices, and what is issued, approved, paid and outstanding of them,
    held for review, refused by review, and rejected by the treasury."""

    region: str
    period: str
    invoices: int
    issued: Decimal
    approved: Decimal
    paid: Decimal
    outstanding: Decimal
    held: Decimal
    refused: Decimal
    rejected: Decimal
    paid_invoices: int


async def reconciliation_report(
    conn: Connection, *, year: int, region: str | None
) -> list[PeriodSums]:
    """Per region and month of a year: invoiced, approved, paid and outstanding amounts."""
    rows = await conn.fetch(
        "SELECT region, period, count(*)::int AS invoices,"
        "  sum(total)::numeric(14,2) AS issued,"
        "  coalesce(sum(total) FILTER (WHERE status <> 'issued'), 0)::numeric(14,2) AS approved,"
        "  coalesce(sum(paid_amount), 0)::numeric(14,2) AS paid,"
        # issued = paid + outstanding + held + refused: held lines wait for review, refused
        # ones review rejected; outstanding is what is payable and not yet paid
        "  (sum(payable) - coalesce(sum(paid_amount), 0))::numeric(14,2) AS outstanding,"
        "  sum(held)::numeric(14,2) AS held, sum(rejected)::numeric(14,2) AS refused,"
        "  coalesce(sum(payable - coalesce(paid_amount, 0))"
        "   FILTER (WHERE status = 'payment_rejected'), 0)::numeric(14,2) AS rejected,"
        "  count(*) FILTER (WHERE status = 'paid')::int AS paid_invoices"
        " FROM invoices WHERE period LIKE $1::text || '-%' AND ($2::text IS NULL OR region = $2)"
        " GROUP BY region, period ORDER BY region, period",
        str(year),
        region,
    )
    return [PeriodSums(**dict(r.items())) for r in rows]


# metrics


async def run_durations(conn: Connection) -> GaugeRows:
    """Seconds each of the latest runs took, by period and region (`all`: national)."""
    rows = await conn.fetch(
        "SELECT period, coalesce(region, 'all') AS region,"
        "  extract(epoch FROM completed_at - started_at)::float8 AS seconds"
        " FROM runs WHERE completed_at IS NOT NULL ORDER BY period DESC, region LIMIT 24"
    )
    return [({"period": r["period"], "region": r["region"]}, r["seconds"]) for r in rows]


async def runs_by_status(conn: Connection) -> GaugeRows:
    """Runs by status (queued, running, completed, failed), with the failures recorded before
    runs were jobs (`run_failures`) among the failed."""
    rows = await conn.fetch(
        "SELECT status, count(*)::float8 AS n FROM"
        " (SELECT status FROM runs UNION ALL SELECT 'failed' FROM run_failures) s"
        " GROUP BY status"
    )
    return [({"status": r["status"]}, r["n"]) for r in rows]


async def invoices_by_status(conn: Connection) -> GaugeRows:
    rows = await conn.fetch("SELECT status, count(*) AS n FROM invoices GROUP BY status")
    return [({"status": r["status"]}, r["n"]) for r in rows]


# held lines (issue 19): a second person releases or rejects them


async def invoice_line(conn: Connection, invoice_id: str, line_no: int) -> InvoiceLine | None:
    row = await conn.fetchrow(
        "SELECT * FROM invoice_lines WHERE invoice_id = $1::uuid AND line_no = $2",
        invoice_id,
        line_no,
    )
    return None if row is None else _invoice_line(row)


@dataclass(frozen=True)
class LockedLine:
    """An invoice line (its hold and checks), the invoice's number and region, and who started
    the run that issued it."""

    hold: str
    held_amount: Decimal
    status: str
    # the failed checks as JSON text (None: billed before the checks existed)
    checks: str | None
    enrollment_id: str
    month: date
    hold_decided_by: str | None
    hold_decided_at: datetime | None
    number: str
    region: str
    started_by: str


async def lock_invoice_line(conn: Connection, invoice_id: str, line_no: int) -> LockedLine | None:
    """A line with its invoice and the run that issued it, both locked for a decision."""
    row = await conn.fetchrow(
        "SELECT l.hold, l.held_amount, l.status, l.checks, l.enrollment_id, l.month,"
        "  l.hold_decided_by, l.hold_decided_at, i.number, i.region, r.started_by"
        " FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id"
        " JOIN runs r ON r.id = i.run_id"
        " WHERE l.invoice_id = $1::uuid AND l.line_no = $2 FOR UPDATE OF l, i",
        invoice_id,
        line_no,
    )
    return None if row is None else LockedLine(**dict(row.items()))


async def decide_line(
    conn: Connection, *, invoice_id: str, line_no: int, decision: str, by: str, reason: str
) -> None:
    """A held line released (its held amount becomes payable: a paid invoice is due again in
    part) or rejected (its held amount is never paid)."""
    await conn.execute(
        "WITH l AS (UPDATE invoice_lines SET hold = $3, hold_decided_by = $4,"
        "   hold_decided_at = clock_timestamp(), hold_reason = $5"
        "  WHERE invoice_id = $1::uuid AND line_no = $2 AND hold = 'held' RETURNING *)"
        " UPDATE invoices i SET held = i.held - l.held_amount,"
        "  rejected = i.rejected + CASE WHEN $3 = 'rejected' THEN l.held_amount ELSE 0 END,"
        "  status = CASE WHEN $3 = 'released' AND i.status = 'paid' AND l.held_amount > 0"
        "   THEN 'partially_paid' ELSE i.status END"
        " FROM l WHERE i.id = l.invoice_id",
        invoice_id,
        line_no,
        decision,
        by,
        reason,
    )


# --- attendance confirmations (issue 19): requests, answers, the providers' and regions' view ---


@dataclass(frozen=True)
class ConfirmationCandidate:
    """An enrollment with attendance in a month that has not been asked about it yet."""

    enrollment_id: str
    iin: str
    provider_bin: str
    provider_name: str | None
    region: str
    form: str
    category: str
    attended_days: int


async def confirmation_candidates(
    conn: Connection, *, month: date, region: str | None
) -> list[ConfirmationCandidate]:
    rows = await conn.fetch(
        "SELECT e.enrollment_id, e.iin, e.provider_bin, p.name AS provider_name, e.region,"
        "  e.form, e.category, a.days"
        " FROM (SELECT enrollment_id, count(*)::integer AS days FROM attendance"
        "   WHERE day >= $1 AND day < ($1 + interval '1 month')::date GROUP BY enrollment_id) a"
        " JOIN enrollments e USING (enrollment_id)"
        " LEFT JOIN providers p ON p.bin = e.provider_bin"
        " WHERE ($2::text IS NULL OR e.region = $2)"
        "  AND NOT EXISTS (SELECT 1 FROM attendance_confirmations c"
        "   WHERE c.enrollment_id = e.enrollment_id AND c.month = $1)"
        " ORDER BY e.enrollment_id",
        month,
        region,
    )
    c = cipher()
    return [
        ConfirmationCandidate(
            enrollment_id=r["enrollment_id"],
            iin=c.open(r["iin"], column="iin") or "",
            provider_bin=r["provider_bin"],
            provider_name=r["provider_name"],
            region=r["region"],
            form=r["form"],
            category=r["category"],
            attended_days=r["days"],
        )
        for r in rows
    ]


async def insert_confirmation_requests(
    conn: Connection,
    *,
    month: date,
    enrollment_ids: list[str],
    attended_days: list[int],
    token_digests: list[bytes],
    code_digests: list[bytes],
    requested_at: datetime,
    expires_at: datetime,
    requested_by: str,
) -> set[str]:
    """One `requested` row per enrollment; those already asked about the month are kept as
    they are. Returns the enrollments asked now."""
    rows = await conn.fetch(
        "INSERT INTO attendance_confirmations (enrollment_id, month, state, attended_days,"
        "  token_digest, code_digest, requested_at, expires_at, requested_by)"
        " SELECT u.e, $1, 'requested', u.d, u.t, u.c, $6, $7, $8"
        " FROM unnest($2::text[], $3::integer[], $4::bytea[], $5::bytea[]) AS u(e, d, t, c)"
        " ON CONFLICT (enrollment_id, month) DO NOTHING RETURNING enrollment_id",
        month,
        enrollment_ids,
        attended_days,
        token_digests,
        code_digests,
        requested_at,
        expires_at,
        requested_by,
    )
    return {r["enrollment_id"] for r in rows}


@dataclass(frozen=True)
class Confirmation:
    enrollment_id: str
    month: date
    state: str
    attended_days: int
    provider_bin: str
    provider_name: str | None
    region: str
    form: str
    category: str
    requested_at: datetime
    expires_at: datetime | None
    answered_at: datetime | None
    answered_via: str | None
    failed_attempts: int
    code_digest: bytes | None
    dispute_reason: str | None
    updated_at: datetime


_CONFIRMATION = (
    "SELECT c.enrollment_id, c.month, c.state, c.attended_days, e.provider_bin,"
    "  p.name AS provider_name, e.region, e.form, e.category, c.requested_at, c.expires_at,"
    "  c.answered_at, c.answered_via, c.failed_attempts, c.code_digest, c.dispute_reason,"
    "  c.updated_at"
    " FROM attendance_confirmations c JOIN enrollments e USING (enrollment_id)"
    " LEFT JOIN providers p ON p.bin = e.provider_bin"
)


def _confirmation(row: Record) -> Confirmation:
    values = dict(row.items())
    values["dispute_reason"] = cipher().open(row["dispute_reason"], column="dispute_reason")
    return Confirmation(**values)


async def confirmation_by_token(conn: Connection, token_digest: bytes) -> Confirmation | None:
    """The request a link's token answers, locked for the answer."""
    row = await conn.fetchrow(
        _CONFIRMATION + " WHERE c.token_digest = $1 FOR UPDATE OF c", token_digest
    )
    return _confirmation(row) if row is not None else None


async def confirmations_of_enrollment(conn: Connection, enrollment_id: str) -> list[Confirmation]:
    """Every month asked about an enrollment, locked for an answer by code."""
    rows = await conn.fetch(
        _CONFIRMATION + " WHERE c.enrollment_id = $1 ORDER BY c.month FOR UPDATE OF c",
        enrollment_id,
    )
    return [_confirmation(r) for r in rows]


async def count_wrong_code(conn: Connection, enrollment_id: str) -> int:
    """One more wrong code for an enrollment's open requests; the most any of them holds."""
    value = await conn.fetchval(
        "UPDATE attendance_confirmations SET failed_attempts = failed_attempts + 1"
        " WHERE enrollment_id = $1 AND state = 'requested' RETURNING failed_attempts",
        enrollment_id,
    )
    return int(value or 0)


async def record_confirmation_answer(
    conn: Connection,
    *,
    enrollment_id: str,
    month: date,
    state: str,
    via: str,
    reason: str | None,
) -> None:
    """The answer; the digests stay, so a second use finds the month answered (single use)."""
    await conn.execute(
        "UPDATE attendance_confirmations SET state = $3, answered_via = $4,"
        "  dispute_reason = $5, answered_at = clock_timestamp(), updated_at = clock_timestamp()"
        " WHERE enrollment_id = $1 AND month = $2",
        enrollment_id,
        month,
        state,
        via,
        cipher().seal(reason, column="dispute_reason"),
    )


async def attended_dates(conn: Connection, *, enrollment_id: str, month: date) -> list[date]:
    rows = await conn.fetch(
        "SELECT day FROM attendance WHERE enrollment_id = $1"
        " AND day >= $2 AND day < ($2 + interval '1 month')::date ORDER BY day",
        enrollment_id,
        month,
    )
    return [r["day"] for r in rows]


async def list_confirmations(
    conn: Connection,
    *,
    month: date | None,
    provider_bin: str | None,
    region: str | None,
    state: str | None,
    after: tuple[date, str] | None,
    limit: int,
) -> list[Confirmation]:
    """Confirmations by month and enrollment, filtered; paged after (month, enrollment)."""
    rows = await conn.fetch(
        _CONFIRMATION + " WHERE ($1::date IS NULL OR c.month = $1)"
        " AND ($2::text IS NULL OR e.provider_bin = $2)"
        " AND ($3::text IS NULL OR e.region = $3)"
        " AND ($4::text IS NULL OR c.state = $4)"
        " AND ($5::date IS NULL OR (c.month, c.enrollment_id) > ($5, $6))"
        " ORDER BY c.month, c.enrollment_id LIMIT $7",
        month,
        provider_bin,
        region,
        state,
        after[0] if after else None,
        after[1] if after else "",
        limit,
    )
    return [_confirmation(r) for r in rows]
