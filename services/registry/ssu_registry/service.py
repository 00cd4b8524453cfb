"""Use cases of the registry: one transaction each, domain rules, writes, outbox."""

import asyncio
import csv
import io
import json
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, date, datetime, timedelta
from typing import Literal, TypeAlias, TypedDict

from ssu_common import Connection, audit, current_correlation_id, emit, emit_many, get_logger
from ssu_common.audit import Aggregate
from ssu_common.errors import DomainError, ProblemKind, Texts, general
from ssu_common.jsontypes import Json
from ssu_contracts import (
    Addressee,
    Alternative,
    EnrollmentDisruptedV1,
    EnrollmentEndedV1,
    EnrollmentResumedV1,
    EnrollmentStartedV1,
    EnrollmentUnplacedV1,
    Event,
    Guardian,
    LicenseEvent,
    LicenseIssuedV1,
    LicenseReinstatedV1,
    LicenseStatus,
    OfferAcceptedV1,
    OfferLapsedV1,
    OfferMadeV1,
    RecipientCategory,
    RecipientDeregisteredV1,
    RecipientRegisteredV1,
    RecipientUpdatedV1,
    ServiceForm,
    WaitingJoinedV1,
)
from ssu_contracts.ids import region_of
from ssu_contracts.reference import REGIONS

from ssu_registry import domain, store

log = get_logger(__name__)


class RegistryError(DomainError):
    """A domain refusal (ssu_common.errors): the HTTP kit answers it as a problem of its kind,
    a consumer dead-letters or retries it by the kind. Without a kind of its own, the general
    kind of its status."""

    def __init__(
        self,
        status: int,
        detail: str | Texts,
        *,
        field: str | None = None,
        kind: ProblemKind | None = None,
        **extra: Json,
    ):
        super().__init__(detail, field=field, kind=kind or general(status), **extra)


class NotFound(RegistryError):
    def __init__(self, detail: str) -> None:
        super().__init__(404, detail)


# Providers


async def apply_license_event(*, conn: Connection, event: LicenseEvent) -> bool:
    """Bring the provider read model to a license snapshot and carry out continuity of care.

    An event whose seq is not newer than the stored one is ignored (False), but kept in the
    license history (what held on its date). The places of the license's regions are held
    first: what is free changes, and free places are offered to the waiting line."""
    regions = {region_of(site.kato) for site in event.sites}
    regions.update(await store.license_regions(conn, event.license_number))
    await store.lock_places(conn, regions)
    await store.record_license_history(conn, event)
    if not await store.upsert_provider_if_newer(conn, event):
        log.info("provider.stale_event_ignored", license=event.license_number, seq=event.seq)
        return False
    await store.replace_provider_subtypes(conn, event)
    await store.replace_provider_sites(conn, event)
    if event.status == LicenseStatus.ACTIVE:
        await store.mark_provider_active_from(
            conn, event, since=isinstance(event, LicenseIssuedV1 | LicenseReinstatedV1)
        )
    # Continuity follows the status of the newest snapshot, not the event's type: when events
    # arrive out of order the one that carries a change may be skipped as stale.
    if event.status == LicenseStatus.SUSPENDED:
        await _disrupt(conn=conn, event=event)
    elif event.status == LicenseStatus.ACTIVE:
        await _resume(conn=conn, event=event)
    else:
        await _end_all(conn=conn, event=event)
    # A suspended or revoked license, or a site dropped from it, holds no offered place.
    gone = await store.open_offers_where(conn, license_number=event.license_number)
    await _lapse(conn, [o.offer_id for o in gone], reason="withdrawn", on=domain.today())
    await _offer_free_places(conn, regions)
    log.info("provider.updated", license=event.license_number, seq=event.seq, status=event.status)
    return True


def _reason(event: LicenseEvent, default: str) -> str:
    reason = getattr(event, "reason", None)
    return reason if isinstance(reason, str) and reason else default


async def _alternatives(
    *, conn: Connection, excluded_license: str, rows: Sequence[store.AffectedEnrollment]
) -> dict[tuple[str, str, str], list[Alternative]]:
    """Up to three sites with free places per (region, form, category) of the rows, offered to
    recipients who lost their place at the excluded license."""
    wanted = sorted({(r.region, r.form, r.category) for r in rows})
    offers: dict[tuple[str, str, str], list[Alternative]] = defaultdict(list)
    for row in await store.alternatives_for(
        conn, excluded_license=excluded_license, subtypes=wanted
    ):
        offers[(row.region, row.form, row.category)].append(
            Alternative(
                bin=row.bin,
                name=row.name,
                site_id=row.site_id,
                address=row.address,
                free_places=row.free_places,
                license_number=row.license_number,
                phone=row.phone,
            )
        )
    return offers


def _alternatives_json(alternatives: list[Alternative]) -> str:
    return json.dumps([a.model_dump(mode="json") for a in alternatives], ensure_ascii=False)


async def _disrupt(*, conn: Connection, event: LicenseEvent) -> None:
    reason = _reason(event, "license suspended")
    disrupted = await store.disrupt_active_enrollments(
        conn,
        license_number=event.license_number,
        disrupted_on=event.effective_date,
        reason=reason,
    )
    if not disrupted:
        return
    offers = await _alternatives(conn=conn, excluded_license=event.license_number, rows=disrupted)
    events: list[tuple[Event, str | None]] = []
    kept: list[tuple[str, str]] = []
    for row in disrupted:
        alternatives = offers[(row.region, row.form, row.category)]
        kept.append((row.enrollment_id, _alternatives_json(alternatives)))
        events.append(
            (
                EnrollmentDisruptedV1(
                    **_lost_place(row, event, reason=reason, alternatives=alternatives),
                    disrupted_on=event.effective_date,
                ),
                row.enrollment_id,
            )
        )
    await store.store_alternatives(conn, kept)
    await audit.record_many(
        conn,
        aggregates=[Aggregate("enrollment", row.enrollment_id) for row in disrupted],
        action="enrollment.disrupted",
        reason=f"license {event.license_number} suspended: {reason}",
    )
    await emit_many(conn, events)
    log.info("enrollments.disrupted", license=event.license_number, count=len(events))


class _Placement(TypedDict):
    """What every event about an enrollment a license change moved says of it."""

    enrollment_id: str
    iin: str
    provider_bin: str
    region: str
    form: str
    category: str


def _placement(row: store.AffectedEnrollment) -> _Placement:
    return _Placement(
        enrollment_id=row.enrollment_id,
        iin=row.iin,
        provider_bin=row.provider_bin,
        region=row.region,
        form=row.form,
        category=row.category,
    )


class _LostPlace(_Placement):
    """What the events of a place lost (disrupted, unplaced) say alike: at which license,
    why, the alternatives offered and whom they tell."""

    provider_name: str
    license_number: str
    reason: str
    alternatives: list[Alternative]
    addressee: Addressee
    seq: int


def _lost_place(
    row: store.AffectedEnrollment,
    event: LicenseEvent,
    *,
    reason: str,
    alternatives: list[Alternative],
) -> _LostPlace:
    return _LostPlace(
        **_placement(row),
        provider_name=event.provider_name,
        license_number=event.license_number,
        reason=reason,
        alternatives=alternatives,
        addressee=domain.addressee_for(row.contact, on=event.effective_date),
        seq=row.seq,
    )


async def _resume(*, conn: Connection, event: LicenseEvent) -> None:
    resumed = await store.resume_disrupted_enrollments(conn, license_number=event.license_number)
    events: list[tuple[Event, str | None]] = [
        (
            EnrollmentResumedV1(
                **_placement(row),
                resumed_on=event.effective_date,
                addressee=domain.addressee_for(row.contact, on=event.effective_date),
                seq=row.seq,
                provider_name=event.provider_name,
                license_number=event.license_number,
            ),
            row.enrollment_id,
        )
        for row in resumed
    ]
    if not events:
        return
    # Recipients who joined the line after the disruption have their place back.
    waiting = await store.waiting_from_enrollments(conn, [r.enrollment_id for r in resumed])
    await _close_requests(
        conn, waiting, reason="place resumed", regions=[r.region for r in resumed]
    )
    await audit.record_many(
        conn,
        aggregates=[Aggregate("enrollment", row.enrollment_id) for row in resumed],
        action="enrollment.resumed",
        reason=f"license {event.license_number} reinstated",
    )
    await emit_many(conn, events)
    log.info("enrollments.resumed", license=event.license_number, count=len(events))


async def _end_all(*, conn: Connection, event: LicenseEvent) -> None:
    """Revocation ends every open enrollment of the license (billing stops) and leaves its
    recipients unplaced: told, with alternatives, and kept on the board until placed again."""
    reason = f"license revoked: {_reason(event, 'no reason given')}"
    ended = await store.end_open_enrollments(
        conn,
        license_number=event.license_number,
        effective_date=event.effective_date,
        reason=reason,
    )
    if not ended:
        return
    offers = await _alternatives(conn=conn, excluded_license=event.license_number, rows=ended)
    events: list[tuple[Event, str | None]] = []
    kept: list[tuple[str, str]] = []
    for row in ended:
        alternatives = offers[(row.region, row.form, row.category)]
        kept.append((row.enrollment_id, _alternatives_json(alternatives)))
        events.append(
            (
                EnrollmentEndedV1(
                    **_placement(row),
                    end_date=row.end_date,
                    reason=reason,
                    seq=row.seq - 1,
                ),
                row.enrollment_id,
            )
        )
        events.append(
            (
                EnrollmentUnplacedV1(
                    **_lost_place(row, event, reason=reason, alternatives=alternatives),
                    unplaced_on=event.effective_date,
                ),
                row.enrollment_id,
            )
        )
    await store.store_alternatives(conn, kept)
    await audit.record_many(
        conn,
        aggregates=[Aggregate("enrollment", row.enrollment_id) for row in ended],
        action="enrollment.ended",
        reason=reason,
    )
    await emit_many(conn, events)
    # Revocation puts its recipients on the line at once, at its top.
    await _join_lost_places(
        conn, ended, reason=reason, lost_on=min(event.effective_date, domain.today())
    )
    log.info("enrollments.unplaced_by_revocation", license=event.license_number, count=len(ended))


@dataclass(frozen=True)
class ProviderListing:
    """A provider with its service types and the listed sites a search shows."""

    provider: store.ProviderRow
    subtypes: list[store.SubtypeRow]
    sites: list[store.SiteRow]

    @property
    def free_places(self) -> int | None:
        """Free places over its sites that count places; None when none does."""
        counted = [s.free_places for s in self.sites if s.free_places is not None]
        return sum(counted) if counted else None


async def list_providers(
    *,
    conn: Connection,
    region: str | None,
    form: str | None,
    category: str | None,
    free_only: bool,
    status: str | None,
    bin: str | None,
    after: str | None,
    limit: int,
) -> tuple[list[ProviderListing], bool]:
    """A page of providers matching the filters, after a license number, and whether more
    follow. Looking for free places (`free_only`) shows only the sites that have them, in the
    region asked for."""
    rows = await store.list_providers(
        conn,
        region=region,
        form=form,
        category=category,
        free_only=free_only,
        status=status,
        bin=bin,
        after=after,
        limit=limit + 1,
    )
    page = rows[:limit]
    numbers = [r.license_number for r in page]
    subtypes: dict[str, list[store.SubtypeRow]] = defaultdict(list)
    for t in await store.subtypes_of(conn, numbers):
        subtypes[t.license_number].append(t)
    sites: dict[str, list[store.SiteRow]] = defaultdict(list)
    for site in await store.sites_of(conn, numbers):
        if free_only and not (site.free_places or 0) > 0:
            continue
        if free_only and region is not None and site.region != region:
            continue
        sites[site.license_number].append(site)
    listings = [
        ProviderListing(
            provider=r, subtypes=subtypes[r.license_number], sites=sites[r.license_number]
        )
        for r in page
    ]
    return listings, len(rows) > limit


# Recipients


RegisterRecipient: TypeAlias = store.NewRecipient
RecipientRow: TypeAlias = store.RecipientRow
EnrollmentRow: TypeAlias = store.EnrollmentRow
DisruptionRow: TypeAlias = store.DisruptionRow
WaitingEntry: TypeAlias = store.WaitingEntry
OfferRow: TypeAlias = store.OfferRow


# What a second registration of the same IIN must agree on: all it gives but the IIN.
_COMPARED = tuple(f.name for f in fields(store.NewRecipient) if f.name != "iin")


def _recipient(iin: str) -> Aggregate:
    """How audit records name a recipient: by the IIN's blind index (hex), never the IIN, so the
    audit log holds no clear personal data and an auditor with the key still finds a person."""
    return Aggregate("recipient", store.iin_index(iin).hex())


async def register_recipient(
    *,
    conn: Connection,
    command: RegisterRecipient,
    region_scope: str | None,
    rules: domain.AgeRules = domain.AgeRules(),
) -> tuple[RecipientRow, bool]:
    """Register a recipient by IIN; re-posting the same data is a no-op, different data a 409.

    Returns the stored row and whether it was created now."""
    if region_scope is not None and command.region != region_scope:
        raise NotFound("the recipient's region is outside the region of this API key")
    _check_birth_and_category(
        iin=command.iin, birth_date=command.birth_date, category=command.category, rules=rules
    )
    async with conn.transaction():
        created = await store.insert_recipient(conn, command)
        row = await store.get_recipient(conn, command.iin)
        assert row is not None
        if not created:
            if region_scope is not None and row.region != region_scope:
                raise NotFound(f"recipient {command.iin} not found")
            differing = [f for f in _COMPARED if getattr(row, f) != getattr(command, f)]
            if differing:
                raise RegistryError(
                    409,
                    "a recipient with this IIN is already registered with different "
                    f"{', '.join(differing)}",
                    field="iin",
                    differing_fields=differing,
                )
            return row, False
        await audit.record(
            conn,
            aggregate=_recipient(command.iin),
            action="recipient.registered",
            reason=None,
        )
        guardian = _guardian_of(command)
        await emit(
            conn,
            RecipientRegisteredV1(
                iin=command.iin,
                full_name=command.full_name,
                birth_date=command.birth_date,
                category=command.category,
                region=command.region,
                disability_group=command.disability_group,
                language=command.language,
                phone=command.phone,
                email=command.email,
                guardian=guardian,
            ),
            subject=command.iin,
        )
    log.info("recipient.registered", region=command.region)
    return row, True


async def get_recipient(*, conn: Connection, iin: str, region_scope: str | None) -> RecipientRow:
    """A full recipient record; the read is audited in the same transaction (no record, no
    answer)."""
    async with conn.transaction():
        row = await store.get_recipient(conn, iin)
        if row is None or (region_scope is not None and row.region != region_scope):
            raise NotFound(f"recipient {iin} not found")
        await audit.record(
            conn, aggregate=_recipient(iin), action="recipient.read", reason="record"
        )
    return row


def _check_birth_and_category(
    *, iin: str, birth_date: date, category: str, rules: domain.AgeRules
) -> None:
    """Birth date not after today and the IIN's; category fitting the age today."""
    on = domain.today()
    wrong_birth = domain.birth_date_problem(iin, birth_date, on=on)
    if wrong_birth is not None:
        raise RegistryError(
            422, f"birth_date {birth_date.isoformat()} {wrong_birth}", field="birth_date"
        )
    unfit = domain.category_problem(category, iin=iin, birth_date=birth_date, on=on, rules=rules)
    if unfit is not None:
        raise RegistryError(422, f"category: {unfit}", field="category")


def _refuse_deregistered(recipient: RecipientRow) -> None:
    if recipient.status == "deregistered":
        assert recipient.deregistered_on is not None
        raise RegistryError(
            409,
            f"the recipient was de-registered on {recipient.deregistered_on.isoformat()} "
            f"({recipient.deregistration_reason})",
            field="iin",
            current_status="deregistered",
        )


async def list_recipients(
    *,
    conn: Connection,
    region: str | None,
    category: str | None,
    status: str | None,
    name: str | None,
    after: bytes | None,
    limit: int,
) -> list[RecipientRow]:
    """A page of recipients; a name is matched exactly in its normalised form through its
    blind index, so it never reaches SQL or the logs. Every person listed is a read record;
    the one row past the page (fetched to know whether another page follows) is not listed,
    so it is not read."""
    async with conn.transaction():
        rows = await store.list_recipients(
            conn,
            region=region,
            category=category,
            status=status,
            name=store.name_index(name) if name is not None else None,
            after=after,
            limit=limit + 1,
        )
        await _record_reads(conn, [r.iin for r in rows[:limit]], "recipient list")
    return rows


# Fields a PATCH may change; a guardian is replaced (or removed) whole.
UPDATABLE = store.UPDATABLE
# Values of these fields are shown in the history only to keys with `registry:read-contacts`.
CONTACT_FIELDS = frozenset({"phone", "email", "guardian_phone", "guardian_email", "guardian_iin"})


def _guardian_of(row: RecipientRow | RegisterRecipient) -> Guardian | None:
    if not row.guardian_name:
        return None
    return Guardian(
        name=row.guardian_name,
        phone=row.guardian_phone,
        email=row.guardian_email,
        iin=row.guardian_iin,
    )


@dataclass(frozen=True)
class RecipientPatch:
    """The fields a PATCH gives (`given`) with their new values; a field not given stays."""

    given: frozenset[str]
    phone: str | None = None
    email: str | None = None
    category: str | None = None
    disability_group: int | None = None
    guardian_name: str | None = None
    guardian_phone: str | None = None
    guardian_email: str | None = None
    guardian_iin: str | None = None

    def applied_to(self, current: store.RecipientDetails) -> store.RecipientDetails:
        # A category is never cleared: null for it is refused before, and kept here.
        given = [f for f in UPDATABLE if f in self.given and (f != "category" or self.category)]
        return replace(current, **{f: getattr(self, f) for f in given})


async def update_recipient(
    *,
    conn: Connection,
    iin: str,
    changes: RecipientPatch,
    actor: str,
    region_scope: str | None,
    rules: domain.AgeRules = domain.AgeRules(),
) -> RecipientRow:
    """Change a recipient's contacts, category, disability group or guardian; each change is a
    history entry (old and new values, who, when) and a `registry.recipient.updated.v1`."""
    async with conn.transaction():
        current = await store.get_recipient(conn, iin, lock=True)
        if current is None or (region_scope is not None and current.region != region_scope):
            raise NotFound(f"recipient {iin} not found")
        _refuse_deregistered(current)
        was = current.details
        wanted = changes.applied_to(was)
        if not wanted.guardian_name and any(
            (wanted.guardian_phone, wanted.guardian_email, wanted.guardian_iin)
        ):
            raise RegistryError(422, "guardian.name is required", field="guardian.name")
        if "category" in changes.given:
            _check_birth_and_category(
                iin=iin, birth_date=current.birth_date, category=wanted.category, rules=rules
            )
        differing: dict[str, store.FieldChange] = {
            f: {"from": getattr(was, f), "to": getattr(wanted, f)}
            for f in UPDATABLE
            if getattr(was, f) != getattr(wanted, f)
        }
        if not differing:
            return current
        row = await store.update_recipient(conn, current, wanted)
        await store.insert_history(
            conn, iin, version=row.version, action="updated", changes=differing, actor=actor
        )
        await audit.record(
            conn,
            aggregate=_recipient(iin),
            action="recipient.updated",
            reason=", ".join(sorted(differing)),
        )
        await emit(
            conn,
            RecipientUpdatedV1(
                iin=iin,
                full_name=row.full_name,
                birth_date=row.birth_date,
                category=row.category,
                region=row.region,
                disability_group=row.disability_group,
                language=row.language,
                phone=row.phone,
                email=row.email,
                guardian=_guardian_of(row),
                changed=sorted(differing),
                version=row.version,
            ),
            subject=iin,
        )
    log.info("recipient.updated", region=row.region, fields=sorted(differing))
    return row


async def recipient_history(
    *, conn: Connection, iin: str, region_scope: str | None
) -> list[store.HistoryEntry]:
    """A recipient's changes, oldest first (the read is audited)."""
    async with conn.transaction():
        row = await store.get_recipient(conn, iin)
        if row is None or (region_scope is not None and row.region != region_scope):
            raise NotFound(f"recipient {iin} not found")
        entries = await store.recipient_history(conn, iin)
        await audit.record(
            conn, aggregate=_recipient(iin), action="recipient.read", reason="history"
        )
    return entries


async def deregister_recipient(
    *,
    conn: Connection,
    iin: str,
    reason: str,
    day: date | None,
    actor: str,
    region_scope: str | None,
) -> RecipientRow:
    """De-register a recipient from a date (not in the future): each open enrollment ends on
    that date (never before its start) through `end_enrollment`, then
    `registry.recipient.deregistered.v1`."""
    today = domain.today()
    day = day or today
    future = domain.deregistration_date_problem(day, on=today)
    if future is not None:
        raise RegistryError(422, f"date {day.isoformat()} {future}", field="date")
    async with conn.transaction():
        current = await store.get_recipient(conn, iin, lock=True)
        if current is None or (region_scope is not None and current.region != region_scope):
            raise NotFound(f"recipient {iin} not found")
        _refuse_deregistered(current)
        for enrollment in await store.open_enrollments_of(conn, iin):
            await end_enrollment(
                conn=conn,
                enrollment_id=str(enrollment.id),
                end_date=max(enrollment.start_date, day),
                reason=reason,
                region_scope=None,
            )
        waiting = await store.waiting_of(conn, iin)
        await _close_requests(
            conn, waiting, reason=f"deregistered: {reason}", regions=[current.region]
        )
        row = await store.deregister_recipient(conn, iin, day=day, reason=reason)
        await store.insert_history(
            conn,
            iin,
            version=row.version,
            action="deregistered",
            changes={
                "status": {"from": "registered", "to": "deregistered"},
                "deregistered_on": {"from": None, "to": day.isoformat()},
                "deregistration_reason": {"from": None, "to": reason},
            },
            actor=actor,
        )
        await audit.record(
            conn, aggregate=_recipient(iin), action="recipient.deregistered", reason=reason
        )
        await emit(
            conn,
            RecipientDeregisteredV1(
                iin=iin,
                region=row.region,
                category=row.category,
                reason=reason,  # type: ignore[arg-type]
                deregistered_on=day,
                version=row.version,
            ),
            subject=iin,
        )
    log.info("recipient.deregistered", region=row.region, reason=reason)
    return row


# Enrollments


@dataclass(frozen=True)
class EnrollRecipient:
    iin: str
    provider_bin: str | None
    site_id: str
    form: str
    category: str | None
    start_date: date | None
    license_number: str | None = None


async def enroll(
    *,
    conn: Connection,
    command: EnrollRecipient,
    region_scope: str | None,
    max_days_ahead: int = 90,
) -> EnrollmentRow:
    """Start an enrollment under every rule of DESIGN §3; a disrupted enrollment of the same
    form is closed by it (a transfer)."""
    async with conn.transaction():
        recipient = await store.get_recipient(conn, command.iin, lock=True)
        if recipient is None or (region_scope is not None and recipient.region != region_scope):
            raise NotFound(f"recipient {command.iin} not found")
        _refuse_deregistered(recipient)
        if command.license_number is not None:
            candidates = [command.license_number]
        else:
            candidates = await store.find_site_license(conn, command.provider_bin, command.site_id)
        # Places before the provider (as license events take them): offers are counted true.
        region = (
            await store.site_region(conn, candidates[0], command.site_id) if candidates else None
        )
        if region is not None:
            await store.lock_places(conn, [region])
        # Locks in the order licensing events take them (provider, then site): a suspension
        # waits for this enrollment, or this enrollment sees the suspension.
        provider = (
            await store.get_provider(conn, candidates[0], share_lock=True) if candidates else None
        )
        site = await store.lock_site(conn, candidates[0], command.site_id) if candidates else None
        if (
            site is None
            or provider is None
            or (command.provider_bin is not None and provider.bin != command.provider_bin)
        ):
            of_provider = f" of provider {command.provider_bin}" if command.provider_bin else ""
            raise RegistryError(
                422,
                f"site {command.site_id}{of_provider} is not known",
                field="site_id",
            )
        if region_scope is not None and site.region != region_scope:
            raise NotFound(f"site {command.site_id} not found")
        if not site.listed:
            raise RegistryError(
                422,
                f"site {command.site_id} is no longer part of the license "
                f"{provider.license_number}",
                field="site_id",
            )
        category = command.category or recipient.category
        if provider.status != "active":
            raise RegistryError(
                409,
                Texts(
                    f"the license {provider.license_number} is {provider.status}",
                    f"{provider.license_number} лицензиясы белсенді емес",
                    f"лицензия {provider.license_number} не действует",
                ),
                kind=domain.LICENSE_NOT_ACTIVE,
                current_status=provider.status,
            )
        if not await store.provider_covers(conn, provider.license_number, command.form, category):
            raise RegistryError(
                422,
                f"the license {provider.license_number} does not cover the form "
                f"{command.form} for the category {category}",
                field="form",
            )
        start_date = command.start_date or domain.today()
        too_early_or_late = domain.enrollment_start_problem(
            start_date,
            active_from=provider.active_from,
            on=domain.today(),
            max_days_ahead=max_days_ahead,
        )
        if too_early_or_late is not None:
            raise RegistryError(
                422, f"start_date {start_date.isoformat()} {too_early_or_late}", field="start_date"
            )
        events: list[tuple[Event, str | None]] = []
        current = await store.open_enrollment_for_form(conn, command.iin, command.form)
        if current is not None:
            if current.status == "active":
                raise RegistryError(
                    409,
                    f"the recipient already has an active enrollment for the form {command.form}",
                    current_status="active",
                    enrollment_id=str(current.id),
                )
            transferred = await store.end_enrollment(
                conn,
                str(current.id),
                end_date=domain.last_date_before(current.start_date, start_date),
                reason="transferred",
            )
            await audit.record(
                conn,
                aggregate=Aggregate("enrollment", str(transferred.id)),
                action="enrollment.ended",
                reason="transferred",
            )
            events.append((_ended_event(transferred), str(transferred.id)))
        if domain.has_capacity_limit(command.form) and site.places is not None:
            # A place held by an open offer is taken, except the one offered to this recipient.
            occupied = await store.taken_places(
                conn, site.license_number, site.site_id, for_iin=command.iin
            )
            if occupied >= site.places:
                raise RegistryError(
                    409,
                    Texts(
                        f"site {site.site_id} has no free places ({site.places} of "
                        f"{site.places} taken)",
                        f"{site.site_id} алаңында бос орын жоқ ({site.places} орынның "
                        f"{site.places} орны бос емес)",
                        f"на площадке {site.site_id} нет свободных мест (занято "
                        f"{site.places} из {site.places})",
                    ),
                    kind=domain.NO_FREE_PLACES,
                    free_places=0,
                )
        row = await store.insert_enrollment(
            conn,
            store.NewEnrollment(
                id=uuid.uuid4(),
                iin=command.iin,
                license_number=provider.license_number,
                site_id=site.site_id,
                provider_bin=provider.bin,
                region=site.region,
                form=command.form,
                category=category,
                start_date=start_date,
            ),
        )
        await store.mark_placed_again(
            conn, iin=command.iin, form=command.form, on=start_date, enrollment_id=row.id
        )
        await _placed(conn, iin=command.iin, form=command.form, enrollment=row)
        events.append(
            (
                EnrollmentStartedV1(
                    enrollment_id=str(row.id),
                    iin=command.iin,
                    provider_bin=provider.bin,
                    provider_name=provider.name,
                    license_number=provider.license_number,
                    site_id=site.site_id,
                    site_address=site.address,
                    region=site.region,
                    form=command.form,
                    category=category,
                    start_date=start_date,
                    addressee=domain.addressee_for(recipient.contact, on=start_date),
                    seq=row.seq,
                ),
                str(row.id),
            )
        )
        await audit.record(
            conn,
            aggregate=Aggregate("enrollment", str(row.id)),
            action="enrollment.started",
            reason=f"at {site.site_id} ({provider.license_number})",
        )
        await emit_many(conn, events)
    log.info("enrollment.started", enrollment=str(row.id), site=site.site_id)
    return row


def _ended_event(row: EnrollmentRow) -> EnrollmentEndedV1:
    assert row.end_date is not None and row.end_reason is not None
    return EnrollmentEndedV1(
        enrollment_id=str(row.id),
        iin=row.iin,
        provider_bin=row.provider_bin,
        region=row.region,
        form=row.form,
        category=row.category,
        end_date=row.end_date,
        reason=row.end_reason,
        seq=row.seq,
    )


async def end_enrollment(
    *,
    conn: Connection,
    enrollment_id: str,
    end_date: date | None,
    reason: str,
    region_scope: str | None,
) -> EnrollmentRow:
    """End an active or disrupted enrollment; end_date is the last date of service."""
    async with conn.transaction():
        region = await store.enrollment_region(conn, enrollment_id)
        if region is not None:
            await store.lock_places(conn, [region])
        current = await store.get_enrollment(conn, enrollment_id, lock=True)
        if current is None or (region_scope is not None and current.region != region_scope):
            raise NotFound(f"enrollment {enrollment_id} not found")
        if current.status == "ended":
            raise RegistryError(
                409, f"enrollment {enrollment_id} has already ended", current_status="ended"
            )
        last = end_date or domain.today()
        if last < current.start_date:
            raise RegistryError(
                422,
                f"end_date {last.isoformat()} is before the start date "
                f"{current.start_date.isoformat()}",
                field="end_date",
            )
        row = await store.end_enrollment(conn, enrollment_id, end_date=last, reason=reason)
        await audit.record(
            conn,
            aggregate=Aggregate("enrollment", enrollment_id),
            action="enrollment.ended",
            reason=reason,
        )
        await emit(conn, _ended_event(row), subject=enrollment_id)
        # The freed place goes to the first in line who fits.
        await _offer_free_places(conn, [row.region])
    log.info("enrollment.ended", enrollment=enrollment_id)
    return row


async def get_enrollment(
    *, conn: Connection, enrollment_id: str, region_scope: str | None
) -> EnrollmentRow:
    async with conn.transaction():
        row = await store.get_enrollment(conn, enrollment_id)
        if row is None or (region_scope is not None and row.region != region_scope):
            raise NotFound(f"enrollment {enrollment_id} not found")
        await _record_reads(conn, [row.iin], "enrollment")
    return row


async def _record_reads(conn: Connection, iins: list[str], what: str) -> None:
    """Every answer that carries a recipient's personal data leaves a read record."""
    await audit.record_many(
        conn,
        aggregates=[_recipient(iin) for iin in dict.fromkeys(iins)],
        action="recipient.read",
        reason=what,
    )


async def list_enrollments(
    *,
    conn: Connection,
    provider: str | None,
    recipient: str | None,
    status: str | None,
    region: str | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[EnrollmentRow]:
    """A page of enrollments (each carries an IIN, so the read is audited)."""
    async with conn.transaction():
        rows = await store.list_enrollments(
            conn,
            provider=provider,
            recipient=recipient,
            status=status,
            region=region,
            after=after,
            limit=limit,
        )
        await _record_reads(conn, [r.iin for r in rows], "enrollment list")
    return rows


async def list_disruptions(
    *, conn: Connection, region: str | None, after: str | None, limit: int
) -> list[store.DisruptionRow]:
    """The disruption board: names and contacts of recipients, so the read is audited."""
    async with conn.transaction():
        rows = await store.list_disruptions(conn, region=region, after=after, limit=limit)
        await _record_reads(conn, [r.iin for r in rows], "disruption board")
    return rows


# Bulk import


@dataclass(frozen=True)
class ImportResult:
    rows: int
    stored: int
    unchanged: int
    rejected: int
    # the first `max_errors` of them, by line
    errors: list[domain.RowError]


# Rows parsed per turn (about a millisecond); the event loop runs between turns, so health
# checks and other requests go on while a large file is read. (A worker thread was tried: the
# GIL convoy kept the loop waiting 400 ms.)
_CHUNK_ROWS = 250


class _CsvRows:
    """The rows of an import CSV, checked chunk by chunk as they are streamed into staging; the
    first `max_errors` bad rows are kept, all are counted."""

    def __init__(self, text: str, *, region_scope: str | None, max_errors: int) -> None:
        # newline="" lets the csv module see line ends itself (a bare CR ends a row).
        self._reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""))
        header = self._next_row()
        columns = tuple(c.strip().lower() for c in header or ())
        if columns != domain.IMPORT_COLUMNS:
            raise RegistryError(
                422,
                f"the CSV header must be: {','.join(domain.IMPORT_COLUMNS)}",
                field="header",
            )
        self._region_scope = region_scope
        self._max_errors = max_errors
        self._first: dict[str, domain.ImportRecord] = {}
        self._done = False
        self.rows = 0
        self.error_count = 0
        self.errors: list[domain.RowError] = []

    def _reject(self, error: domain.RowError) -> None:
        self.error_count += 1
        if len(self.errors) < self._max_errors:
            self.errors.append(error)

    def _next_row(self) -> list[str] | None:
        """The next row; a file the csv module cannot read any further is refused whole (the
        import's transaction rolls back), so no row after the break is silently dropped."""
        try:
            return next(self._reader, None)
        except csv.Error as exc:
            line = self._reader.line_num
            raise RegistryError(
                422, f"line {line}: the CSV cannot be read: {exc}", field=f"line {line}"
            ) from None

    def _chunk(self) -> list[domain.ImportRecord]:
        """The valid records of the next rows."""
        parse = domain.parse_import_row
        reader = self._reader
        first = self._first
        valid: list[domain.ImportRecord] = []
        for _ in range(_CHUNK_ROWS):
            values = self._next_row()
            if values is None:
                self._done = True
                break
            line = reader.line_num
            if not values or (len(values) == 1 and not values[0].strip()):
                continue
            self.rows += 1
            record, error = parse(values, line, region_scope=self._region_scope)
            if error is not None:
                self._reject(error)
                continue
            assert record is not None
            earlier = first.get(record[0])
            if earlier is None:
                first[record[0]] = record
                valid.append(record)
            elif earlier[:-1] != record[:-1]:
                self._reject(
                    domain.RowError(line, "iin", f"conflicts with line {earlier[-1]} of this file")
                )
        return valid

    async def records(self) -> AsyncIterator[domain.ImportRecord]:
        """Valid records, one per IIN; a later row with other data for an IIN is an error."""
        while not self._done:
            for record in self._chunk():
                yield record
            await asyncio.sleep(0)  # the loop's turn


async def import_recipients(
    *, conn: Connection, text: str, region_scope: str | None, max_errors: int
) -> ImportResult:
    """Store every valid row (by IIN, idempotently), count every bad row and report the first
    `max_errors` with their lines.

    Rows are checked while they stream into a COPY, so parsing overlaps the database's work."""
    rows = _CsvRows(text, region_scope=region_scope, max_errors=max_errors)
    async with conn.transaction():
        await store.stage_import(conn, rows.records())
        conflicts = await store.conflicting_staged_rows(conn)
        if conflicts:
            await store.unstage(conn, [c.iin for c in conflicts])
        stored = await store.merge_staged_recipients(
            conn, correlation_id=current_correlation_id(), time=datetime.now(UTC)
        )
        await audit.record(
            conn,
            aggregate=Aggregate("recipient_import", current_correlation_id()),
            action="recipients.imported",
            reason=f"{stored} stored of {rows.rows} rows",
        )
    errors = rows.errors
    errors.extend(
        domain.RowError(c.line, "iin", "already registered with different data") for c in conflicts
    )
    errors.sort(key=lambda e: e.line)
    rejected = rows.error_count + len(conflicts)
    log.info("recipients.imported", rows=rows.rows, stored=stored, rejected=rejected)
    return ImportResult(
        rows=rows.rows,
        stored=stored,
        unchanged=rows.rows - stored - rejected,
        rejected=rejected,
        errors=errors[:max_errors],
    )


# Deaths


@dataclass(frozen=True)
class DeathsResult:
    rows: int
    recorded: int
    unchanged: int
    not_recipients: int
    rejected: int
    # the first `max_errors` of them, by line
    errors: list[domain.RowError]


def _refuse_regional_key(region_scope: str | None) -> None:
    """The register's notices are national: a person may be enrolled in any region."""
    if region_scope is not None:
        raise RegistryError(
            403, "death notices are national; a key limited to a region cannot record them"
        )


def _death_outcome(
    state: store.RecipientState | None, notice: domain.DeathNotice
) -> tuple[str, domain.RowError | None] | None:
    """What a notice comes to for what is held of the person; None: it is to be recorded."""
    if state is None:
        return "not_recipient", None
    verdict = domain.death_verdict(
        status=state.status,
        deregistered_on=state.deregistered_on,
        reason=state.deregistration_reason,
        died_on=notice.died_on,
    )
    if verdict is None:
        return None
    if verdict == "unchanged":
        return "unchanged", None
    return "rejected", domain.RowError(notice.line, "died_on", verdict)


async def _record_deaths(
    conn: Connection, notices: Sequence[domain.DeathNotice], *, actor: str
) -> list[tuple[str, domain.RowError | None]]:
    """Each notice's outcome: "recorded", "unchanged", "not_recipient" or "rejected" with its
    error. The recipients among the notices are found in one query (most people in a file are
    none); each death is then recorded in its own transaction, as a de-registration by hand
    is, so a long file holds no lock that enrollments wait for, and as recording is idempotent
    an import broken off is simply sent again."""
    states = await store.recipient_states(conn, [n.iin for n in notices])
    outcomes: list[tuple[str, domain.RowError | None]] = []
    for notice in notices:
        outcome = _death_outcome(states.get(notice.iin), notice)
        outcomes.append(outcome or await _record_one_death(conn, notice, actor=actor))
    return outcomes


async def _record_one_death(
    conn: Connection, notice: domain.DeathNotice, *, actor: str
) -> tuple[str, domain.RowError | None]:
    """De-register for death on the date (`deregister_recipient`: open enrollments end on it,
    never before their start) and audit the notice, in one transaction."""
    try:
        async with conn.transaction():
            await deregister_recipient(
                conn=conn,
                iin=notice.iin,
                reason="died",
                day=notice.died_on,
                actor=actor,
                region_scope=None,
            )
            await audit.record(
                conn,
                aggregate=_recipient(notice.iin),
                action="recipient.death_notified",
                reason=f"population register, act {notice.act_number or '-'}",
            )
    except RegistryError as exc:
        # Changed since it was read (the same notice recorded at the same time): judged again.
        again = _death_outcome(
            (await store.recipient_states(conn, [notice.iin])).get(notice.iin), notice
        )
        return again or ("rejected", domain.RowError(notice.line, "died_on", exc.detail))
    return "recorded", None


async def record_death(
    *, conn: Connection, notice: domain.DeathNotice, actor: str, region_scope: str | None
) -> str:
    """One notice of death: "recorded", "unchanged" (already done) or "not_recipient"; a date in
    the future or before birth is a 422, one at odds with an earlier de-registration a 409."""
    _refuse_regional_key(region_scope)
    problem = domain.death_date_problem(notice.iin, notice.died_on, on=domain.today())
    if problem is not None:
        raise RegistryError(422, f"died_on {notice.died_on.isoformat()} {problem}", field="died_on")
    [(outcome, error)] = await _record_deaths(conn, [notice], actor=actor)
    if error is not None:
        raise RegistryError(409, f"{error.field}: {error.reason}", field=error.field)
    log.info("death.notice", outcome=outcome)
    return outcome


def _death_notices(
    text: str, *, on: date, errors: list[domain.RowError]
) -> Iterator[domain.DeathNotice | None]:
    """The notices of the register's CSV, a None after each bad row (appended to `errors`) or
    repeated one; a row repeating a notice of the file is dropped (counted unchanged), one with
    another date for the same IIN is an error."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""))

    def next_row() -> list[str] | None:
        try:
            return next(reader, None)
        except csv.Error as exc:
            line = reader.line_num
            raise RegistryError(
                422, f"line {line}: the CSV cannot be read: {exc}", field=f"line {line}"
            ) from None

    header = next_row()
    if tuple(c.strip().lower() for c in header or ()) != domain.DEATH_COLUMNS:
        raise RegistryError(
            422, f"the CSV header must be: {','.join(domain.DEATH_COLUMNS)}", field="header"
        )
    first: dict[str, domain.DeathNotice] = {}
    while (values := next_row()) is not None:
        if not values or (len(values) == 1 and not values[0].strip()):
            continue
        notice, error = domain.parse_death_row(values, reader.line_num, on=on)
        if notice is not None:
            earlier = first.setdefault(notice.iin, notice)
            if earlier is notice:
                yield notice
                continue
            if earlier.died_on != notice.died_on:
                error = domain.RowError(
                    notice.line, "died_on", f"conflicts with line {earlier.line} of this file"
                )
        if error is not None:
            errors.append(error)
        yield None


async def import_deaths(
    *, conn: Connection, text: str, actor: str, region_scope: str | None, max_errors: int
) -> DeathsResult:
    """Record a file of the register's notices, each death in its own transaction; importing it
    again changes nothing. Rows are read in chunks (the event loop runs between them)."""
    _refuse_regional_key(region_scope)
    errors: list[domain.RowError] = []
    notices: list[domain.DeathNotice] = []
    rows = 0
    for rows, notice in enumerate(_death_notices(text, on=domain.today(), errors=errors), 1):
        if notice is not None:
            notices.append(notice)
        if rows % _CHUNK_ROWS == 0:
            await asyncio.sleep(0)  # the loop's turn
    bad_rows = len(errors)
    outcomes = await _record_deaths(conn, notices, actor=actor)
    counts = defaultdict(int, Counter(outcome for outcome, _ in outcomes))
    async with conn.transaction():
        await audit.record(
            conn,
            aggregate=Aggregate("death_import", current_correlation_id()),
            action="deaths.imported",
            reason=f"{counts['recorded']} recorded of {rows} rows",
        )
    errors.extend(error for _, error in outcomes if error is not None)
    errors.sort(key=lambda e: e.line)
    rejected = bad_rows + counts["rejected"]
    result = DeathsResult(
        rows=rows,
        recorded=counts["recorded"],
        unchanged=rows - counts["recorded"] - counts["not_recipient"] - rejected,
        not_recipients=counts["not_recipient"],
        rejected=rejected,
        errors=errors[:max_errors],
    )
    log.info(
        "deaths.imported",
        rows=result.rows,
        recorded=result.recorded,
        unchanged=result.unchanged,
        not_recipients=result.not_recipients,
        rejected=result.rejected,
    )
    return result


# Statistics


_LEGAL_FORMS = ("state", "ngo", "private")
_STATUSES = ("active", "suspended", "revoked")


def _zeros(keys: Iterable[object]) -> dict[str, int]:
    return {str(k): 0 for k in keys}


@dataclass
class _Providers:
    total: int = 0
    by_legal_form: dict[str, int] = field(default_factory=lambda: _zeros(_LEGAL_FORMS))
    by_status: dict[str, int] = field(default_factory=lambda: _zeros(_STATUSES))

    def figures(self) -> dict[str, object]:
        return {"total": self.total, **self.by_legal_form, "by_status": self.by_status}


@dataclass
class _Places:
    total: int = 0
    occupied: int = 0
    free: int = 0


@dataclass
class _Served:
    total: int = 0
    by_form: dict[str, int] = field(default_factory=lambda: _zeros(ServiceForm))
    by_category: dict[str, int] = field(default_factory=lambda: _zeros(RecipientCategory))
    by_age_band: dict[str, int] = field(default_factory=lambda: _zeros(domain.AGE_BANDS))
    by_legal_form: dict[str, int] = field(default_factory=lambda: _zeros(_LEGAL_FORMS))

    def breakdown(self, grouped: str) -> dict[str, int]:
        """The breakdown a served count's `grouped` names (form, category, band, legal_form)."""
        return {
            "form": self.by_form,
            "category": self.by_category,
            "band": self.by_age_band,
            "legal_form": self.by_legal_form,
        }[grouped]


@dataclass
class _WaitingLine:
    form: str
    category: str
    recipients: int
    median_days: float | None


@dataclass
class _Waiting:
    recipients: int = 0
    median_days: float | None = None
    by_line: list[_WaitingLine] = field(default_factory=list)


@dataclass
class _RegionFigures:
    region: str
    name_kk: str | None
    name_ru: str | None
    providers: _Providers = field(default_factory=_Providers)
    places: _Places = field(default_factory=_Places)
    recipients_served: _Served = field(default_factory=_Served)
    disrupted_recipients: int = 0
    unplaced_recipients: int = 0
    waiting: _Waiting = field(default_factory=_Waiting)

    def figures(self) -> dict[str, object]:
        """As the statistics answer shows a region (JSON-shaped)."""
        return {
            "region": self.region,
            "name_kk": self.name_kk,
            "name_ru": self.name_ru,
            **self.totals(),
        }

    def totals(self) -> dict[str, object]:
        return {
            "providers": self.providers.figures(),
            "places": asdict(self.places),
            "recipients_served": asdict(self.recipients_served),
            "disrupted_recipients": self.disrupted_recipients,
            "unplaced_recipients": self.unplaced_recipients,
            "waiting": asdict(self.waiting),
        }


def _region_block(region: str) -> _RegionFigures:
    names = REGIONS.get(region)
    return _RegionFigures(
        region=region,
        name_kk=names.name_kk if names else None,
        name_ru=names.name_ru if names else None,
    )


async def statistics(
    *, conn: Connection, region: str | None, as_of: date | None = None
) -> dict[str, object]:
    """Figures for the ministry as of a date (default today), from the license history and the
    enrollments' dates: providers by ownership, places, recipients served, disruptions; for the
    whole country (or one region) and per region."""
    on = as_of or domain.today()
    overall = _region_block(region) if region else _region_block("")
    regions: dict[str, _RegionFigures] = {}

    def block(r: str) -> _RegionFigures:
        return regions.setdefault(r, _region_block(r))

    for row in await store.provider_counts(conn, region, on):
        for target in (overall, block(row.region)):
            providers = target.providers
            providers.by_status[row.status] += row.n
            if row.status != "revoked":
                providers.total += row.n
                providers.by_legal_form[row.legal_form] += row.n
    for place in await store.place_counts(conn, region, on):
        for target in (overall, block(place.region)):
            target.places.total += place.places
            target.places.occupied += place.occupied
            target.places.free += place.free
    for count in await store.served_counts(conn, region, on):
        target = block(count.region) if count.by_region and count.region else overall
        served = target.recipients_served
        if count.grouped == "total":
            served.total = count.n
        else:
            served.breakdown(count.grouped)[str(count.key)] = count.n
    # Age bands from the (sealed) birth dates: distinct people per region and overall.
    everyone: dict[str, set[bytes]] = defaultdict(set)
    for person_region, person, born in await store.served_birth_dates(conn, region, on):
        band = domain.age_band(born, on)
        everyone[band].add(person)
        block(person_region).recipients_served.by_age_band[band] += 1
    for band, people in everyone.items():
        overall.recipients_served.by_age_band[band] = len(people)
    for disrupted in await store.disrupted_counts(conn, region, on):
        target = block(disrupted.region) if disrupted.region is not None else overall
        target.disrupted_recipients = disrupted.n
    for unplaced in await store.unplaced_counts(conn, region, on):
        target = block(unplaced.region) if unplaced.region is not None else overall
        target.unplaced_recipients = unplaced.n
    for figure in await store.waiting_figures(conn, region, on):
        if figure.overall:
            target = overall
        else:
            assert figure.region is not None  # grouped by region
            target = block(figure.region)
        median = float(figure.median_days) if figure.median_days is not None else None
        if figure.overall or figure.whole_region:
            target.waiting.recipients = figure.n
            target.waiting.median_days = median
        else:
            assert figure.form is not None and figure.category is not None  # a line
            target.waiting.by_line.append(
                _WaitingLine(
                    form=figure.form,
                    category=figure.category,
                    recipients=figure.n,
                    median_days=median,
                )
            )
    if region is not None:
        overall.waiting = block(region).waiting
    result: dict[str, object] = {
        "as_of": on.isoformat(),
        "region": region,
        **overall.totals(),
        "regions": [regions[r].figures() for r in sorted(regions)],
    }
    if region is not None:
        result["name_kk"] = overall.name_kk
        result["name_ru"] = overall.name_ru
        result["by_provider"] = [
            {
                "license_number": p.license_number,
                "bin": p.bin,
                "name": p.name,
                "legal_form": p.legal_form,
                "status": p.status,
                "places": p.places,
                "recipients_served": p.recipients,
            }
            for p in await store.provider_figures(conn, region, on)
        ]
    return result


# Waiting list and offers (DESIGN §3 "Waiting list")


@dataclass(frozen=True)
class WaitingRules:
    """The settings the waiting line follows; `use_waiting_rules` sets them at start-up."""

    weights: dict[str, int]
    hold_days: int = 7
    disruption_wait_days: int = 14


_rules: list[WaitingRules] = []


def use_waiting_rules(rules: WaitingRules) -> None:
    _rules[:] = [rules]


def waiting_rules() -> WaitingRules:
    if not _rules:
        _rules.append(WaitingRules(weights=domain.priority_weights(domain.PRIORITY_CRITERIA)))
    return _rules[0]


@dataclass(frozen=True)
class JoinWaiting:
    iin: str
    form: str
    category: str | None
    preferred_bins: tuple[str, ...] = ()
    asked_on: date | None = None


async def join_waiting(
    *, conn: Connection, command: JoinWaiting, region_scope: str | None
) -> WaitingEntry:
    """Put a recipient on the waiting line of their region for a subtype; a place free now is
    offered at once. Returns the request with its place in line."""
    today = domain.today()
    asked_on = command.asked_on or today
    if asked_on > today:
        raise RegistryError(
            422, f"asked_on {asked_on.isoformat()} is in the future", field="asked_on"
        )
    if not domain.waits_for_places(command.form):
        raise RegistryError(
            422,
            Texts(
                f"the form {command.form} takes no place at a site: enroll the recipient directly",
                "бұл қызмет нысаны орын алмайды: алушыны тікелей қабылдаңыз",
                "эта форма услуги не занимает места: зачислите получателя напрямую",
            ),
            field="form",
            kind=domain.NO_LINE_FOR_FORM,
        )
    async with conn.transaction():
        recipient = await store.get_recipient(conn, command.iin, lock=True)
        if recipient is None or (region_scope is not None and recipient.region != region_scope):
            raise NotFound(f"recipient {command.iin} not found")
        _refuse_deregistered(recipient)
        await store.lock_places(conn, [recipient.region])
        current = await store.open_enrollment_for_form(conn, command.iin, command.form)
        if current is not None and current.status == "active":
            raise RegistryError(
                409,
                f"the recipient already has an active enrollment for the form {command.form}",
                current_status="active",
                enrollment_id=str(current.id),
            )
        category = command.category or recipient.category
        if not await _known_preferences(
            conn, recipient.region, command.form, category, command.preferred_bins
        ):
            raise RegistryError(
                422,
                "preferred_bins names a provider without an active license for the form and "
                f"category in the region {recipient.region}",
                field="preferred_bins",
            )
        request_id = await _join(
            conn,
            recipient=recipient,
            form=command.form,
            category=category,
            preferred_bins=list(command.preferred_bins),
            asked_on=asked_on,
            disrupted=current is not None,
            reason=None,
            from_enrollment=str(current.id) if current is not None else None,
        )
        await _offer_free_places(conn, [recipient.region])
        rows = await store.waiting_requests(conn, waiting_rules().weights, request_id=request_id)
        await _record_reads(conn, [command.iin], "waiting request")
    return rows[0]


async def _known_preferences(
    conn: Connection, region: str, form: str, category: str, bins: Sequence[str]
) -> bool:
    if not bins:
        return True
    return set(bins) <= await store.providers_of_subtype(conn, region, form, category)


async def _join(
    conn: Connection,
    *,
    recipient: RecipientRow,
    form: str,
    category: str,
    preferred_bins: list[str],
    asked_on: date,
    disrupted: bool,
    reason: str | None,
    from_enrollment: str | None,
) -> str:
    """Insert a waiting request (the caller holds the region's places) and publish its
    `registry.waiting.joined.v1` with the place in line."""
    iin = recipient.iin
    waiting = await store.waiting_for_form(conn, iin, form)
    if waiting is not None:
        raise RegistryError(
            409,
            Texts(
                f"the recipient is already waiting for the form {form}",
                "алушы бұл қызмет нысаны бойынша кезекте тұр",
                "получатель уже стоит в очереди на эту форму услуги",
            ),
            kind=domain.ALREADY_WAITING,
            request_id=waiting.request_id,
        )
    request_id = await store.insert_waiting(
        conn,
        store.NewWaitingRequest(
            id=uuid.uuid4(),
            iin=iin,
            region=recipient.region,
            form=form,
            category=category,
            preferred_bins=preferred_bins,
            disrupted=disrupted,
            child=domain.age_on(recipient.birth_date, asked_on) < domain.ADULT_AGE,
            group_one=recipient.disability_group == 1,
            asked_on=asked_on,
            reason=reason,
            from_enrollment=from_enrollment,
        ),
    )
    row = (await store.waiting_requests(conn, waiting_rules().weights, request_id=request_id))[0]
    await audit.record(
        conn,
        aggregate=Aggregate("waiting", request_id),
        action="waiting.joined",
        reason=reason or f"{form}/{category} in {recipient.region}",
    )
    await emit(
        conn,
        WaitingJoinedV1(
            request_id=request_id,
            iin=iin,
            region=row.request.region,
            form=form,
            category=category,
            preferred_bins=preferred_bins,
            asked_on=asked_on,
            disrupted=disrupted,
            position=row.position,
            waiting=row.waiting,
            reason=reason,
            addressee=domain.addressee_for(recipient.contact, on=domain.today()),
        ),
        subject=request_id,
    )
    log.info("waiting.joined", request=request_id, region=row.request.region, position=row.position)
    return request_id


async def _offer_free_places(conn: Connection, regions: Iterable[str]) -> int:
    """Offer every free place of the regions to the first waiting recipient who fits it (the
    subtype, their preferred providers, a site not offered to them before), in line order.
    Holds the regions' places, so two replicas never offer the same place. Returns how many
    offers were made."""
    rules = waiting_rules()
    wanted = sorted(set(regions))
    await store.lock_places(conn, wanted)
    today = domain.today()
    made: list[tuple[uuid.UUID, str, str, str, date, date]] = []
    for region in wanted:
        sites = [
            _FreeSite(
                license_number=s.license_number,
                site_id=s.site_id,
                bin=s.bin,
                free=s.free,
                subtypes=frozenset(zip(s.forms, s.categories, strict=True)),
            )
            for s in await store.free_sites(conn, region)
        ]
        if not sites:
            continue
        for request in await store.waiting_candidates(conn, region, rules.weights):
            site = _first_fitting(sites, request)
            if site is None:
                continue
            made.append(
                (
                    uuid.uuid4(),
                    request.request.request_id,
                    site.license_number,
                    site.site_id,
                    today,
                    domain.offer_expiry(today, rules.hold_days),
                )
            )
            if site.free is not None:
                site.free -= 1
                if site.free == 0:
                    sites.remove(site)
            if not sites:
                break
    if not made:
        return 0
    await store.insert_offers(conn, made)
    offers = await store.offers_by_ids(conn, [str(m[0]) for m in made])
    await audit.record_many(
        conn,
        aggregates=[Aggregate("waiting", o.request.request_id) for o in offers],
        action="offer.made",
        reason="a place is free",
    )
    await emit_many(
        conn,
        [
            (
                OfferMadeV1(
                    **_offer_fields(o, on=today),
                    site_address=o.site_address,
                    made_on=o.made_on,
                    expires_on=o.expires_on,
                ),
                o.request.request_id,
            )
            for o in offers
        ],
    )
    log.info("offers.made", count=len(offers), regions=wanted)
    return len(offers)


@dataclass
class _FreeSite:
    license_number: str
    site_id: str
    bin: str
    free: int | None
    subtypes: frozenset[tuple[str, str]]


def _first_fitting(sites: list[_FreeSite], candidate: store.WaitingCandidate) -> _FreeSite | None:
    request = candidate.request
    offered_before = set(candidate.offered_before)
    preferred = set(request.preferred_bins)
    for site in sites:
        if (
            (request.form, request.category) in site.subtypes
            and (not preferred or site.bin in preferred)
            and f"{site.license_number}/{site.site_id}" not in offered_before
        ):
            return site
    return None


class _OfferFields(TypedDict):
    offer_id: str
    request_id: str
    iin: str
    region: str
    form: str
    category: str
    provider_bin: str
    provider_name: str
    license_number: str
    site_id: str
    addressee: Addressee


def _offer_fields(offer: store.OfferRow, *, on: date) -> _OfferFields:
    """What every offer event says of the offer: who, which line, which place, told whom."""
    return {
        "offer_id": offer.offer_id,
        "request_id": offer.request.request_id,
        "iin": offer.request.iin,
        "region": offer.request.region,
        "form": offer.request.form,
        "category": offer.request.category,
        "provider_bin": offer.provider_bin,
        "provider_name": offer.provider_name,
        "license_number": offer.license_number,
        "site_id": offer.site_id,
        "addressee": domain.addressee_for(offer.request.contact, on=on),
    }


LapseReason = Literal["declined", "expired", "withdrawn"]


async def _lapse(
    conn: Connection, offer_ids: Sequence[str], *, reason: LapseReason, on: date
) -> list[str]:
    """Close open offers without a placement (declined, expired, withdrawn) and tell the
    recipients they stay on the line; returns the regions whose places came free. The
    reason is the offer's closed status."""
    closed = await store.close_offers(conn, offer_ids, status=reason, on=on)
    if not closed:
        return []
    offers = await store.offers_by_ids(conn, closed)
    await audit.record_many(
        conn,
        aggregates=[Aggregate("waiting", o.request.request_id) for o in offers],
        action=f"offer.{reason}",
        reason=f"offer {reason}",
    )
    await emit_many(
        conn,
        [
            (
                OfferLapsedV1(
                    **_offer_fields(o, on=on),
                    reason=reason,
                    lapsed_on=on,
                ),
                o.request.request_id,
            )
            for o in offers
        ],
    )
    return sorted({o.request.region for o in offers})


async def decline_offer(*, conn: Connection, offer_id: str, region_scope: str | None) -> OfferRow:
    """The recipient declined: the place passes to the next in line, they keep their place in
    line and are not offered that site again."""
    async with conn.transaction():
        offer = await _offer_in_scope(conn, offer_id, region_scope)
        await store.lock_places(conn, [offer.request.region])
        if not await _lapse(conn, [offer_id], reason="declined", on=domain.today()):
            raise _not_open(offer_id)
        await _offer_free_places(conn, [offer.request.region])
        row = await store.get_offer(conn, offer_id)
    assert row is not None
    return row


async def accept_offer(
    *,
    conn: Connection,
    offer_id: str,
    start_date: date | None,
    region_scope: str | None,
    max_days_ahead: int = 90,
) -> OfferRow:
    """Enroll the recipient at the offered site (every rule of an enrollment holds; the held
    place is theirs); the request leaves the line and `registry.offer.accepted.v1` follows."""
    async with conn.transaction():
        offer = await _offer_in_scope(conn, offer_id, region_scope)
        if offer.offer_status != "open":
            raise _not_open(offer_id)
        if domain.lapsed(offer.expires_on, on=domain.today()):
            expired_on = offer.expires_on.strftime("%d.%m.%Y")
            raise RegistryError(
                409,
                Texts(
                    f"offer {offer_id} expired on {offer.expires_on.isoformat()}",
                    f"ұсыныстың мерзімі {expired_on} аяқталды",
                    f"срок предложения истёк {expired_on}",
                ),
                kind=domain.OFFER_CLOSED,
                current_status="expired",
            )
        await enroll(
            conn=conn,
            command=EnrollRecipient(
                iin=offer.request.iin,
                provider_bin=offer.provider_bin,
                site_id=offer.site_id,
                form=offer.request.form,
                category=offer.request.category,
                start_date=start_date,
                license_number=offer.license_number,
            ),
            region_scope=region_scope,
            max_days_ahead=max_days_ahead,
        )
        row = await store.get_offer(conn, offer_id)
    assert row is not None
    return row


async def _offer_in_scope(conn: Connection, offer_id: str, region_scope: str | None) -> OfferRow:
    offer = await store.get_offer(conn, offer_id)
    if offer is None or (region_scope is not None and offer.request.region != region_scope):
        raise NotFound(f"offer {offer_id} not found")
    return offer


def _not_open(offer_id: str) -> RegistryError:
    return RegistryError(
        409,
        Texts(
            f"offer {offer_id} is no longer open",
            "бұл ұсыныс енді ашық емес",
            "это предложение уже закрыто",
        ),
        kind=domain.OFFER_CLOSED,
        current_status="closed",
    )


async def _placed(conn: Connection, *, iin: str, form: str, enrollment: EnrollmentRow) -> None:
    """An enrollment of a form started: the recipient's waiting request of that form is met.
    An open offer at the same site is accepted by it; one elsewhere is withdrawn (its place
    passes on)."""
    waiting = await store.waiting_for_form(conn, iin, form)
    if waiting is None:
        return
    today = domain.today()
    offer = await store.open_offer_of(conn, waiting.request_id)
    await store.close_waiting(
        conn,
        waiting.request_id,
        status="placed",
        on=enrollment.start_date,
        reason="enrolled",
        enrollment_id=enrollment.id,
    )
    if offer is None:
        return
    if (offer.license_number, offer.site_id) != (
        enrollment.license_number,
        enrollment.site_id,
    ):
        await _lapse(conn, [offer.offer_id], reason="withdrawn", on=today)
        await _offer_free_places(conn, [enrollment.region])
        return
    await store.close_offers(
        conn, [offer.offer_id], status="accepted", on=today, enrollment_id=enrollment.id
    )
    accepted = await store.get_offer(conn, offer.offer_id)
    assert accepted is not None
    await audit.record(
        conn,
        aggregate=Aggregate("waiting", waiting.request_id),
        action="offer.accepted",
        reason=f"enrollment {enrollment.id}",
    )
    await emit(
        conn,
        OfferAcceptedV1(
            **_offer_fields(accepted, on=today),
            enrollment_id=str(enrollment.id),
            start_date=enrollment.start_date,
        ),
        subject=waiting.request_id,
    )


async def withdraw_waiting(
    *, conn: Connection, request_id: str, reason: str, region_scope: str | None
) -> WaitingEntry:
    """The recipient no longer waits; an open offer is withdrawn and its place passes on."""
    async with conn.transaction():
        rows = await store.waiting_requests(conn, waiting_rules().weights, request_id=request_id)
        if not rows or (region_scope is not None and rows[0].request.region != region_scope):
            raise NotFound(f"waiting request {request_id} not found")
        await _close_requests(conn, [request_id], reason=reason, regions=[rows[0].request.region])
        rows = await store.waiting_requests(conn, waiting_rules().weights, request_id=request_id)
    return rows[0]


async def _close_requests(
    conn: Connection, request_ids: Sequence[str], *, reason: str, regions: Sequence[str]
) -> None:
    if not request_ids:
        return
    await store.lock_places(conn, regions)
    today = domain.today()
    offers = await store.open_offers_where(conn, request_ids=request_ids)
    freed = await _lapse(conn, [o.offer_id for o in offers], reason="withdrawn", on=today)
    for request_id in request_ids:
        if not await store.close_waiting(
            conn, request_id, status="withdrawn", on=today, reason=reason
        ):
            raise RegistryError(
                409, f"waiting request {request_id} is no longer waiting", current_status="closed"
            )
        await audit.record(
            conn, aggregate=Aggregate("waiting", request_id), action="waiting.left", reason=reason
        )
    if freed:
        await _offer_free_places(conn, freed)


async def get_waiting(
    *, conn: Connection, request_id: str, region_scope: str | None
) -> WaitingEntry:
    async with conn.transaction():
        rows = await store.waiting_requests(conn, waiting_rules().weights, request_id=request_id)
        if not rows or (region_scope is not None and rows[0].request.region != region_scope):
            raise NotFound(f"waiting request {request_id} not found")
        await _record_reads(conn, [rows[0].request.iin], "waiting request")
    return rows[0]


async def list_waiting(
    *,
    conn: Connection,
    region: str | None,
    form: str | None,
    category: str | None,
    after: tuple[str, str, int] | None,
    limit: int,
) -> list[WaitingEntry]:
    """A region's waiting lines in order (form, category, place in line)."""
    async with conn.transaction():
        rows = await store.waiting_requests(
            conn,
            waiting_rules().weights,
            region=region,
            form=form,
            category=category,
            after=after,
            limit=limit,
        )
        await _record_reads(conn, [r.request.iin for r in rows], "waiting list")
    return rows


async def get_offer(*, conn: Connection, offer_id: str, region_scope: str | None) -> OfferRow:
    async with conn.transaction():
        offer = await _offer_in_scope(conn, offer_id, region_scope)
        await _record_reads(conn, [offer.request.iin], "offer")
    return offer


async def list_offers(
    *, conn: Connection, region: str | None, status: str | None, after: str | None, limit: int
) -> list[OfferRow]:
    async with conn.transaction():
        rows = await store.list_offers(conn, region=region, status=status, after=after, limit=limit)
        await _record_reads(conn, [r.request.iin for r in rows], "offer list")
    return rows


async def keep_waiting_lines(*, conn: Connection, today: date) -> tuple[int, int]:
    """The waiting list's timer: offers not answered by their last day lapse (their places pass
    on), and recipients disrupted for `disruption_wait_days` who took no alternative join the
    line at its top. Returns (offers lapsed, recipients joined)."""
    rules = waiting_rules()
    async with conn.transaction():
        due = await store.open_offers_where(conn, due_before=today)
        disrupted_by = today - timedelta(days=rules.disruption_wait_days)
        regions = {o.region for o in due} | set(
            await store.stale_disruption_regions(conn, disrupted_by=disrupted_by)
        )
        if not regions:
            return 0, 0
        await store.lock_places(conn, regions)
        freed = await _lapse(conn, [o.offer_id for o in due], reason="expired", on=today)
        joined = await _join_lost_places(
            conn,
            await store.stale_disruptions(conn, disrupted_by=disrupted_by),
            reason=f"no place taken within {rules.disruption_wait_days} days of the disruption",
            lost_on=None,
        )
        await _offer_free_places(conn, {*freed, *joined})
    return len(due), len(joined)


async def _join_lost_places(
    conn: Connection, rows: Sequence[store.AffectedEnrollment], *, reason: str, lost_on: date | None
) -> list[str]:
    """Put recipients who lost a place (disrupted, unplaced) on the line at its top, for the
    same subtype, unless already waiting for the form; they wait from the day they lost it
    (`lost_on`, or the row's disruption date). Returns the region of each who joined."""
    regions: list[str] = []
    for row in rows:
        if not domain.waits_for_places(row.form) or await store.waiting_for_form(
            conn, row.iin, row.form
        ):
            continue
        recipient = await store.get_recipient(conn, row.iin)
        asked_on = lost_on or row.disrupted_on
        assert recipient is not None and asked_on is not None
        await _join(
            conn,
            recipient=recipient,
            form=row.form,
            category=row.category,
            preferred_bins=[],
            asked_on=asked_on,
            disrupted=True,
            reason=reason,
            from_enrollment=row.enrollment_id,
        )
        regions.append(recipient.region)
    return regions
