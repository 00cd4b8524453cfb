"""Use cases of the billing service: one transaction each, rules, writes, outbox."""

import asyncio
import contextlib
import dataclasses
import hmac
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import asyncpg
from ssu_common import (
    Connection,
    Json,
    Problem,
    audit,
    current_correlation_id,
    emit_many,
    field_error,
    get_logger,
    same_person,
    work_context,
)
from ssu_common.audit import Aggregate
from ssu_common.errors import DomainError, ProblemKind, Texts, general
from ssu_contracts import (
    BudgetExhaustedV1,
    ConfirmationRequestedV1,
    Contact,
    EnrollmentDisruptedV1,
    EnrollmentEndedV1,
    EnrollmentResumedV1,
    EnrollmentStartedV1,
    Event,
    InvoiceIssuedV1,
    LicenseEvent,
    LicenseSuspendedV1,
    RecipientDeregisteredV1,
    RunCompletedV1,
    iin_birth_date,
)

from ssu_billing import domain, store

log = get_logger(__name__)

ALMATY = ZoneInfo("Asia/Almaty")


def almaty_today() -> date:
    """Today's calendar date in Asia/Almaty: no service can have been given after it."""
    return datetime.now(ALMATY).date()


class EnrollmentNotYetKnown(Exception):
    """An enrollment event arrived before the start of that enrollment: retried later."""


class BillingError(DomainError):
    """A domain refusal (ssu_common.errors) of one of billing's kinds (domain.py), answered by
    the HTTP kit as a problem of its kind; without a kind of its own, the general kind of its
    status."""

    def __init__(
        self,
        status: int,
        detail: str | Texts,
        *,
        field: str | None = None,
        kind: ProblemKind | None = None,
        **extra: Json,
    ) -> None:
        super().__init__(detail, field=field, kind=kind or general(status), **extra)


class NotFound(BillingError):
    def __init__(self, detail: Texts) -> None:
        super().__init__(404, detail)


NO_CONTRACT = Texts("no such contract", "мұндай шарт жоқ", "такого договора нет")
NO_INVOICE = Texts("no such invoice", "мұндай шот жоқ", "такого счёта нет")
NO_ENROLLMENT = Texts("no such enrollment", "мұндай қабылдау жоқ", "такого зачисления нет")
NO_LINE = Texts("no such invoice line", "шотта мұндай жол жоқ", "такой строки счёта нет")
NOT_FOUND = Texts("not found", "табылмады", "не найдено")


def _others_bin(detail: Texts, errors: list[dict[str, str | int]]) -> BillingError:
    return BillingError(403, detail, kind=domain.NOT_THE_KEYS_BIN, errors=errors)


def refuse_other_bin(*, key_bin: str | None, client: str, provider_bin: str, reads: bool) -> None:
    """A provider's key (`key_bin`) reports attendance, or reads confirmations (`reads`), for
    its own BIN only."""
    if key_bin is None or provider_bin == key_bin:
        return
    detail = (
        Texts(
            f"the key of {client} sees the confirmations of BIN {key_bin} only",
            f"{client} кілті тек {key_bin} БСН-інің растауларын көреді",
            f"ключ {client} видит подтверждения только по БИН {key_bin}",
        )
        if reads
        else Texts(
            f"the key of {client} reports attendance for BIN {key_bin} only",
            f"{client} кілті қатысуды тек {key_bin} БСН-і бойынша береді",
            f"ключ {client} передаёт посещаемость только по БИН {key_bin}",
        )
    )
    raise _others_bin(
        detail, [{"field": "provider_bin", "message": f"not the key's BIN {key_bin}"}]
    )


async def apply_license_event(*, conn: Connection, event_type: str, data: LicenseEvent) -> bool:
    """Keep a license snapshot and its status history; an older seq than held is ignored."""
    newer = await store.upsert_license_if_newer(
        conn,
        license_number=data.license_number,
        bin=data.bin,
        status=data.status.value,
        seq=data.seq,
        subtypes=json.dumps([s.model_dump(mode="json") for s in data.subtypes]),
        sites=json.dumps([{"site_id": s.site_id, "places": s.places} for s in data.sites]),
    )
    if not newer:
        log.info("license.stale_event_ignored", license=data.license_number, seq=data.seq)
        return False
    if event_type in store.STATUS_CHANGES:
        await store.insert_license_transition(
            conn,
            license_number=data.license_number,
            seq=data.seq,
            status=data.status.value,
            effective_date=data.effective_date,
            event_type=event_type,
            until=data.until if isinstance(data, LicenseSuspendedV1) else None,
        )
        await store.refresh_license_active_ranges(conn, data.license_number)
    await store.upsert_provider(
        conn,
        bin=data.bin,
        name=data.provider_name,
        legal_form=data.legal_form.value,
        region=data.region,
        contact=data.contact.model_dump_json(),
        license_number=data.license_number,
        status=data.status.value,
        seq=data.seq,
    )
    return True


async def start_enrollment(*, conn: Connection, data: EnrollmentStartedV1) -> None:
    await store.insert_enrollment(
        conn,
        enrollment_id=data.enrollment_id,
        iin=data.iin,
        provider_bin=data.provider_bin,
        license_number=data.license_number,
        site_id=data.site_id,
        region=data.region,
        form=data.form.value,
        category=data.category.value,
        start_date=data.start_date,
        seq=data.seq,
        # the addressee is the recipient unless a guardian: then the name is not theirs
        person_key=None
        if data.addressee.is_guardian
        else domain.person_key(data.addressee.name, iin_birth_date(data.iin)),
    )


def _check_change(outcome: store.EnrollmentChange, enrollment_id: str, seq: int | None) -> None:
    """An event older than the enrollment's state is ignored; one before its start waits."""
    if outcome is store.EnrollmentChange.UNKNOWN:
        raise EnrollmentNotYetKnown(enrollment_id)
    if outcome is store.EnrollmentChange.STALE:
        log.info("enrollment.stale_event_ignored", enrollment=enrollment_id, seq=seq)


async def end_enrollment(*, conn: Connection, data: EnrollmentEndedV1) -> None:
    outcome = await store.end_enrollment(
        conn, enrollment_id=data.enrollment_id, end_date=data.end_date, seq=data.seq
    )
    _check_change(outcome, data.enrollment_id, data.seq)


async def disrupt_enrollment(*, conn: Connection, data: EnrollmentDisruptedV1) -> None:
    outcome = await store.set_enrollment_status(
        conn, enrollment_id=data.enrollment_id, status="disrupted", seq=data.seq
    )
    _check_change(outcome, data.enrollment_id, data.seq)


async def resume_enrollment(*, conn: Connection, data: EnrollmentResumedV1) -> None:
    outcome = await store.set_enrollment_status(
        conn, enrollment_id=data.enrollment_id, status="active", seq=data.seq
    )
    _check_change(outcome, data.enrollment_id, data.seq)


# Deaths


async def record_death(*, conn: Connection, data: RecipientDeregisteredV1) -> None:
    """A de-registration for death fills `deaths` (read by the run's checks); one for another
    reason (moved, declined) changes nothing here: the enrollments' own ends carry it."""
    if data.reason != "died":
        return
    await store.record_death(conn, iin=data.iin, died_on=data.deregistered_on)
    log.info("death.recorded", region=data.region)


# tariffs and contracts


async def put_tariff(
    *,
    conn: Connection,
    region: str,
    form: str,
    category: str,
    effective_from: date,
    rate: Decimal,
    unit: str,
    act_reference: str,
    limits: dict[str, dict[str, tuple[Decimal, Decimal]]],
    actor: str,
    ended_from: date | None = None,
) -> tuple[store.Tariff, bool]:
    """Record an akimat's tariff; a change to one held is its next version (the one replaced
    stays, superseded), the same again changes nothing. A rate outside the national limits for
    its form is refused. Returns the current version and whether the tariff is new."""
    why = domain.rate_outside_limits(rate=rate, form=form, unit=unit, limits=limits)
    if why is not None:
        raise field_error("rate", why)
    if ended_from is not None and ended_from <= effective_from:
        raise field_error("ended_from", f"must be after effective_from ({effective_from})")
    async with conn.transaction():
        held = await store.current_tariff_for_update(
            conn, region=region, form=form, category=category, effective_from=effective_from
        )
        if held is not None and (
            held.rate,
            held.unit,
            held.act_reference,
            held.ended_from,
        ) == (rate, unit, act_reference, ended_from):
            return held, False
        row = await store.insert_tariff_version(
            conn,
            region=region,
            form=form,
            category=category,
            effective_from=effective_from,
            rate=rate,
            unit=unit,
            act_reference=act_reference,
            ended_from=ended_from,
            created_by=actor,
        )
        ending = f", ended from {ended_from}" if ended_from else ""
        await audit.record(
            conn,
            aggregate=Aggregate("tariff", f"{region}/{form}/{category}/{effective_from}"),
            action="tariff.put",
            reason=f"version {row.version}: {rate} KZT per {unit}{ending}, act {act_reference}",
        )
        return row, held is None


async def create_contract(
    *, conn: Connection, number: str, provider_bin: str, region: str, year: int, budget: Decimal
) -> store.Contract:
    async with conn.transaction():
        if not await store.provider_known(conn, provider_bin):
            raise field_error("provider_bin", "no licensed provider with this BIN is known")
        row = await store.insert_contract(
            conn, number=number, provider_bin=provider_bin, region=region, year=year, budget=budget
        )
        if row is None:
            held = await store.get_contract(conn, number) or await store.contract_for(
                conn, provider_bin=provider_bin, region=region, year=year
            )
            raise BillingError(
                409,
                Texts(
                    "a contract with this number, or for this provider, region and year, exists",
                    "осы нөмірмен немесе осы жеткізуші, өңір мен жылға шарт бар",
                    "договор с этим номером или для этого поставщика, региона и года уже есть",
                ),
                kind=domain.CONTRACT_EXISTS,
                contract_number=held.number if held else None,
            )
        await audit.record(
            conn,
            aggregate=Aggregate("contract", number),
            action="contract.created",
            reason=f"{provider_bin} in {region} for {year}, budget {budget} KZT",
        )
        return row


async def amend_budget(
    *,
    conn: Connection,
    number: str,
    budget: Decimal,
    act_number: str,
    act_date: date,
    actor: str,
    region_scope: str | None,
) -> tuple[store.Contract, list[store.BudgetAmendment]]:
    """Amend a contract's budget by an act; over-budget lines are offered again in the next
    run once it grows. Not below what is already invoiced, nor by an act dated after today."""
    today = almaty_today()
    if act_date > today:
        raise field_error("act_date", f"is after today ({today.isoformat()}, Asia/Almaty)")
    async with conn.transaction():
        contract = await store.get_contract_for_update(conn, number)
        if contract is None or (region_scope is not None and contract.region != region_scope):
            raise NotFound(NO_CONTRACT)
        invoiced = await store.contract_invoiced(conn, number)
        if budget < invoiced:
            raise field_error("budget", f"is less than already invoiced ({invoiced:.2f})")
        row = await store.amend_budget(
            conn,
            number=number,
            budget=budget,
            act_number=act_number,
            act_date=act_date,
            amended_by=actor,
        )
        await audit.record(
            conn,
            aggregate=Aggregate("contract", number),
            action="contract.budget_amended",
            reason=f"{contract.budget} -> {budget} KZT, act {act_number} of {act_date}",
        )
        return row, await store.budget_amendments(conn, number)


# attendance


@dataclass(frozen=True)
class AttendanceInput:
    ref: str
    enrollment_id: str | None
    iin: str | None
    provider_bin: str
    day: date


def refuse_future_dates(rows: list[AttendanceInput]) -> None:
    """A 422 naming every date after today (Asia/Almaty): attendance is reported, not planned."""
    today = almaty_today()
    future = [row for row in rows if row.day > today]
    if future:
        message = f"is after today ({today.isoformat()}, Asia/Almaty)"
        raise Problem(
            422,
            f"{future[0].ref}: {future[0].day.isoformat()} {message}",
            errors=[{"field": row.ref, "message": message} for row in future],
        )


@dataclass(frozen=True)
class RefusedDate:
    """An attendance row refused: its reference (`enrollments.0.dates.1`, or a file's line),
    why, and the date as given."""

    ref: str
    reason: str
    value: str


@dataclass(frozen=True)
class RecordedDate:
    """An attendance row whose date was recorded before (a repeat changes nothing)."""

    ref: str
    value: str


# Rows handled per turn of the event loop in an import (about a millisecond): a large file
# does not hold up health checks and other requests.
_CHUNK_ROWS = 250


@dataclass(frozen=True)
class AttendanceImport:
    accepted: int
    rejected: int
    # the first `max_errors` refused rows by line: (line, field, reason, value)
    errors: list[domain.RowError]
    # lines of dates recorded before (not refused: a repeat changes nothing)
    already_recorded: list[int] = field(default_factory=list)


async def import_attendance(
    *,
    conn: Connection,
    text: str,
    month: domain.Month | None,
    region_scope: str | None,
    max_errors: int,
    provider_bin_scope: str | None = None,
) -> AttendanceImport:
    """Record a provider's attendance file; every refused row is counted, the first
    `max_errors` are reported with their lines. A provider's key (`provider_bin_scope`) sends
    its own BIN only: a file naming another is refused whole (403)."""
    rows: list[AttendanceInput] = []
    parse_errors: list[domain.RowError] = []
    parse_refused = 0
    for n, item in enumerate(domain.attendance_rows(text), start=1):
        if isinstance(item, domain.RowError):
            parse_refused += 1
            if len(parse_errors) < max_errors:
                parse_errors.append(item)
        else:
            rows.append(
                AttendanceInput(
                    ref=str(item.line),
                    enrollment_id=None,
                    iin=item.iin,
                    provider_bin=item.provider_bin,
                    day=item.day,
                )
            )
        if n % _CHUNK_ROWS == 0:
            await asyncio.sleep(0)  # the loop's turn
    _refuse_other_bins(rows, provider_bin_scope)
    already: list[RecordedDate] = []
    accepted, refused = await record_attendance(
        conn=conn, rows=rows, month=month, region_scope=region_scope, already=already
    )
    errors = parse_errors + [
        domain.RowError(int(e.ref), "date", e.reason, e.value) for e in refused
    ]
    errors.sort(key=lambda e: e.line)
    return AttendanceImport(
        accepted=accepted,
        rejected=parse_refused + len(refused),
        errors=errors[:max_errors],
        already_recorded=[int(a.ref) for a in already],
    )


def _refuse_other_bins(rows: list[AttendanceInput], provider_bin: str | None) -> None:
    """A 403 naming the rows of a provider's file that report for another BIN."""
    if provider_bin is None:
        return
    other = [row for row in rows if row.provider_bin != provider_bin]
    if other:
        raise _others_bin(
            Texts(
                f"line {other[0].ref}: a provider's key reports attendance for BIN {provider_bin}"
                " only",
                f"{other[0].ref}-жол: жеткізушінің кілті қатысуды тек {provider_bin} БСН-і"
                " бойынша береді",
                f"строка {other[0].ref}: ключ поставщика передаёт посещаемость только по БИН"
                f" {provider_bin}",
            ),
            [
                {"field": "provider_bin", "line": int(row.ref), "message": "not the key's BIN"}
                for row in other[:100]
            ],
        )


async def record_attendance(
    *,
    conn: Connection,
    rows: list[AttendanceInput],
    month: domain.Month | None,
    region_scope: str | None,
    already: list[RecordedDate] | None = None,
) -> tuple[int, list[RefusedDate]]:
    """Keep every valid row; report each refused one (future, outside the month, unknown,
    duplicate); a date recorded before is added to `already` (not refused). A regional key
    finds only its region's enrollments."""
    if already is None:
        already = []
    errors: list[RefusedDate] = []
    seen: dict[tuple[str | None, str | None, str, date], str] = {}
    candidates: list[AttendanceInput] = []
    today = almaty_today()
    for n, row in enumerate(rows, start=1):
        if n % _CHUNK_ROWS == 0:
            await asyncio.sleep(0)  # a large file leaves the loop its turns
        if row.day > today:
            errors.append(
                RefusedDate(
                    row.ref,
                    f"date is after today ({today.isoformat()}, Asia/Almaty)",
                    row.day.isoformat(),
                )
            )
            continue
        if month is not None and not month.contains(row.day):
            errors.append(
                RefusedDate(
                    row.ref, f"date is outside the month {month.label}", row.day.isoformat()
                )
            )
            continue
        key = (row.enrollment_id, row.iin, row.provider_bin, row.day)
        if key in seen:
            errors.append(RefusedDate(row.ref, f"duplicate of {seen[key]}", row.day.isoformat()))
            continue
        seen[key] = row.ref
        candidates.append(row)
    async with conn.transaction():
        resolved = await store.resolve_attendance(
            conn,
            lines=list(range(len(candidates))),
            enrollment_ids=[r.enrollment_id for r in candidates],
            iins=[r.iin for r in candidates],
            provider_bins=[r.provider_bin for r in candidates],
            days=[r.day for r in candidates],
            region=region_scope,
        )
        valid: list[tuple[int, str]] = []
        named: dict[tuple[str, date], str] = {}  # one date of an enrollment, by id or by IIN
        for found in resolved:
            row = candidates[found.line]
            enrollment_id = found.enrollment_id
            reason = None
            if enrollment_id is None:
                reason = (
                    "unknown enrollment of this provider"
                    if row.enrollment_id is not None
                    else "no enrollment of this IIN at this provider on this date"
                )
            elif found.iin_matches > 1:
                reason = "several enrollments of this IIN at this provider: name enrollment_id"
            elif (found.start_date is not None and found.start_date > row.day) or (
                found.end_date is not None and found.end_date < row.day
            ):
                reason = "date is outside the enrollment"
            elif (enrollment_id, row.day) in named:
                reason = f"duplicate of {named[enrollment_id, row.day]}"
            if reason is not None:
                errors.append(RefusedDate(row.ref, reason, row.day.isoformat()))
                continue
            assert enrollment_id is not None  # a row naming no enrollment has its reason
            named[enrollment_id, row.day] = row.ref
            valid.append((found.line, enrollment_id))
        new_lines = set(
            await store.insert_attendance(
                conn,
                lines=[line for line, _ in valid],
                enrollment_ids=[eid for _, eid in valid],
                days=[candidates[line].day for line, _ in valid],
            )
        )
        await audit.record_many(
            conn,
            aggregates=[
                Aggregate("enrollment", eid)
                for eid in dict.fromkeys(eid for line, eid in valid if line in new_lines)
            ],
            action="attendance.recorded",
            reason=f"{len(new_lines)} new dates in this request",
        )
    already.extend(
        RecordedDate(candidates[line].ref, candidates[line].day.isoformat())
        for line, _ in valid
        if line not in new_lines
    )
    return len(new_lines), errors


async def withdraw_attendance(
    *,
    conn: Connection,
    enrollment_id: str,
    day: date,
    provider_bin_scope: str | None,
    region_scope: str | None,
) -> None:
    """Withdraw a recorded date not yet invoiced; an invoiced one needs an adjustment."""
    async with conn.transaction():
        enrollment = await store.get_enrollment(conn, enrollment_id)
        if enrollment is None or (region_scope is not None and enrollment.region != region_scope):
            raise NotFound(NO_ENROLLMENT)
        if provider_bin_scope is not None and enrollment.provider_bin != provider_bin_scope:
            raise _others_bin(
                Texts(
                    f"a provider's key withdraws attendance for BIN {provider_bin_scope} only",
                    f"жеткізушінің кілті қатысуды тек {provider_bin_scope} БСН-і бойынша алып"
                    " тастайды",
                    f"ключ поставщика отзывает посещаемость только по БИН {provider_bin_scope}",
                ),
                [{"field": "enrollment_id", "message": "not an enrollment of the key's BIN"}],
            )
        invoice = await store.invoice_counting_attendance(
            conn, enrollment_id=enrollment_id, day=day
        )
        if invoice is not None:
            raise BillingError(
                409,
                Texts(
                    f"{day} is invoiced ({invoice}): withdrawing it needs an adjustment,"
                    " not a withdrawal",
                    f"{day} шотқа енген ({invoice}): оны алып тастау емес, түзету керек",
                    f"{day} учтена в счёте ({invoice}): нужна корректировка, а не отзыв",
                ),
                kind=domain.ATTENDANCE_INVOICED,
                field="day",
                invoice_number=invoice,
            )
        if not await store.delete_attendance(conn, enrollment_id=enrollment_id, day=day):
            raise NotFound(
                Texts(
                    f"{day} is not recorded for this enrollment",
                    f"{day} бұл қабылдау үшін жазылмаған",
                    f"{day} не записана для этого зачисления",
                )
            )
        await audit.record(
            conn,
            aggregate=Aggregate("enrollment", enrollment_id),
            action="attendance.withdrawn",
            reason=f"{day}",
        )


# billing runs

# A run left `running` by a process that stopped (a crash, a deploy) is begun again by the next
# process to bill: its work was one transaction, rolled back with the process, so nothing of it
# was kept and billing it from the start is safe. After this many beginnings it is failed
# instead: a run that stops every process billing it must not stop them for ever.
MAX_RUN_ATTEMPTS = 3
# The invoices' lines are written in at most this many statements (contracts in order), so a
# poller sees the contracts done move while the set-based work stays a few statements.
INVOICE_BATCHES = 10


@dataclass(frozen=True)
class RunOutcome:
    run: store.Run
    repeated: bool


def run_scope(*, requested: str | None, key_region: str | None) -> str | None:
    """The region a run bills: a regional key's own (never national), else what was asked."""
    if key_region is None:
        return requested
    if requested is not None and requested != key_region:
        raise BillingError(
            403,
            Texts(
                f"a key of region {key_region} runs billing for region {key_region} only",
                f"{key_region} өңірінің кілті тек {key_region} өңірінің есептеуін іске қосады",
                f"ключ региона {key_region} запускает расчёт только региона {key_region}",
            ),
            kind=domain.RUN_OTHER_REGION,
            errors=[{"field": "region", "message": f"not the key's region {key_region}"}],
        )
    return key_region


async def accept_run(
    *,
    conn: Connection,
    period: str,
    region: str | None,
    started_by: str,
    policy: domain.CheckPolicy | None = None,
) -> RunOutcome:
    """Accept a run of a month of one region (or, national, of every region) for the run
    worker to bill (`bill_waiting_runs`), under the check policy of now; a period and scope
    already accepted (queued, running or completed) gives that run again."""
    month = domain.Month.parse(period)
    why = domain.month_not_ended(month, almaty_today())
    if why is not None:
        raise field_error("period", why)
    policy = policy or domain.CheckPolicy()
    async with conn.transaction():
        await store.lock_run_acceptance(conn)
        existing = await store.get_run_by_period(conn, period, region)
        if existing is not None:
            return RunOutcome(run=existing, repeated=True)
        if region is not None and await store.get_run_by_period(conn, period, None):
            raise BillingError(
                409,
                Texts(
                    f"{period} was billed by a national run, which covered region {region}",
                    f"{period} ұлттық есептеумен есептелді, ол {region} өңірін де қамтыды",
                    f"{period} рассчитан национальным расчётом, который охватил регион {region}",
                ),
                kind=domain.MONTH_BILLED_NATIONALLY,
                period=period,
            )
        out_of_order = domain.run_out_of_order(
            month=month,
            region=region,
            held=await store.runs_of_year(conn, month.first.year),
        )
        if out_of_order is not None:
            raise BillingError(
                409,
                Texts(
                    out_of_order,
                    f"{period}: айлар ретімен есептеледі ({out_of_order})",
                    f"{period}: месяцы рассчитываются по порядку ({out_of_order})",
                ),
                kind=domain.MONTHS_OUT_OF_ORDER,
                errors=[{"field": "period", "message": out_of_order}],
            )
        run = await store.insert_run(
            conn,
            run_id=str(uuid.uuid4()),
            period=period,
            region=region,
            period_start=month.first,
            started_by=started_by,
            blocking_rules=policy.blocking(),
            unconfirmed_share=policy.partial_share(),
            correlation_id=current_correlation_id(),
        )
        await store.announce_run(conn, run.id)
    log.info("billing.run_accepted", run_id=run.id, period=period, region=region)
    return RunOutcome(run=run, repeated=False)


async def bill_waiting_runs(*, pool: asyncpg.Pool) -> int:
    """Bill the accepted runs one after another in the order accepted, unless another process
    is billing (then it bills them); how many runs this call finished (completed or failed)."""
    finished = 0
    async with pool.acquire() as conn:
        if not await store.try_lock_runs(conn):
            return 0
        try:
            while (run := await store.next_unfinished_run(conn)) is not None:
                await _bill(conn=conn, pool=pool, run=run)
                finished += 1
        finally:
            # a connection broken mid-run is closed by the pool, which releases the lock too
            with contextlib.suppress(Exception):
                await store.unlock_runs(conn)
    return finished


async def _bill(*, conn: Connection, pool: asyncpg.Pool, run: store.Run) -> None:
    """Bill one run on `conn` (holding the runs' lock); a failure fails the run, with why."""
    if run.status == "running":
        if run.attempts >= MAX_RUN_ATTEMPTS:
            error = (
                f"interrupted {run.attempts} times: the process billing it stopped each time"
                " (see the service's log); nothing of it was kept"
            )
            log.error("billing.run_failed", run_id=run.id, period=run.period, error=error)
            await store.fail_run(conn, run.id, error=error)
            return
        log.warning("billing.run_resumed", run_id=run.id, period=run.period, attempt=run.attempts)
    await store.begin_run(conn, run.id)
    with work_context(correlation_id=run.correlation_id or str(uuid.uuid4()), run_id=run.id):
        try:
            await _run_billing(conn=conn, pool=pool, run=run)
        except Exception as exc:
            # Nothing of the run is kept (one transaction); the run says why, for operators.
            error = exc.detail if isinstance(exc, Problem) else repr(exc)[:2000]
            log.error(
                "billing.run_failed",
                run_id=run.id,
                period=run.period,
                region=run.region,
                error=error[:500],
            )
            await store.fail_run(conn, run.id, error=error)


def _scope(region: str | None) -> str:
    return "national" if region is None else f"region {region}"


async def _progress(
    pool: asyncpg.Pool,
    run_id: str,
    phase: store.RunPhase,
    *,
    done: int = 0,
    total: int | None = None,
) -> None:
    """Committed from a connection of its own: the run's transaction is still open."""
    async with pool.acquire() as other:
        await store.set_run_progress(other, run_id, phase=phase, done=done, total=total)


async def _run_billing(*, conn: Connection, pool: asyncpg.Pool, run: store.Run) -> None:
    """Invoice the run's month: one invoice per contract, a line per enrollment, adjustments,
    budgets, checks; one transaction, its phases reported as they begin."""
    month = domain.Month(run.period_start)
    period, region, run_id = run.period, run.region, run.id
    async with conn.transaction():
        # Runs accepted before this one are finished; one it counted on may have failed since
        # (billing this month now would leave that one unbillable), and the order is checked
        # again against the runs that completed.
        failed = await store.failed_while_waiting(conn, run)
        if failed is not None:
            raise Problem(
                409,
                f"the run of {failed.period} ({_scope(failed.region)}), accepted before this one,"
                f" failed: months are billed in order; run {failed.period} again, then {period}",
            )
        out_of_order = domain.run_out_of_order(
            month=month,
            region=region,
            held=await store.runs_of_year(conn, month.first.year, completed_only=True),
        )
        if out_of_order is not None:
            raise Problem(409, out_of_order)
        corrected = await store.months_to_correct(conn, month.first)
        await store.load_run_inputs(
            conn, period_start=month.first, months=corrected, year=month.first.year
        )
        await _progress(pool, run_id, "amounts")
        contracts = await store.compute_run(
            conn, period_start=month.first, months=corrected, year=month.first.year, region=region
        )
        total = len(contracts)
        await _progress(pool, run_id, "checks", total=total)
        checks_started = time.perf_counter()
        await store.check_run(
            conn, blocking=run.blocking_rules, unconfirmed_share=run.unconfirmed_share
        )
        checks_seconds = time.perf_counter() - checks_started
        await _progress(pool, run_id, "invoices", done=0, total=total)
        invoices = await store.issue_invoices(conn, run_id=run_id, period=period)
        batch = max(1, -(-total // INVOICE_BATCHES))
        for start in range(0, total, batch):
            if start:
                await _progress(pool, run_id, "invoices", done=start, total=total)
            await store.write_invoice_lines(
                conn, period=period, contracts=contracts[start : start + batch]
            )
        counts = await store.unbilled_counts(
            conn, period_start=month.first, year=month.first.year, region=region
        )
        done = await store.complete_run(
            conn,
            run_id=run_id,
            unbilled_dates=counts.unbilled_dates,
            uncontracted=counts.uncontracted,
            checks_seconds=checks_seconds,
        )
        exhausted = await store.mark_exhausted_contracts(conn, run_id=run_id)
        events: list[tuple[Event, str | None]] = [
            (
                InvoiceIssuedV1(
                    invoice_id=i.id,
                    invoice_number=i.number,
                    contract_number=i.contract_number,
                    provider_bin=i.provider_bin,
                    provider_name=i.provider_name,
                    region=i.region,
                    period=period,
                    total=i.total,
                    over_budget=i.over_budget,
                    lines=i.lines,
                    issued_at=i.issued_at,
                    contact=Contact.model_validate_json(i.contact) if i.contact else None,
                ),
                i.id,
            )
            for i in invoices
        ]
        events += [
            (
                BudgetExhaustedV1(
                    contract_number=c.number,
                    provider_bin=c.provider_bin,
                    provider_name=c.provider_name,
                    region=c.region,
                    year=c.year,
                    budget=c.budget,
                    invoiced=c.invoiced,
                    over_budget=c.invoice_over_budget,
                    period=period,
                ),
                c.number,
            )
            for c in exhausted
        ]
        assert done.completed_at is not None
        events.append(
            (
                RunCompletedV1(
                    run_id=run_id,
                    period=period,
                    invoices=done.invoices,
                    lines=done.lines,
                    total=done.total,
                    unbilled_dates=done.unbilled_dates,
                    completed_at=done.completed_at,
                    region=region,
                ),
                run_id,
            )
        )
        await audit.record(
            conn,
            aggregate=Aggregate("billing_run", run_id),
            action="billing_run.completed",
            reason=f"{period}: {done.invoices} invoices, total {done.total} KZT"
            f", held {done.held} KZT on {done.held_lines} lines; started by {done.started_by}",
        )
        await emit_many(conn, events)
    log.info(
        "billing.run_completed",
        period=period,
        region=region,
        invoices=done.invoices,
        lines=done.lines,
        corrected=[m.isoformat() for m in corrected],
        held=str(done.held),
        held_lines=done.held_lines,
    )


async def get_run(*, conn: Connection, run_id: str, region_scope: str | None) -> store.Run:
    """A run; a regional key sees only its region's runs (a national one is not its own)."""
    run = await store.get_run(conn, run_id)
    if run is None or (region_scope is not None and run.region != region_scope):
        raise Problem(404, "no such billing run")
    return run


async def approve_run(
    *, conn: Connection, run_id: str, approver: str, region_scope: str | None
) -> store.Run:
    """Second pair of eyes: another person than the one that started the run approves it
    (`same_person` of the recorded actors); a regional key approves its region's runs only,
    a national run needs a national key; only a completed run has invoices to approve."""
    async with conn.transaction():
        run = await store.get_run_for_update(conn, run_id)
        if run is None or (region_scope is not None and run.region != region_scope):
            raise Problem(404, "no such billing run")
        if same_person(run.started_by, approver):
            raise BillingError(
                403,
                Texts(
                    "four eyes: the client that started the run cannot approve its invoices",
                    "төрт көз: есептеуді бастаған клиент оның шоттарын бекіте алмайды",
                    "четыре глаза: клиент, запустивший расчёт, не утверждает его счета",
                ),
                kind=domain.RUN_FOUR_EYES,
                started_by=run.started_by,
            )
        if run.status != "completed":
            raise BillingError(
                409,
                Texts(
                    f"the run is {run.status}: only a completed run's invoices are approved",
                    f"есептеу күйі {run.status}: тек аяқталған есептеудің шоттары бекітіледі",
                    f"расчёт в состоянии {run.status}: утверждаются только счета завершённого",
                ),
                kind=domain.RUN_NOT_COMPLETED,
                run_status=run.status,
            )
        if run.approved_by is not None:
            return run
        approved = await store.approve_run(conn, run_id=run_id, approver=approver)
        await audit.record(
            conn,
            aggregate=Aggregate("billing_run", run_id),
            action="billing_run.approved",
            reason=f"four eyes: started by {run.started_by}",
        )
        return approved


async def decide_held_line(
    *,
    conn: Connection,
    invoice_id: str,
    line_no: int,
    decision: str,
    actor: str,
    reason: str,
    region_scope: str | None,
) -> "InvoiceDetail":
    """Four eyes on a held line: another person than the one that started the run releases
    it (paid) or rejects it (never paid), once; the decision and its reason are audited.
    Returns the invoice with the line decided."""
    if decision not in ("released", "rejected"):
        raise ValueError(decision)
    async with conn.transaction():
        line = await store.lock_invoice_line(conn, invoice_id, line_no)
        if line is None or (region_scope is not None and line.region != region_scope):
            raise NotFound(NO_LINE)
        if same_person(line.started_by, actor):
            raise BillingError(
                403,
                Texts(
                    "four eyes: the client that started the run cannot decide its held lines",
                    "төрт көз: есептеуді бастаған клиент оның ұсталған жолдарын шеше алмайды",
                    "четыре глаза: клиент, запустивший расчёт, не решает по его задержанным"
                    " строкам",
                ),
                kind=domain.RUN_FOUR_EYES,
                started_by=line.started_by,
            )
        if line.hold == "none":
            raise BillingError(
                409,
                Texts(
                    f"line {line_no} of {line.number} is not held: there is nothing to decide",
                    f"{line.number} шотының {line_no}-жолы ұсталмаған: шешетін ештеңе жоқ",
                    f"строка {line_no} счёта {line.number} не задержана: решать нечего",
                ),
                kind=domain.INVOICE_LINE_NOT_HELD,
                hold=line.hold,
            )
        if line.hold != "held":
            by = line.hold_decided_by
            raise BillingError(
                409,
                Texts(
                    f"line {line_no} of {line.number} was {line.hold} by {by}:"
                    " a held line is decided once",
                    f"{line.number} шотының {line_no}-жолы бойынша {by} шешім қабылдаған"
                    f" ({line.hold}): ұсталған жол бір рет шешіледі",
                    f"по строке {line_no} счёта {line.number} уже решил {by}"
                    f" ({line.hold}): задержанная строка решается один раз",
                ),
                kind=domain.INVOICE_LINE_DECIDED,
                hold=line.hold,
                decided_by=by,
            )
        await store.decide_line(
            conn,
            invoice_id=invoice_id,
            line_no=line_no,
            decision=decision,
            by=actor,
            reason=reason,
        )
        rules = ", ".join(c["rule"] for c in json.loads(line.checks or "[]") if c["blocking"])
        await audit.record(
            conn,
            aggregate=Aggregate("invoice", line.number),
            action=f"invoice_line.{decision}",
            reason=f"line {line_no} (enrollment {line.enrollment_id},"
            f" {line.month:%Y-%m}): {line.held_amount} KZT held by {rules or 'policy'}"
            f"; four eyes, run started by {line.started_by}: {reason}",
        )
        decided = await store.invoice_line(conn, invoice_id, line_no)
        invoice = await store.get_invoice(conn, invoice_id)
        assert decided is not None and invoice is not None
        return InvoiceDetail(
            invoice=invoice, lines=[decided], tariffs=await _tariffs_of(conn, [decided])
        )


# invoices and budgets (reads)


@dataclass(frozen=True)
class InvoiceDetail:
    """An invoice with lines of it and the tariff versions those lines were computed by."""

    invoice: store.Invoice
    lines: list[store.InvoiceLine]
    tariffs: dict[int, store.LineTariff]


async def _tariffs_of(
    conn: Connection, lines: list[store.InvoiceLine]
) -> dict[int, store.LineTariff]:
    ids = sorted({t for line in lines for t in line.tariff_ids})
    return {t.id: t for t in await store.tariffs_by_id(conn, ids)}


async def list_invoices(
    *,
    conn: Connection,
    provider: str | None,
    period: str | None,
    region_scope: str | None,
    after: str,
    limit: int,
) -> list[store.Invoice]:
    """Invoices by number after `after`; a regional key sees its region's only."""
    return await store.list_invoices(
        conn, provider=provider, period=period, region=region_scope, after=after, limit=limit
    )


async def invoice_with_lines(
    *, conn: Connection, invoice_id: str, region_scope: str | None
) -> InvoiceDetail:
    """An invoice with every line and its tariffs; the read of the recipients is audited."""
    invoice = await store.get_invoice(conn, invoice_id)
    if invoice is None or (region_scope is not None and invoice.region != region_scope):
        raise NotFound(NO_INVOICE)
    lines = await store.invoice_lines(conn, invoice.id)
    tariffs = await _tariffs_of(conn, lines)
    await record_invoice_read(
        conn=conn, invoice_number=invoice.number, iins=[line.iin for line in lines]
    )
    return InvoiceDetail(invoice=invoice, lines=lines, tariffs=tariffs)


async def budgets(
    *, conn: Connection, year: int, region_scope: str | None
) -> list[store.ContractBudget]:
    """Every contract of a year with its budget's use; a regional key sees its region's."""
    return await store.budgets(conn, year=year, region=region_scope)


async def payment_register(
    *, conn: Connection, region: str, period: str, region_scope: str | None
) -> list[store.RegisterLine]:
    """What the treasury is to pay now for a region's month (a regional key: its own)."""
    if region_scope is not None and region != region_scope:
        raise NotFound(NOT_FOUND)
    return await store.payment_register(conn, region=region, period=period)


async def record_invoice_read(*, conn: Connection, invoice_number: str, iins: list[str]) -> None:
    """An invoice's lines name recipients and the dates they attended: the read is audited."""
    await audit.record_reads(
        conn,
        # Named by the IIN's blind index, never the IIN: the audit log holds no clear personal data.
        aggregates=[
            Aggregate("recipient", store.cipher().blind_index(iin).hex())
            for iin in dict.fromkeys(iins)
        ],
        action="recipient.read",
        reason=f"invoice {invoice_number}",
    )


# payments


@dataclass(frozen=True)
class AppliedPayment:
    """A treasury row applied: amounts as written in the file, `paid_to_date` to the tiyn."""

    invoice_number: str
    status: str
    amount_paid: str
    paid_to_date: str
    invoice_total: str


@dataclass(frozen=True)
class Discrepancy:
    line: int
    invoice_number: str
    invoice_total: str
    amount_paid: str
    reason: str


@dataclass(frozen=True)
class Reconciliation:
    applied: list[AppliedPayment]
    discrepancies: list[Discrepancy]
    # refused rows by line, the file's own faults first
    errors: list[domain.RowError]


async def reconcile(
    *, conn: Connection, region: str, period: str, text: str, recorded_by: str
) -> Reconciliation:
    """Apply the treasury's result file: each row a tranche of an invoice (paid once the
    tranches reach its total) or a rejection; differences, unknowns and duplicates are
    reported, and a file that would pay an invoice more than its total is refused whole."""
    rows, parse_errors = domain.parse_treasury_csv(text)
    errors: list[domain.RowError] = list(parse_errors)
    applied: list[AppliedPayment] = []
    discrepancies: list[Discrepancy] = []
    overpaid: list[dict[str, str]] = []
    async with conn.transaction():
        numbers = [r.invoice_number for r in rows]
        held = {
            r.number: _Settling(
                number=r.number,
                status=r.status,
                total=r.total,
                paid_amount=r.paid_amount,
                placement=r.placement,
            )
            for r in await store.invoices_for_update(
                conn, region=region, period=period, numbers=numbers
            )
        }
        recorded = {
            (p.invoice_number, p.placement, p.status, p.amount_paid, p.paid_on, p.reference)
            for p in await store.recorded_payments(conn, list(held))
        }
        seen: dict[_PaymentKey, int] = {}
        updates: list[tuple[domain.TreasuryRow, int]] = []
        for row in rows:
            invoice = held.get(row.invoice_number)
            if invoice is None:
                errors.append(_row_error(row, f"unknown invoice for {region} {period}"))
                continue
            key = (
                row.invoice_number,
                invoice.placement,
                row.status,
                row.amount_paid,
                row.paid_on,
                row.reference,
            )
            if key in seen:
                errors.append(_row_error(row, f"duplicate of line {seen[key]}"))
                continue
            seen[key] = row.line
            if key in recorded:
                errors.append(_row_error(row, "duplicate: this payment is already recorded"))
                continue
            if invoice.status not in domain.PAYABLE:
                reason = (
                    "not approved: not in the payment register"
                    if invoice.status == "issued"
                    else f"duplicate: already reconciled as {invoice.status}"
                )
                errors.append(_row_error(row, reason))
                continue
            status, discrepancy = domain.payment_outcome(
                total=invoice.total,
                amount_paid=row.amount_paid,
                status=row.status,
                paid_before=invoice.paid_amount,
            )
            if status is None and row.status == "paid":
                overpaid.append(
                    {"field": f"line {row.line}: amount_paid", "message": discrepancy or ""}
                )
                continue
            if discrepancy is not None:
                discrepancies.append(
                    Discrepancy(
                        line=row.line,
                        invoice_number=row.invoice_number,
                        invoice_total=str(invoice.total),
                        amount_paid=str(row.amount_paid),
                        reason=discrepancy,
                    )
                )
            if status is None:
                errors.append(_row_error(row, discrepancy or "refused"))
                continue
            if row.status == "paid":
                invoice.paid_amount += row.amount_paid
            invoice.status = status
            updates.append((row, invoice.placement))
            applied.append(
                AppliedPayment(
                    invoice_number=row.invoice_number,
                    status=status,
                    amount_paid=str(row.amount_paid),
                    paid_to_date=f"{invoice.paid_amount:.2f}",
                    invoice_total=str(invoice.total),
                )
            )
        if overpaid:
            raise BillingError(
                422,
                Texts(
                    "the file would pay invoices more than their totals: nothing was applied",
                    "файл шоттарға сомасынан артық төлейді: ештеңе қолданылмады",
                    "файл оплатил бы счета больше их сумм: ничего не применено",
                ),
                kind=domain.TREASURY_FILE_OVERPAYS,
                errors=overpaid,
            )
        await store.record_payments(
            conn,
            numbers=[r.invoice_number for r, _ in updates],
            placements=[placement for _, placement in updates],
            amounts=[r.amount_paid for r, _ in updates],
            treasury_statuses=[r.status for r, _ in updates],
            paid_on=[r.paid_on for r, _ in updates],
            references=[r.reference for r, _ in updates],
            recorded_by=recorded_by,
        )
        settled = [held[n] for n in dict.fromkeys(r.invoice_number for r, _ in updates)]
        # an invoice is paid on the date of the last of its rows applied
        paid_on = {r.invoice_number: r.paid_on for r, _ in updates}
        if settled:
            await store.settle_invoices(
                conn,
                numbers=[i.number for i in settled],
                statuses=[i.status for i in settled],
                paid_amounts=[i.paid_amount for i in settled],
                paid_on=[paid_on[i.number] for i in settled],
            )
        await audit.record_many(
            conn,
            aggregates=[Aggregate("invoice", i.number) for i in settled],
            action="invoice.reconciled",
            reason=f"treasury result for {region} {period}",
        )
    return Reconciliation(applied=applied, discrepancies=discrepancies, errors=errors)


@dataclass
class _Settling:
    """An invoice as a treasury file settles it, row after row."""

    number: str
    status: str
    total: Decimal
    paid_amount: Decimal
    placement: int


# what makes a treasury row the same payment as one held: invoice number, placement, status,
# amount paid, date paid, reference
_PaymentKey = tuple[str, int, str, Decimal, date, str]


def _row_error(row: domain.TreasuryRow, reason: str) -> domain.RowError:
    return domain.RowError(row.line, "invoice_number", reason, row.invoice_number)


async def create_contract_with_bank_details(
    *,
    conn: Connection,
    number: str,
    provider_bin: str,
    region: str,
    year: int,
    budget: Decimal,
    bank_details: domain.BankDetails,
    actor: str,
) -> store.Contract:
    """A contract with the bank details the treasury pays its provider to."""
    async with conn.transaction():
        await create_contract(
            conn=conn,
            number=number,
            provider_bin=provider_bin,
            region=region,
            year=year,
            budget=budget,
        )
        return await _set_bank_details(
            conn=conn, number=number, details=bank_details, actor=actor, reason="contract made"
        )


async def change_bank_details(
    *,
    conn: Connection,
    number: str,
    bank_details: domain.BankDetails,
    reason: str,
    actor: str,
    region_scope: str | None,
) -> tuple[store.Contract, list[store.BankDetailsVersion]]:
    """New bank details of a contract from now on (the registers issued after use them)."""
    async with conn.transaction():
        contract = await store.get_contract_for_update(conn, number)
        if contract is None or (region_scope is not None and contract.region != region_scope):
            raise NotFound(NO_CONTRACT)
        row = await _set_bank_details(
            conn=conn, number=number, details=bank_details, actor=actor, reason=reason
        )
        return row, await store.bank_details_history(conn, number)


async def correct_rejected_payment(
    *,
    conn: Connection,
    invoice_id: str,
    bank_details: domain.BankDetails,
    reason: str,
    actor: str,
    region_scope: str | None,
) -> tuple[store.InvoicePlacement, store.Contract]:
    """A payment the treasury rejected, corrected: the contract's bank details are replaced
    and the invoice is placed again in its register with what is still due."""
    async with conn.transaction():
        invoice = await store.get_invoice_for_update(conn, invoice_id)
        if invoice is None or (region_scope is not None and invoice.region != region_scope):
            raise NotFound(NO_INVOICE)
        if invoice.status != "payment_rejected":
            raise BillingError(
                409,
                Texts(
                    f"only a rejected payment is corrected; this invoice is {invoice.status}",
                    f"тек қабылданбаған төлем түзетіледі; бұл шот: {invoice.status}",
                    f"исправляется только отклонённый платёж; этот счёт: {invoice.status}",
                ),
                kind=domain.PAYMENT_NOT_REJECTED,
                status_of_invoice=invoice.status,
            )
        contract = await _set_bank_details(
            conn=conn,
            number=invoice.contract_number,
            details=bank_details,
            actor=actor,
            reason=f"correction of the rejected payment of {invoice.number}: {reason}",
            invoice_number=invoice.number,
        )
        placed = await store.place_again(
            conn,
            invoice_id=invoice_id,
            status="partially_paid" if invoice.paid_amount else "approved",
        )
        await audit.record(
            conn,
            aggregate=Aggregate("invoice", invoice.number),
            action="invoice.payment_corrected",
            reason=f"placed again (placement {placed.placement}): {reason}",
        )
        return placed, contract


async def _set_bank_details(
    *,
    conn: Connection,
    number: str,
    details: domain.BankDetails,
    actor: str,
    reason: str,
    invoice_number: str | None = None,
) -> store.Contract:
    row = await store.set_bank_details(
        conn,
        number=number,
        iik=details.iik,
        bik=details.bik,
        kbk=details.kbk,
        knp=details.knp,
        changed_by=actor,
        reason=reason,
        invoice_number=invoice_number,
    )
    await audit.record(
        conn,
        aggregate=Aggregate("contract", number),
        action="contract.bank_details_set",
        reason=f"IIK {details.iik}, BIK {details.bik}, KBK {details.kbk}, KNP {details.knp}:"
        f" {reason}",
    )
    return row


# what billing knows of licensing's and registry's events (read-only views)


async def license_knowledge(
    conn: Connection, number: str
) -> tuple[store.LicenseView, list[store.LicenseTransition]] | None:
    """A license as billing's events built it, with its transitions; None if none arrived."""
    row = await store.license_view(conn, number)
    if row is None:
        return None
    return row, await store.license_transitions(conn, number)


async def enrollment_knowledge(conn: Connection, enrollment_id: str) -> store.Enrollment | None:
    """An enrollment as registry's events built it in billing; None if none arrived."""
    return await store.get_enrollment(conn, enrollment_id)


async def tariffs_with_history(
    conn: Connection, *, region: str | None, year: int | None
) -> tuple[list[store.Tariff], list[store.TariffVersion]]:
    """The tariffs in force and every version each has had."""
    rows = await store.list_tariffs(conn, region=region, year=year)
    return rows, await store.tariff_history(conn, ids=[r.id for r in rows])


async def reconciliation_report(
    conn: Connection, *, year: int, region: str | None
) -> list[store.PeriodSums]:
    """Issued, approved, paid, outstanding and rejected sums per region and month."""
    return await store.reconciliation_report(conn, year=year, region=region)


# --- attendance confirmations (issue 19): the recipient confirms or disputes a closed month ---
# The billing run reads only `attendance_confirmations.state`; what it does with a requested
# (unanswered) or disputed month is the run's own rule.

ANSWER_STATES = {"confirm": "confirmed", "dispute": "disputed"}
# the records api.py shapes its answers from
BankDetailsVersion = store.BankDetailsVersion
BudgetAmendment = store.BudgetAmendment
Confirmation = store.Confirmation
Contract = store.Contract
Enrollment = store.Enrollment
Invoice = store.Invoice
InvoiceLine = store.InvoiceLine
InvoicePlacement = store.InvoicePlacement
LicenseTransition = store.LicenseTransition
LicenseView = store.LicenseView
LineTariff = store.LineTariff
PeriodSums = store.PeriodSums
Run = store.Run
RunPhase = store.RunPhase
Tariff = store.Tariff
TariffVersion = store.TariffVersion


def _wrong_code() -> BillingError:
    # One answer for an unknown enrollment, token or code: nothing tells which part was wrong.
    return BillingError(
        404,
        Texts(
            "The code is not found or is wrong.",
            "Код табылмады немесе қате.",
            "Код не найден или неверен.",
        ),
        kind=domain.CONFIRMATION_CODE_UNKNOWN,
        code="unknown_code",
    )


# `code` stays a member of the answer: the portal and clients act on it.
_REFUSALS = {
    "answered": (
        domain.CONFIRMATION_ANSWERED,
        Texts(
            "This month was answered already: a code answers once.",
            "Бұл айға жауап берілген: код бір рет қана жарамды.",
            "На этот месяц уже ответили: код действует один раз.",
        ),
    ),
    "expired": (
        domain.CONFIRMATION_EXPIRED,
        Texts(
            "The time to answer has passed; contact the regional office.",
            "Жауап беру мерзімі өтті; аймақтық бөлімге хабарласыңыз.",
            "Срок ответа истёк; обратитесь в региональное управление.",
        ),
    ),
    "locked": (
        domain.CONFIRMATION_LOCKED,
        Texts(
            "Too many wrong codes; answer by the link or contact the regional office.",
            "Қате код тым көп рет енгізілді; сілтеме арқылы жауап беріңіз немесе аймақтық"
            " бөлімге хабарласыңыз.",
            "Слишком много неверных кодов; ответьте по ссылке или обратитесь в региональное"
            " управление.",
        ),
    ),
}


def _refusal(why: str) -> BillingError:
    problem_kind, detail = _REFUSALS[why]
    return BillingError(problem_kind.status, detail, kind=problem_kind, code=why)


@dataclass(frozen=True)
class ConfirmationRequests:
    month: str
    region: str | None
    requested: list[str]  # the enrollments asked now (the others of the month were asked before)


async def request_confirmations(
    *,
    conn: Connection,
    month: str,
    region: str | None,
    link_base: str,
    requested_by: str,
) -> ConfirmationRequests:
    """Ask about a closed month every enrollment with attendance in it not asked yet: a
    `requested` row with a fresh single-use token and code each, and the event notification
    tells the person by."""
    period = domain.Month.parse(month)
    why = domain.month_not_ended(period, almaty_today())
    if why is not None:
        raise field_error("month", why.replace("billed", "asked about"))
    now = datetime.now(UTC)
    expires_at = now + timedelta(days=domain.CONFIRMATION_VALID_DAYS)
    cipher = store.cipher()
    async with conn.transaction():
        candidates = await store.confirmation_candidates(conn, month=period.first, region=region)
        answers = [domain.new_confirmation_secrets() for _ in candidates]
        asked = await store.insert_confirmation_requests(
            conn,
            month=period.first,
            enrollment_ids=[c.enrollment_id for c in candidates],
            attended_days=[c.attended_days for c in candidates],
            token_digests=[cipher.blind_digest(domain.token_key(a.token)) for a in answers],
            code_digests=[
                cipher.blind_digest(domain.code_key(c.enrollment_id, period.first, a.sms_code))
                for c, a in zip(candidates, answers, strict=True)
            ],
            requested_at=now,
            expires_at=expires_at,
            requested_by=requested_by,
        )
        events: list[tuple[Event, str | None]] = [
            (
                ConfirmationRequestedV1(
                    enrollment_id=c.enrollment_id,
                    iin=c.iin,
                    provider_bin=c.provider_bin,
                    provider_name=c.provider_name,
                    region=c.region,
                    form=c.form,
                    category=c.category,
                    month=period.label,
                    attended_days=c.attended_days,
                    link=f"{link_base.rstrip('/')}/{a.token}",
                    sms_code=a.sms_code,
                    expires_on=expires_at.astimezone(ALMATY).date(),
                ),
                c.enrollment_id,
            )
            for c, a in zip(candidates, answers, strict=True)
            if c.enrollment_id in asked
        ]
        if events:
            await audit.record_many(
                conn,
                aggregates=[Aggregate("enrollment", str(subject)) for _, subject in events],
                action="attendance.confirmation_requested",
                reason=period.label,
            )
            await emit_many(conn, events)
    # Never the token or the code: they are the person's.
    log.info("confirmation.requested", month=period.label, region=region, requested=len(events))
    return ConfirmationRequests(
        month=period.label, region=region, requested=[str(subject) for _, subject in events]
    )


async def confirmation_by_token(
    *, conn: Connection, token: str
) -> tuple[store.Confirmation, list[date]]:
    """What a link shows its holder: the month, the provider and the dates attended."""
    async with conn.transaction():
        row = await store.confirmation_by_token(
            conn, store.cipher().blind_digest(domain.token_key(token))
        )
        if row is None:
            raise _wrong_code()
        dates = await store.attended_dates(conn, enrollment_id=row.enrollment_id, month=row.month)
    return row, dates


async def answer_by_token(
    *, conn: Connection, token: str, answer: str, reason: str | None
) -> store.Confirmation:
    """Confirm or dispute the month of a link's token, once."""
    async with conn.transaction():
        row = await store.confirmation_by_token(
            conn, store.cipher().blind_digest(domain.token_key(token))
        )
        if row is None:
            raise _wrong_code()
        return await _answer(conn, row, answer=answer, reason=reason, via="link")


async def answer_by_code(
    *, conn: Connection, enrollment_id: str, code: str, answer: str, reason: str | None
) -> store.Confirmation:
    """Confirm or dispute, once, the month a 6-digit code was sent for; after
    MAX_CODE_ATTEMPTS wrong codes the enrollment's open months answer by link only."""
    cipher = store.cipher()
    async with conn.transaction():
        rows = await store.confirmations_of_enrollment(conn, enrollment_id)
        waiting = [r for r in rows if r.state == "requested"]
        if any(r.failed_attempts >= domain.MAX_CODE_ATTEMPTS for r in waiting):
            refusal = _refusal("locked")
        else:
            match = next(
                (
                    r
                    for r in rows
                    if r.code_digest is not None
                    and hmac.compare_digest(
                        r.code_digest,
                        cipher.blind_digest(domain.code_key(enrollment_id, r.month, code)),
                    )
                ),
                None,
            )
            if match is not None:
                return await _answer(conn, match, answer=answer, reason=reason, via="code")
            if waiting:
                # Kept: the refusal below is raised after this transaction commits.
                await store.count_wrong_code(conn, enrollment_id)
            refusal = _wrong_code()
    log.info("confirmation.code_refused", enrollment=enrollment_id, why=refusal.extra["code"])
    raise refusal


async def _answer(
    conn: Connection, row: store.Confirmation, *, answer: str, reason: str | None, via: str
) -> store.Confirmation:
    now = datetime.now(UTC)
    why = domain.confirmation_refusal(
        state=row.state, answered_at=row.answered_at, expires_at=row.expires_at, now=now
    )
    if why is not None:
        raise _refusal(why)
    state = ANSWER_STATES[answer]
    await store.record_confirmation_answer(
        conn, enrollment_id=row.enrollment_id, month=row.month, state=state, via=via, reason=reason
    )
    # The person's words stay out of the audit log (they are sealed in the row).
    await audit.record(
        conn,
        aggregate=Aggregate("enrollment", row.enrollment_id),
        action=f"attendance.{state}",
        reason=f"{row.month:%Y-%m} by {via}" + (", with a reason" if reason else ""),
    )
    log.info("confirmation.answered", enrollment=row.enrollment_id, state=state, via=via)
    return dataclasses.replace(
        row, state=state, answered_at=now, answered_via=via, dispute_reason=reason
    )


async def list_confirmations(
    *,
    conn: Connection,
    month: str | None,
    provider_bin: str | None,
    region: str | None,
    state: str | None,
    after: tuple[date, str] | None,
    limit: int,
    with_reasons: bool,
) -> list[store.Confirmation]:
    """The state per enrollment and month; the region's reviewers read the reasons given
    (an audited read), providers never do."""
    rows = await store.list_confirmations(
        conn,
        month=domain.Month.parse(month).first if month else None,
        provider_bin=provider_bin,
        region=region,
        state=state,
        after=after,
        limit=limit,
    )
    if not with_reasons:
        return [dataclasses.replace(r, dispute_reason=None) for r in rows]
    reasoned = [r.enrollment_id for r in rows if r.dispute_reason]
    if reasoned:
        await audit.record_reads(
            conn,
            aggregates=[Aggregate("enrollment", e) for e in dict.fromkeys(reasoned)],
            action="attendance.dispute_read",
            reason="confirmations review",
        )
    return rows
