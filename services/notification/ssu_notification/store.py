"""All SQL of the notification service."""

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

import asyncpg
from ssu_common import Connection, GaugeRows

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
        email,
        phone,
        language,
    )


async def provider_contact(conn: Connection, bin: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT bin, name, region, email, phone, language FROM provider_contacts WHERE bin = $1",
        bin,
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
    await conn.execute(
        "INSERT INTO recipient_contacts (iin, full_name, birth_date, region, language, email,"
        " phone, guardian_name, guardian_email, guardian_phone)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        " ON CONFLICT (iin) DO UPDATE SET full_name = EXCLUDED.full_name,"
        " birth_date = EXCLUDED.birth_date, region = EXCLUDED.region,"
        " language = EXCLUDED.language, email = EXCLUDED.email, phone = EXCLUDED.phone,"
        " guardian_name = EXCLUDED.guardian_name, guardian_email = EXCLUDED.guardian_email,"
        " guardian_phone = EXCLUDED.guardian_phone, updated_at = now()",
        iin,
        full_name,
        birth_date,
        region,
        language,
        email,
        phone,
        guardian_name,
        guardian_email,
        guardian_phone,
    )


async def recipient_contact(conn: Connection, iin: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT iin, full_name, guardian_name, guardian_email, guardian_phone"
        " FROM recipient_contacts WHERE iin = $1",
        iin,
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


async def insert_deliveries(
    conn: Connection,
    *,
    event_id: str,
    event_type: str,
    correlation_id: str,
    region: str | None,
    deliveries: list[NewDelivery],
    envelope: str,
    traceparent: str | None = None,
) -> tuple[int, int]:
    """Queue an event's notices and, for every live subscription to its type, a webhook
    delivery of the envelope, in one statement; rows already logged for the event are skipped.
    Returns (notices, webhooks) queued."""
    row = await conn.fetchrow(
        "WITH notices AS ("
        " INSERT INTO deliveries (id, event_id, event_type, correlation_id, region, audience,"
        " addressee, channel, destination, language, subject, body, traceparent)"
        " SELECT d.id, $1::uuid, $2, $3, $4, d.audience, d.addressee, d.channel, d.destination,"
        " d.language, d.subject, d.body, $14"
        " FROM unnest($5::uuid[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],"
        " $11::text[], $12::text[])"
        " AS d(id, audience, addressee, channel, destination, language, subject, body)"
        " ON CONFLICT (event_id, addressee, channel) DO NOTHING RETURNING 1),"
        " hooks AS ("
        " INSERT INTO deliveries (id, event_id, event_type, correlation_id, region, audience,"
        " addressee, channel, destination, language, body, subscription_id, traceparent)"
        " SELECT gen_random_uuid(), $1::uuid, $2, $3, $4, 'subscriber', 'subscription:' || s.id,"
        " 'webhook', s.callback_url, 'none', $13, s.id, $14"
        " FROM subscriptions s WHERE s.deleted_at IS NULL AND $2 = ANY (s.event_types)"
        " ON CONFLICT (event_id, addressee, channel) DO NOTHING RETURNING 1)"
        " SELECT (SELECT count(*) FROM notices) AS notices, (SELECT count(*) FROM hooks) AS hooks",
        event_id,
        event_type,
        correlation_id,
        region,
        [d.id for d in deliveries],
        [d.audience for d in deliveries],
        [d.addressee for d in deliveries],
        [d.channel for d in deliveries],
        [d.destination for d in deliveries],
        [d.language for d in deliveries],
        [d.subject for d in deliveries],
        [d.body for d in deliveries],
        envelope,
        traceparent,
    )
    assert row is not None
    return int(row["notices"]), int(row["hooks"])


DELIVERY_COLUMNS = (
    "id, seq, event_id::text AS event_id, event_type, correlation_id, region, audience, addressee,"
    " channel, destination, language, subject, body, subscription_id, status, attempts,"
    " next_attempt_at, last_error, created_at, updated_at, sent_at"
)


async def list_deliveries(
    conn: Connection,
    *,
    event_id: str | None,
    status: str | None,
    channel: str | None,
    region: str | None,
    after_seq: int,
    limit: int,
) -> list[asyncpg.Record]:
    return await conn.fetch(
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


async def claim_due_deliveries(
    conn: Connection, *, limit: int, lease_seconds: float
) -> list[asyncpg.Record]:
    """Take due deliveries for sending: their next attempt moves past the lease, so a worker
    that dies mid-send leaves them to be retried; SKIP LOCKED lets replicas share the work."""
    return await conn.fetch(
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


async def subscription_secrets(conn: Connection, ids: list[UUID]) -> dict[UUID, str]:
    rows = await conn.fetch(
        "SELECT id, secret FROM subscriptions WHERE id = ANY ($1::uuid[]) AND deleted_at IS NULL",
        ids,
    )
    return {r["id"]: r["secret"] for r in rows}


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


async def insert_subscription(
    conn: Connection,
    *,
    id: UUID,
    callback_url: str,
    event_types: list[str],
    secret: str,
    description: str | None,
    created_by: str,
) -> asyncpg.Record:
    row = await conn.fetchrow(
        "INSERT INTO subscriptions (id, callback_url, event_types, secret, description,"
        " created_by) VALUES ($1, $2, $3, $4, $5, $6)"
        " RETURNING id, callback_url, event_types, description, created_by, created_at",
        id,
        callback_url,
        event_types,
        secret,
        description,
        created_by,
    )
    assert row is not None
    return row


async def list_subscriptions(
    conn: Connection, *, after_seq: int, limit: int
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT seq, id, callback_url, event_types, description, created_by, created_at"
        " FROM subscriptions WHERE deleted_at IS NULL AND seq > $1 ORDER BY seq LIMIT $2",
        after_seq,
        limit,
    )


async def get_subscription(conn: Connection, id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, callback_url, event_types, description, created_by, created_at"
        " FROM subscriptions WHERE id = $1 AND deleted_at IS NULL",
        id,
    )


async def delete_subscription(conn: Connection, id: UUID) -> bool:
    row = await conn.fetchval(
        "UPDATE subscriptions SET deleted_at = now() WHERE id = $1 AND deleted_at IS NULL"
        " RETURNING true",
        id,
    )
    return bool(row)


def record(row: asyncpg.Record) -> dict[str, Any]:
    return dict(row.items())
