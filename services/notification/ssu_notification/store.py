"""All SQL of the notification service."""

from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

import asyncpg
from ssu_common import Connection, FieldCipher, GaugeRows, SealedTable

# Personal fields are sealed (ssu_common.crypto); `use_cipher` gives the service's keys.
SEALED = (
    SealedTable("provider_contacts", ("bin", "text"), ("email", "phone")),
    SealedTable(
        "recipient_contacts",
        ("iin_index", "bytea"),
        (
            "iin",
            "full_name",
            "birth_date",
            "email",
            "phone",
            "guardian_name",
            "guardian_email",
            "guardian_phone",
        ),
        {"iin_index": "iin"},
    ),
    SealedTable(
        "deliveries",
        ("id", "uuid"),
        ("addressee", "destination", "subject", "body"),
        {"addressee_index": "addressee"},
    ),
    SealedTable(
        "subscriptions",
        ("id", "uuid"),
        ("secret", "previous_secret"),
        same_as={"previous_secret": "secret"},
    ),
)
_cipher: list[FieldCipher] = []


def use_cipher(cipher: FieldCipher) -> None:
    _cipher[:] = [cipher]


def _c() -> FieldCipher:
    if not _cipher:
        raise RuntimeError("notification store used before use_cipher()")
    return _cipher[0]


def _seal(table: str, column: str, value: str | None) -> bytes | None:
    del table  # tokens are bound to the field's name, the same in every table
    return _c().seal(value, column=column)


def _open(table: str, column: str, token: bytes | None) -> str | None:
    del table
    return _c().open(token, column=column)


def _opened_str(table: str, column: str, token: bytes | None) -> str:
    """A sealed field the schema holds NOT NULL."""
    value = _open(table, column, token)
    assert value is not None
    return value


# contact book


async def upsert_provider_contact(
    conn: Connection,
    *,
    bin: str,
    name: str,
    region: str,
    email: str | None,
    phone: str | None,
    language: str,
) -> None:
    await conn.execute(
        "INSERT INTO provider_contacts (bin, name, region, email, phone, language)"
        " VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT (bin) DO UPDATE SET name = EXCLUDED.name, region = EXCLUDED.region,"
        " email = EXCLUDED.email, phone = EXCLUDED.phone, language = EXCLUDED.language,"
        " updated_at = now()",
        bin,
        name,
        region,
        _seal("provider_contacts", "email", email),
        _seal("provider_contacts", "phone", phone),
        language,
    )


@dataclass(frozen=True)
class ProviderContact:
    """A provider of the contact book, its contacts opened."""

    bin: str
    name: str
    region: str
    email: str | None
    phone: str | None
    language: str


async def provider_contact(conn: Connection, bin: str) -> ProviderContact | None:
    row = await conn.fetchrow(
        "SELECT bin, name, region, email, phone, language FROM provider_contacts WHERE bin = $1",
        bin,
    )
    if row is None:
        return None
    t = "provider_contacts"
    return ProviderContact(
        bin=row["bin"],
        name=row["name"],
        region=row["region"],
        email=_open(t, "email", row["email"]),
        phone=_open(t, "phone", row["phone"]),
        language=row["language"],
    )


async def upsert_recipient_contact(
    conn: Connection,
    *,
    iin: str,
    full_name: str,
    birth_date: date,
    region: str,
    language: str,
    email: str | None,
    phone: str | None,
    guardian_name: str | None,
    guardian_email: str | None,
    guardian_phone: str | None,
) -> None:
    t = "recipient_contacts"
    await conn.execute(
        "INSERT INTO recipient_contacts (iin, full_name, birth_date, region, language, email,"
        " phone, guardian_name, guardian_email, guardian_phone, iin_index)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        " ON CONFLICT (iin_index) DO UPDATE SET iin = EXCLUDED.iin,"
        " full_name = EXCLUDED.full_name,"
        " birth_date = EXCLUDED.birth_date, region = EXCLUDED.region,"
        " language = EXCLUDED.language, email = EXCLUDED.email, phone = EXCLUDED.phone,"
        " guardian_name = EXCLUDED.guardian_name, guardian_email = EXCLUDED.guardian_email,"
        " guardian_phone = EXCLUDED.guardian_phone, updated_at = now()",
        _seal(t, "iin", iin),
        _seal(t, "full_name", full_name),
        _c().seal_date(birth_date, column="birth_date"),
        region,
        language,
        _seal(t, "email", email),
        _seal(t, "phone", phone),
        _seal(t, "guardian_name", guardian_name),
        _seal(t, "guardian_email", guardian_email),
        _seal(t, "guardian_phone", guardian_phone),
        _c().blind_index(iin),
    )


@dataclass(frozen=True)
class RecipientContact:
    """A recipient of the contact book, its personal fields opened."""

    iin: str
    full_name: str
    email: str | None
    phone: str | None
    language: str
    guardian_name: str | None
    guardian_email: str | None
    guardian_phone: str | None


async def recipient_contact(conn: Connection, iin: str) -> RecipientContact | None:
    row = await conn.fetchrow(
        "SELECT iin, full_name, email, phone, language, guardian_name, guardian_email,"
        " guardian_phone FROM recipient_contacts WHERE iin_index = $1",
        _c().blind_index(iin),
    )
    if row is None:
        return None
    t = "recipient_contacts"
    return RecipientContact(
        iin=_opened_str(t, "iin", row["iin"]),
        full_name=_opened_str(t, "full_name", row["full_name"]),
        email=_open(t, "email", row["email"]),
        phone=_open(t, "phone", row["phone"]),
        language=row["language"],
        guardian_name=_open(t, "guardian_name", row["guardian_name"]),
        guardian_email=_open(t, "guardian_email", row["guardian_email"]),
        guardian_phone=_open(t, "guardian_phone", row["guardian_phone"]),
    )


# deliveries


@dataclass(frozen=True)
class NewDelivery:
    id: UUID
    audience: str
    addressee: str
    channel: str
    destination: str
    language: str
    subject: str | None
    body: str
    subscription_id: UUID | None = None


async def live_subscriptions_for(
    conn: Connection, *, event_type: str, region: str | None
) -> list[tuple[UUID, str]]:
    """(id, callback URL) of live subscriptions to an event type; a regional subscription
    gets its region's events only."""
    rows = await conn.fetch(
        "SELECT id, callback_url FROM subscriptions"
        " WHERE deleted_at IS NULL AND $1 = ANY (event_types)"
        " AND (region IS NULL OR region = $2) ORDER BY seq",
        event_type,
        region,
    )
    return [(r["id"], r["callback_url"]) for r in rows]


async def insert_deliveries(
    conn: Connection,
    *,
    event_id: str,
    event_type: str,
    correlation_id: str,
    region: str | None,
    deliveries: list[NewDelivery],
    traceparent: str | None = None,
) -> int:
    """Queue an event's deliveries in one statement; rows already logged for the event (same
    addressee and channel) are skipped. Returns how many were queued."""
    t = "deliveries"
    c = _c()
    queued = await conn.fetchval(
        "WITH queued AS ("
        " INSERT INTO deliveries (id, event_id, event_type, correlation_id, region, audience,"
        " addressee, channel, destination, language, subject, body, subscription_id,"
        " addressee_index, traceparent)"
        " SELECT d.id, $1::uuid, $2, $3, $4, d.audience, d.addressee, d.channel, d.destination,"
        " d.language, d.subject, d.body, d.subscription_id, d.addressee_index, $15"
        " FROM unnest($5::uuid[], $6::text[], $7::bytea[], $8::text[], $9::bytea[], $10::text[],"
        " $11::bytea[], $12::bytea[], $13::uuid[], $14::bytea[])"
        " AS d(id, audience, addressee, channel, destination, language, subject, body,"
        " subscription_id, addressee_index)"
        " ON CONFLICT (event_id, addressee_index, channel) DO NOTHING RETURNING 1)"
        " SELECT count(*) FROM queued",
        event_id,
        event_type,
        correlation_id,
        region,
        [d.id for d in deliveries],
        [d.audience for d in deliveries],
        [_seal(t, "addressee", d.addressee) for d in deliveries],
        [d.channel for d in deliveries],
        [_seal(t, "destination", d.destination) for d in deliveries],
        [d.language for d in deliveries],
        [_seal(t, "subject", d.subject) for d in deliveries],
        [_seal(t, "body", d.body) for d in deliveries],
        [d.subscription_id for d in deliveries],
        [c.blind_index(d.addressee) for d in deliveries],
        traceparent,
    )
    return int(queued)


DELIVERY_COLUMNS = (
    "id, seq, event_id::text AS event_id, event_type, correlation_id, region, audience, addressee,"
    " channel, destination, language, subject, body, subscription_id, status, attempts,"
    " next_attempt_at, last_error, created_at, updated_at, sent_at"
)


@dataclass(frozen=True)
class DeliveryRow:
    """A delivery of the log, its personal fields opened."""

    id: UUID
    seq: int
    event_id: str
    event_type: str
    correlation_id: str
    region: str | None
    audience: str
    addressee: str
    channel: str
    destination: str
    language: str
    subject: str | None
    body: str
    subscription_id: UUID | None
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None


async def list_deliveries(
    conn: Connection,
    *,
    event_id: str | None,
    status: str | None,
    channel: str | None,
    region: str | None,
    after_seq: int,
    limit: int,
) -> list[DeliveryRow]:
    """Deliveries matching the filters, in the order they were queued, after a position."""
    rows = await conn.fetch(
        f"SELECT {DELIVERY_COLUMNS} FROM deliveries"  # noqa: S608 - constant column list
        " WHERE ($1::uuid IS NULL OR event_id = $1::uuid)"
        " AND ($2::text IS NULL OR status = $2)"
        " AND ($3::text IS NULL OR channel = $3)"
        " AND ($4::text IS NULL OR region = $4)"
        " AND seq > $5 ORDER BY seq LIMIT $6",
        event_id,
        status,
        channel,
        region,
        after_seq,
        limit,
    )
    t = "deliveries"
    return [
        DeliveryRow(
            id=r["id"],
            seq=r["seq"],
            event_id=r["event_id"],
            event_type=r["event_type"],
            correlation_id=r["correlation_id"],
            region=r["region"],
            audience=r["audience"],
            addressee=_opened_str(t, "addressee", r["addressee"]),
            channel=r["channel"],
            destination=_opened_str(t, "destination", r["destination"]),
            language=r["language"],
            subject=_open(t, "subject", r["subject"]),
            body=_opened_str(t, "body", r["body"]),
            subscription_id=r["subscription_id"],
            status=r["status"],
            attempts=r["attempts"],
            next_attempt_at=r["next_attempt_at"],
            last_error=r["last_error"],
            created_at=r["created_at"],
            updated_at=r["updated_at"],
            sent_at=r["sent_at"],
        )
        for r in rows
    ]


@dataclass(frozen=True)
class DueDelivery:
    """A delivery claimed for sending, its personal fields opened."""

    id: UUID
    event_id: str
    event_type: str
    correlation_id: str
    channel: str
    destination: str
    subject: str | None
    body: str
    subscription_id: UUID | None
    attempts: int
    traceparent: str | None


async def claim_due_deliveries(
    conn: Connection, *, limit: int, lease_seconds: float
) -> list[DueDelivery]:
    """Take due deliveries for sending: their next attempt moves past the lease, so a worker
    that dies mid-send leaves them to be retried; SKIP LOCKED lets replicas share the work."""
    rows = await conn.fetch(
        "UPDATE deliveries d SET next_attempt_at = now() + make_interval(secs => $2),"
        " updated_at = now()"
        " FROM (SELECT id FROM deliveries WHERE status IN ('queued', 'failed')"
        "   AND next_attempt_at <= now() ORDER BY next_attempt_at, seq LIMIT $1"
        "   FOR UPDATE SKIP LOCKED) due"
        " WHERE d.id = due.id"
        " RETURNING d.id, d.event_id::text AS event_id, d.event_type, d.correlation_id,"
        " d.channel, d.destination, d.subject, d.body, d.subscription_id, d.attempts,"
        " d.traceparent",
        limit,
        lease_seconds,
    )
    t = "deliveries"
    return [
        DueDelivery(
            id=r["id"],
            event_id=r["event_id"],
            event_type=r["event_type"],
            correlation_id=r["correlation_id"],
            channel=r["channel"],
            destination=_opened_str(t, "destination", r["destination"]),
            subject=_open(t, "subject", r["subject"]),
            body=_opened_str(t, "body", r["body"]),
            subscription_id=r["subscription_id"],
            attempts=r["attempts"],
            traceparent=r["traceparent"],
        )
        for r in rows
    ]


async def subscription_secrets(conn: Connection, ids: list[UUID]) -> dict[UUID, list[str]]:
    """The secrets that sign a subscription's deliveries now: the current one and, during a
    rotation, the previous one until it expires."""
    rows = await conn.fetch(
        "SELECT id, secret, CASE WHEN previous_expires_at > now() THEN previous_secret END"
        " AS previous_secret"
        " FROM subscriptions WHERE id = ANY ($1::uuid[]) AND deleted_at IS NULL",
        ids,
    )
    out: dict[UUID, list[str]] = {}
    for r in rows:
        current = _open("subscriptions", "secret", r["secret"])
        previous = _open("subscriptions", "secret", r["previous_secret"])
        out[r["id"]] = [s for s in (current, previous) if s]
    return out


async def mark_sent(conn: Connection, ids: list[UUID], at: datetime) -> None:
    await conn.execute(
        "UPDATE deliveries SET status = 'sent', attempts = attempts + 1, sent_at = $2,"
        " last_error = NULL, updated_at = $2 WHERE id = ANY ($1::uuid[])",
        ids,
        at,
    )


async def mark_failed(
    conn: Connection,
    *,
    ids: list[UUID],
    statuses: list[str],
    next_attempts: list[datetime],
    errors: list[str],
) -> None:
    """Record failed attempts: `failed` with the next try's time, or `dead`."""
    await conn.execute(
        "UPDATE deliveries d SET status = f.status, attempts = d.attempts + 1,"
        " next_attempt_at = f.next_attempt_at, last_error = f.error, updated_at = now()"
        " FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::text[])"
        " AS f(id, status, next_attempt_at, error) WHERE d.id = f.id",
        ids,
        statuses,
        next_attempts,
        errors,
    )


async def deliveries_by_channel_and_status(conn: Connection) -> GaugeRows:
    """Rows of the `ssu_deliveries` gauge."""
    rows = await conn.fetch(
        "SELECT channel, status, count(*) AS n FROM deliveries GROUP BY channel, status"
    )
    return [({"channel": r["channel"], "status": r["status"]}, float(r["n"])) for r in rows]


# subscriptions

SUBSCRIPTION_COLUMNS = (
    "seq, id, callback_url, event_types, description, created_by, created_at, region,"
    " previous_expires_at"
)


@dataclass(frozen=True)
class SubscriptionRow:
    """A webhook subscription, without its secrets."""

    seq: int
    id: UUID
    callback_url: str
    event_types: list[str]
    description: str | None
    created_by: str
    created_at: datetime
    region: str | None
    previous_expires_at: datetime | None


def _subscription(row: asyncpg.Record) -> SubscriptionRow:
    return SubscriptionRow(
        seq=row["seq"],
        id=row["id"],
        callback_url=row["callback_url"],
        event_types=list(row["event_types"]),
        description=row["description"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        region=row["region"],
        previous_expires_at=row["previous_expires_at"],
    )


async def insert_subscription(
    conn: Connection,
    *,
    id: UUID,
    callback_url: str,
    event_types: list[str],
    secret: str,
    description: str | None,
    created_by: str,
    region: str | None,
) -> SubscriptionRow:
    row = await conn.fetchrow(
        "INSERT INTO subscriptions (id, callback_url, event_types, secret, description,"  # noqa: S608
        " created_by, region) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        f" RETURNING {SUBSCRIPTION_COLUMNS}",
        id,
        callback_url,
        event_types,
        _seal("subscriptions", "secret", secret),
        description,
        created_by,
        region,
    )
    assert row is not None
    return _subscription(row)


async def list_subscriptions(
    conn: Connection, *, after_seq: int, limit: int, region: str | None
) -> list[SubscriptionRow]:
    """Live subscriptions after a position; with `region`, that region's only."""
    rows = await conn.fetch(
        f"SELECT {SUBSCRIPTION_COLUMNS}"  # noqa: S608 - constant column list
        " FROM subscriptions WHERE deleted_at IS NULL AND seq > $1"
        " AND ($3::text IS NULL OR region = $3) ORDER BY seq LIMIT $2",
        after_seq,
        limit,
        region,
    )
    return [_subscription(r) for r in rows]


async def get_subscription(conn: Connection, id: UUID) -> SubscriptionRow | None:
    row = await conn.fetchrow(
        f"SELECT {SUBSCRIPTION_COLUMNS}"  # noqa: S608 - constant column list
        " FROM subscriptions WHERE id = $1 AND deleted_at IS NULL",
        id,
    )
    return _subscription(row) if row is not None else None


async def rotate_subscription_secret(
    conn: Connection, *, id: UUID, secret: str, previous_valid_seconds: float
) -> SubscriptionRow | None:
    """The new secret signs from now on; the current one becomes the previous and keeps
    signing for `previous_valid_seconds`."""
    row = await conn.fetchrow(
        "UPDATE subscriptions SET previous_secret = secret,"  # noqa: S608
        " previous_expires_at = now() + make_interval(secs => $3), secret = $2"
        " WHERE id = $1 AND deleted_at IS NULL"
        f" RETURNING {SUBSCRIPTION_COLUMNS}",
        id,
        _seal("subscriptions", "secret", secret),
        previous_valid_seconds,
    )
    return _subscription(row) if row is not None else None


async def delete_subscription(conn: Connection, id: UUID) -> bool:
    row = await conn.fetchval(
        "UPDATE subscriptions SET deleted_at = now() WHERE id = $1 AND deleted_at IS NULL"
        " RETURNING true",
        id,
    )
    return bool(row)
