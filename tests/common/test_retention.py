"""Retention: published outbox rows and old inbox ids are deleted by each service's periodic job;
unsent, parked and recent rows stay, and a redelivery inside the inbox window is still a
duplicate."""

import json
from datetime import date, timedelta

import asyncpg
import probe_service
import pytest
from harness import eventually, publish_raw, reset_service, running_service, test_dsn
from ssu_common import inbox, outbox
from ssu_contracts import RecipientRegisteredV1, make_event

ROUTING = "registry.recipient.registered.v1"
OUTBOX_RETENTION = timedelta(days=7)
INBOX_WINDOW = timedelta(days=45)


def registered(name: str) -> bytes:
    data = RecipientRegisteredV1(
        iin="791028302728",
        full_name=name,
        birth_date=date(1979, 10, 28),
        category="adult_disability",
        region="630000000",
        language="ru",
    )
    return make_event(data, source="/ssu/registry", subject="791028302728").to_bytes()


@pytest.fixture(autouse=True)
async def fresh() -> None:
    await reset_service("probe")


async def add_outbox_row(
    conn: asyncpg.Connection, subject: str, *, age: timedelta, state: str
) -> None:
    await conn.execute(
        "INSERT INTO outbox (event_id, event_type, subject, body, correlation_id, created_at,"
        " sent_at, parked_at) VALUES (gen_random_uuid(), 'licensing.license.revoked.v1', $1,"
        " '{}', 'c', now() - $2::interval,"
        " CASE WHEN $3 = 'sent' THEN now() - $2::interval END,"
        " CASE WHEN $3 = 'parked' THEN now() - $2::interval END)",
        subject,
        age,
        state,
    )


async def test_old_published_rows_and_inbox_ids_go_the_rest_stays() -> None:
    async with running_service(probe_service.build()):
        pass  # the database and its migrations, as the service leaves them
    conn = await asyncpg.connect(test_dsn("probe"))
    try:
        await add_outbox_row(conn, "sent 8 days ago", age=timedelta(days=8), state="sent")
        await add_outbox_row(conn, "sent 6 days ago", age=timedelta(days=6), state="sent")
        await add_outbox_row(conn, "unsent for 30 days", age=timedelta(days=30), state="unsent")
        await add_outbox_row(conn, "parked for 30 days", age=timedelta(days=30), state="parked")
        await conn.execute(
            "INSERT INTO inbox (event_id, event_type, received_at) VALUES"
            " ('00000000-0000-0000-0000-000000000046', 't', now() - interval '46 days'),"
            " ('00000000-0000-0000-0000-000000000044', 't', now() - interval '44 days')"
        )
        assert await outbox.prune(conn, older_than=OUTBOX_RETENTION, batch=1) == 1
        assert await inbox.prune(conn, older_than=INBOX_WINDOW, batch=1) == 1
        kept = await conn.fetch("SELECT subject FROM outbox ORDER BY id")
        assert [r["subject"] for r in kept] == [
            "sent 6 days ago",
            "unsent for 30 days",
            "parked for 30 days",
        ]
        ids = await conn.fetch("SELECT event_id::text FROM inbox")
        assert [r["event_id"] for r in ids] == ["00000000-0000-0000-0000-000000000044"]
    finally:
        await conn.close()


async def test_each_service_prunes_periodically() -> None:
    runtime = probe_service.build(
        outbox_retention_seconds=1.0, inbox_retention_seconds=1.0, retention_interval_seconds=0.3
    )
    async with running_service(runtime) as svc:
        await add_outbox_row_via_pool(svc.pool)
        body = registered("pruned later")
        await publish_raw(body, routing_key=ROUTING)

        async def effects() -> int:
            return int(await svc.pool.fetchval("SELECT count(*) FROM effects"))

        await eventually(effects)

        async def gone() -> bool:
            left = await svc.pool.fetchval(
                "SELECT (SELECT count(*) FROM outbox) + (SELECT count(*) FROM inbox)"
            )
            return left == 0

        await eventually(gone, timeout=10)


async def add_outbox_row_via_pool(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await add_outbox_row(conn, "sent a minute ago", age=timedelta(minutes=1), state="sent")


async def test_a_redelivery_inside_the_window_is_still_a_duplicate() -> None:
    async with running_service(probe_service.build()) as svc:

        async def effects(note: str) -> int:
            sql = "SELECT count(*) FROM effects WHERE note = $1"
            return int(await svc.pool.fetchval(sql, note))

        inside, outside = registered("inside"), registered("outside")
        for body in (inside, outside):
            await publish_raw(body, routing_key=ROUTING)
        await eventually(lambda: effects("inside"))
        await eventually(lambda: effects("outside"))
        # Received 44 and 46 days ago; the service's default window is 45 days.
        await svc.pool.execute(
            "UPDATE inbox SET received_at = now() - CASE WHEN event_id = $1::uuid"
            " THEN interval '44 days' ELSE interval '46 days' END",
            json.loads(inside)["id"],
        )
        assert await svc.runtime.prune() == (0, 1)
        for body in (inside, outside):
            await publish_raw(body, routing_key=ROUTING)

        async def outside_applied_again() -> bool:
            return await effects("outside") == 2

        # A copy later than the window is applied again: why the window must outlast any
        # redelivery. The copy inside it is still a duplicate.
        await eventually(outside_applied_again)
        assert await effects("inside") == 1
