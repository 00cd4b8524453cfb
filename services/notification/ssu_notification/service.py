"""Use cases of notification: keep the contact book, queue notices, manage subscriptions."""

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TypeAlias
from uuid import UUID

import jinja2
from ssu_common import (
    Connection,
    PermanentError,
    audit,
    emit,
    get_logger,
    mask_pii,
    tracing,
    work_context,
)
from ssu_common.audit import Aggregate
from ssu_common.errors import DomainError, Texts
from ssu_contracts import (
    EVENTS,
    Addressee,
    ApplicationRejectedV1,
    ApplicationSubmittedV1,
    ConfirmationRequestedV1,
    DeliveryFailedV1,
    EnrollmentDisruptedV1,
    EnrollmentResumedV1,
    EnrollmentStartedV1,
    EnrollmentUnplacedV1,
    Envelope,
    Event,
    InvoiceIssuedV1,
    LicenseEvent,
    OfferAcceptedV1,
    OfferLapsedV1,
    OfferMadeV1,
    RecipientRegisteredV1,
    RecipientUpdatedV1,
    WaitingJoinedV1,
)

from ssu_notification import domain, store
from ssu_notification.departments import Department
from ssu_notification.templates import render, render_bilingual

log = get_logger(__name__)

_departments: dict[str, Department] = {}

# Types notification consumes: every event of the catalogue but its own.
CONSUMED = frozenset(t for t in EVENTS if not t.startswith("notification."))
# Types a webhook may subscribe to: those, but the ones holding a person's secret.
SUBSCRIBABLE = CONSUMED - domain.SECRET_EVENT_TYPES


class NotificationError(DomainError):
    """A refusal of a notification rule (ssu_common.errors): answered as a problem of its kind;
    without a kind of its own, the general kind of invalid input."""


def use_departments(book: dict[str, Department]) -> None:
    """Set the regional departments read from the departments file."""
    _departments.clear()
    _departments.update(book)


@dataclass(frozen=True)
class Told:
    """One addressee of an event with the contacts and words to reach them."""

    audience: str
    addressee: str
    language: str  # kk | ru | kk+ru
    email: str | None
    phone: str | None
    # What the templates see (jinja takes any value).
    context: dict[str, object] = field(default_factory=dict)


async def handle_event(*, conn: Connection, envelope: Envelope, data: Event) -> None:
    """Apply an event: update the contact book, queue notices and webhook deliveries."""
    await _remember_contacts(conn, data)
    told = await _addressees(conn, envelope.type, data)
    deliveries = [d for t in told for d in _deliveries_for(envelope.type, t)]
    region = getattr(data, "region", None)
    subscribers = (
        await store.live_subscriptions_for(conn, event_type=envelope.type, region=region)
        if envelope.type in SUBSCRIBABLE
        else []
    )
    if subscribers:
        body = envelope.to_bytes().decode()
        deliveries += [
            store.NewDelivery(
                id=uuid.uuid4(),
                audience="subscriber",
                addressee=f"subscription:{sub_id}",
                channel="webhook",
                destination=url,
                language="none",
                subject=None,
                body=body,
                subscription_id=sub_id,
            )
            for sub_id, url in subscribers
        ]
    queued = await store.insert_deliveries(
        conn,
        event_id=envelope.id,
        event_type=envelope.type,
        correlation_id=envelope.correlationid,
        region=region,
        deliveries=deliveries,
        traceparent=tracing.current_traceparent(),
    )
    log.info(
        "notification.queued",
        audiences=[t.audience for t in told],
        queued=queued,
        webhooks=len(subscribers),
    )


async def _remember_contacts(conn: Connection, data: Event) -> None:
    if isinstance(data, ApplicationSubmittedV1 | ApplicationRejectedV1 | LicenseEvent):
        await store.upsert_provider_contact(
            conn,
            bin=data.bin,
            name=data.provider_name,
            region=data.region,
            email=data.contact.email,
            phone=data.contact.phone,
            language=str(data.contact.language),
        )
    elif isinstance(data, RecipientRegisteredV1 | RecipientUpdatedV1):
        # An update carries the whole snapshot: a guardian's new phone is the one used next.
        guardian = data.guardian
        await store.upsert_recipient_contact(
            conn,
            iin=data.iin,
            full_name=data.full_name,
            birth_date=data.birth_date,
            region=data.region,
            language=str(data.language),
            email=data.email,
            phone=data.phone,
            guardian_name=guardian.name if guardian else None,
            guardian_email=guardian.email if guardian else None,
            guardian_phone=guardian.phone if guardian else None,
        )


async def _addressees(conn: Connection, event_type: str, data: Event) -> list[Told]:
    audiences = domain.AUDIENCES.get(event_type, ())
    told: list[Told] = []
    if "provider" in audiences:
        provider = await _provider(conn, data)
        if provider is not None:
            told.append(provider)
    department = _departments.get(str(getattr(data, "region", "")))
    recipient_name = ""
    person: domain.Person | None = None
    if "recipient" in audiences and isinstance(data, PersonalNotice):
        told_person, person, recipient_name = await _person(conn, data, department)
        told.append(told_person)
    elif "recipient" in audiences and isinstance(data, ConfirmationRequestedV1):
        asked = await _confirmation_person(conn, data)
        if asked is not None:
            told.append(asked)
    if "department" in audiences:
        if department is None:
            log.warning("notification.no_department", region=getattr(data, "region", None))
        else:
            told.append(
                Told(
                    audience="department",
                    addressee=f"department:{department.region}",
                    language=domain.BOTH_LANGUAGES,
                    email=department.email,
                    phone=department.phone,
                    context={
                        "e": data,
                        "department": department,
                        "recipient_name": recipient_name,
                        # Whom the family's notice went to: whom the department calls.
                        "person": person,
                    },
                )
            )
    return told


async def _provider(conn: Connection, data: Event) -> Told | None:
    if isinstance(data, ApplicationSubmittedV1 | ApplicationRejectedV1 | LicenseEvent):
        bin_, name = data.bin, data.provider_name
        email, phone, lang = data.contact.email, data.contact.phone, str(data.contact.language)
    elif isinstance(data, InvoiceIssuedV1):
        book = await store.provider_contact(conn, data.provider_bin)
        bin_ = data.provider_bin
        name = data.provider_name or (book.name if book else bin_)
        if data.contact is not None:
            email, phone = data.contact.email, data.contact.phone
            lang = str(data.contact.language)
        elif book is not None:
            email, phone, lang = book.email, book.phone, book.language
        else:
            log.warning("notification.no_contact", bin=bin_)
            return None
    else:
        return None
    context: dict[str, object] = {"e": data, "provider_name": name}
    if isinstance(data, ApplicationRejectedV1):
        context["unmet"] = [f for f in data.findings if not f.met]
    return Told("provider", f"provider:{bin_}", lang, email, phone, context)


# Registry events that tell the recipient (or the guardian), each with the date it speaks of:
# enrollments, and the waiting list with its offers.
PersonalNotice: TypeAlias = (
    EnrollmentStartedV1
    | EnrollmentDisruptedV1
    | EnrollmentResumedV1
    | EnrollmentUnplacedV1
    | WaitingJoinedV1
    | OfferMadeV1
    | OfferAcceptedV1
    | OfferLapsedV1
)


def _notice_date(data: PersonalNotice) -> date:
    if isinstance(data, EnrollmentStartedV1 | OfferAcceptedV1):
        return data.start_date
    if isinstance(data, EnrollmentDisruptedV1):
        return data.disrupted_on
    if isinstance(data, EnrollmentResumedV1):
        return data.resumed_on
    if isinstance(data, WaitingJoinedV1):
        return data.asked_on
    if isinstance(data, OfferMadeV1):
        return data.made_on
    if isinstance(data, OfferLapsedV1):
        return data.lapsed_on
    return data.unplaced_on


async def _person(
    conn: Connection, data: PersonalNotice, department: Department | None
) -> tuple[Told, domain.Person, str]:
    """Whom a personal notice goes to, the person chosen and the recipient's name."""
    book = await store.recipient_contact(conn, data.iin)
    guardian = None
    if book is not None and book.guardian_name:
        guardian = domain.GuardianContact(
            book.guardian_name, book.guardian_email, book.guardian_phone
        )
    on = _notice_date(data)
    person = domain.choose_person(iin=data.iin, on=on, addressee=data.addressee, guardian=guardian)
    recipient_name = book.full_name if book is not None else None
    if recipient_name is None and person.audience == "recipient":
        recipient_name = person.name
    told = Told(
        audience=person.audience,
        addressee=f"{person.audience}:{data.iin}",
        language=person.language,
        email=person.email,
        phone=person.phone,
        # The department too: an offer is answered through it (its phone and email).
        context={
            "e": data,
            "person": person,
            "recipient_name": recipient_name or "",
            "department": department,
        },
    )
    return told, person, recipient_name or ""


async def _confirmation_person(conn: Connection, data: ConfirmationRequestedV1) -> Told | None:
    """Whom a month's confirmation is asked of: the contact book's recipient, or the guardian
    in place of a minor or unreachable one (the rule of enrollment notices)."""
    book = await store.recipient_contact(conn, data.iin)
    if book is None:
        log.warning("notification.no_contact", enrollment=data.enrollment_id)
        return None
    guardian = None
    if book.guardian_name:
        guardian = domain.GuardianContact(
            book.guardian_name, book.guardian_email, book.guardian_phone
        )
    addressee = Addressee(
        name=book.full_name, email=book.email, phone=book.phone, language=book.language
    )
    on = date.fromisoformat(f"{data.month}-01")
    person = domain.choose_person(iin=data.iin, on=on, addressee=addressee, guardian=guardian)
    return Told(
        audience=person.audience,
        addressee=f"{person.audience}:{data.iin}",
        language=person.language,
        email=person.email,
        phone=person.phone,
        context={
            "e": data,
            "person": person,
            "recipient_name": book.full_name,
            "department": _departments.get(data.region),
        },
    )


def _deliveries_for(event_type: str, told: Told) -> list[store.NewDelivery]:
    key = domain.template_key(event_type)
    try:
        if told.language == domain.BOTH_LANGUAGES:
            text = render_bilingual(key, told.audience, told.context)
        else:
            text = render(key, told.audience, told.language, told.context)
    except (jinja2.TemplateError, LookupError) as exc:
        # A missing template or variable cannot heal by retrying: dead-letter with the reason.
        raise PermanentError(f"template {key}.{told.audience}.{told.language}: {exc}") from exc
    out = []
    for channel, destination in domain.channels_of(
        email=told.email, phone=told.phone, audience=told.audience
    ):
        if channel == "sms" and not text.sms:
            continue
        out.append(
            store.NewDelivery(
                id=uuid.uuid4(),
                audience=told.audience,
                addressee=told.addressee,
                channel=channel,
                destination=destination,
                language=told.language,
                subject=text.subject if channel == "email" else None,
                body=text.body if channel == "email" else (text.sms or ""),
            )
        )
    return out


# delivery outcomes (called by the worker)


@dataclass(frozen=True)
class Attempt:
    """The outcome of one attempt to send one claimed delivery."""

    id: UUID
    event_id: str
    event_type: str
    correlation_id: str
    channel: str
    attempts_before: int
    error: str | None  # None: sent
    give_up: bool = False  # retrying cannot help (the subscription was deleted)


async def record_attempts(
    *,
    conn: Connection,
    attempts: list[Attempt],
    max_attempts: int,
    retry_base_seconds: float,
    retry_max_seconds: float,
) -> None:
    """Record a batch of attempts in one transaction; the last failed try makes a delivery dead
    and publishes `notification.delivery.failed.v1`."""
    now = datetime.now(UTC)
    sent = [a.id for a in attempts if a.error is None]
    failed = [a for a in attempts if a.error is not None]
    async with conn.transaction():
        if sent:
            await store.mark_sent(conn, sent, now)
        if not failed:
            return
        statuses, next_attempts = [], []
        for a in failed:
            number = a.attempts_before + 1
            dead = a.give_up or number >= max_attempts
            statuses.append("dead" if dead else "failed")
            next_attempts.append(
                now
                + domain.retry_delay(
                    number, base_seconds=retry_base_seconds, max_seconds=retry_max_seconds
                )
            )
        await store.mark_failed(
            conn,
            ids=[a.id for a in failed],
            statuses=statuses,
            next_attempts=next_attempts,
            # A gateway's error may echo the address it refused: kept masked, like logs.
            errors=[mask_pii(a.error or "")[:1000] for a in failed],
        )
        for a, status in zip(failed, statuses, strict=True):
            if status != "dead":
                continue
            with work_context(correlation_id=a.correlation_id, causation_id=a.event_id):
                await emit(
                    conn,
                    DeliveryFailedV1(
                        delivery_id=str(a.id),
                        event_id=a.event_id,
                        failed_event_type=a.event_type,
                        channel=a.channel,
                        attempts=a.attempts_before + 1,
                        last_error=mask_pii(a.error or "")[:1000],
                    ),
                    subject=str(a.id),
                )
            log.warning("delivery.dead", delivery_id=str(a.id), channel=a.channel, error=a.error)


# subscriptions


# What the delivery log's readers see of a delivery, and of a subscription.
DeliveryRow: TypeAlias = store.DeliveryRow
SubscriptionRow: TypeAlias = store.SubscriptionRow


async def list_deliveries(
    *,
    conn: Connection,
    event_id: str | None,
    status: str | None,
    channel: str | None,
    region: str | None,
    after_seq: int,
    limit: int,
) -> tuple[list[DeliveryRow], bool]:
    """A page of the delivery log after a position (a region's only, for a regional key), and
    whether more follow."""
    rows = await store.list_deliveries(
        conn,
        event_id=event_id,
        status=status,
        channel=channel,
        region=region,
        after_seq=after_seq,
        limit=limit + 1,
    )
    return rows[:limit], len(rows) > limit


def _refuse_subscription(
    *,
    callback_url: str,
    event_types: list[str],
    secret: str | None,
    allow_loopback: bool,
    may_read_personal: bool,
) -> None:
    """Refuse a subscription whose callback, event types or secret break a rule."""
    problem = domain.callback_url_problem(callback_url, allow_loopback=allow_loopback)
    if problem:
        raise NotificationError(problem, field="callback_url", kind=domain.CALLBACK_URL_REFUSED)
    for i, event_type in enumerate(event_types):
        field = f"event_types.{i}"
        if event_type in domain.SECRET_EVENT_TYPES:
            raise NotificationError(
                Texts(
                    f"{event_type} carries a person's single-use code: it is never sent to "
                    "webhooks",
                    f"{event_type} адамның бір реттік кодын тасиды: ол вебхуктарға ешқашан "
                    "жіберілмейді",
                    f"{event_type} несёт одноразовый код человека: он никогда не отправляется "
                    "вебхукам",
                ),
                field=field,
                kind=domain.EVENT_NOT_FOR_WEBHOOKS,
            )
        if event_type not in SUBSCRIBABLE:
            raise NotificationError(
                Texts(
                    f"unknown event type {event_type!r}",
                    f"белгісіз оқиға түрі {event_type!r}",
                    f"неизвестный тип события {event_type!r}",
                ),
                field=field,
            )
        if event_type in domain.PERSONAL_EVENT_TYPES and not may_read_personal:
            raise NotificationError(
                Texts(
                    f"{event_type} carries personal data: the key needs registry:read",
                    f"{event_type} жеке деректерді тасиды: кілтке registry:read қажет",
                    f"{event_type} содержит персональные данные: ключу нужен registry:read",
                ),
                field=field,
                kind=domain.PERSONAL_EVENTS_NEED_REGISTRY_READ,
            )
    _refuse_secret(secret)


def _refuse_secret(secret: str | None) -> None:
    if secret is not None and (problem := domain.webhook_secret_problem(secret)):
        raise NotificationError(problem, field="secret", kind=domain.WEBHOOK_SECRET_REFUSED)


async def create_subscription(
    *,
    conn: Connection,
    callback_url: str,
    event_types: list[str],
    secret: str | None,
    description: str | None,
    created_by: str,
    region: str | None,
    allow_loopback: bool,
    may_read_personal: bool,
) -> tuple[SubscriptionRow, str]:
    """Store a webhook subscription; returns it and its secret (shown this once only). A key
    that may not read personal data (`registry:read`) subscribes to no event that holds it."""
    _refuse_subscription(
        callback_url=callback_url,
        event_types=event_types,
        secret=secret,
        allow_loopback=allow_loopback,
        may_read_personal=may_read_personal,
    )
    secret = secret or domain.new_webhook_secret()
    async with conn.transaction():
        row = await store.insert_subscription(
            conn,
            id=uuid.uuid4(),
            callback_url=callback_url,
            event_types=sorted(set(event_types)),
            secret=secret,
            description=description,
            created_by=created_by,
            region=region,
        )
        await audit.record(
            conn,
            aggregate=Aggregate("subscription", str(row.id)),
            action="subscription.created",
            reason=", ".join(sorted(set(event_types))),
        )
    log.info("subscription.created", subscription_id=str(row.id), event_types=event_types)
    return row, secret


async def list_subscriptions(
    *, conn: Connection, after_seq: int, limit: int, region: str | None
) -> list[SubscriptionRow]:
    """Live subscriptions after a position, without their secrets; a region's only if given."""
    return await store.list_subscriptions(conn, after_seq=after_seq, limit=limit, region=region)


async def get_subscription(*, conn: Connection, subscription_id: UUID) -> SubscriptionRow | None:
    """A live subscription, without its secrets."""
    return await store.get_subscription(conn, subscription_id)


async def rotate_secret(
    *, conn: Connection, subscription_id: UUID, secret: str | None, previous_valid_seconds: float
) -> tuple[SubscriptionRow, str] | None:
    """Give a subscription a new secret; the old one keeps signing (both signatures are sent)
    for `previous_valid_seconds`, so the receiver can switch without losing a delivery."""
    _refuse_secret(secret)
    secret = secret or domain.new_webhook_secret()
    async with conn.transaction():
        row = await store.rotate_subscription_secret(
            conn, id=subscription_id, secret=secret, previous_valid_seconds=previous_valid_seconds
        )
        if row is None:
            return None
        await audit.record(
            conn,
            aggregate=Aggregate("subscription", str(subscription_id)),
            action="subscription.secret_rotated",
        )
    log.info("subscription.secret_rotated", subscription_id=str(subscription_id))
    return row, secret


async def delete_subscription(*, conn: Connection, subscription_id: UUID) -> bool:
    """End a subscription; deliveries already queued for it are not sent."""
    async with conn.transaction():
        deleted = await store.delete_subscription(conn, subscription_id)
        if deleted:
            await audit.record(
                conn,
                aggregate=Aggregate("subscription", str(subscription_id)),
                action="subscription.deleted",
            )
    if deleted:
        log.info("subscription.deleted", subscription_id=str(subscription_id))
    return deleted
