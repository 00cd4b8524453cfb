"""Retries with back-off kept in the database; dead after the last try, and an event says so."""

import uuid
from typing import Any

import pytest
import pytest_asyncio
from harness import event_probe, eventually
from notification_world import license_fields, new_bin, notification_world, publish
from ssu_contracts import LicenseIssuedV1
from ssu_notification import domain, store

pytestmark = pytest.mark.asyncio(loop_scope="session")

MAX_ATTEMPTS = 4


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world() -> Any:
    async with notification_world(max_attempts=MAX_ATTEMPTS, retry_base_seconds=0.1) as w:
        yield w


async def email_of(svc: Any, event_id: str, *status: str) -> dict[str, Any]:
    async def read() -> Any:
        return await svc.pool.fetchrow(
            "SELECT * FROM deliveries WHERE event_id = $1 AND channel = 'email'"
            " AND status = ANY($2::text[])",
            event_id,
            list(status),
        )

    return dict(await eventually(read, timeout=15))


async def test_smtp_refusing_twice_is_retried_and_sent(world: Any) -> None:
    svc, sinks = world
    handler = sinks.mail_handler
    first = handler.attempts
    handler.refuse_first = first + 2
    event = await publish(LicenseIssuedV1(**license_fields(new_bin(), phone=None)))
    sent = await email_of(svc, event.id, "sent")
    assert sent["attempts"] == 3
    assert sent["last_error"] is None
    assert len([m for m in sinks.received.mail if m["event_id"] == event.id]) == 1
    # Two refusals, then acceptance; the waits grow: base, then twice the base.
    tries = handler.attempted_at[first : first + 3]
    assert len(tries) == 3
    assert tries[1] - tries[0] >= 0.1 and tries[2] - tries[1] >= 0.2, tries


async def test_a_failed_attempt_is_kept_with_its_next_time(world: Any) -> None:
    svc, sinks = world
    sinks.mail_handler.refuse_always = True
    try:
        event = await publish(LicenseIssuedV1(**license_fields(new_bin(), phone=None)))
        failed = await email_of(svc, event.id, "failed", "dead")
    finally:
        sinks.mail_handler.refuse_always = False
    assert failed["attempts"] >= 1
    assert failed["last_error"].startswith("smtp: SMTPDataError: (451, ")
    if failed["status"] == "failed":
        assert failed["next_attempt_at"] > failed["updated_at"]


async def test_smtp_never_accepting_makes_the_delivery_dead_and_says_so(world: Any) -> None:
    svc, sinks = world
    sinks.mail_handler.refuse_always = True
    try:
        async with event_probe("notification.#") as probe:
            event = await publish(LicenseIssuedV1(**license_fields(new_bin(), phone=None)))
            dead = await email_of(svc, event.id, "dead")
            failed = await probe.wait_for(lambda e: e["data"]["event_id"] == event.id)
    finally:
        sinks.mail_handler.refuse_always = False
    assert dead["attempts"] == MAX_ATTEMPTS
    assert dead["last_error"].startswith("smtp: SMTPDataError: (451, ")
    assert failed["type"] == "notification.delivery.failed.v1"
    assert failed["source"] == "/ssu/notification"
    assert failed["subject"] == str(dead["id"])
    assert failed["causationid"] == event.id
    assert failed["correlationid"] == event.correlationid
    assert failed["data"] == {
        "delivery_id": str(dead["id"]),
        "event_id": event.id,
        "event_type": "licensing.license.issued.v1",
        "channel": "email",
        "attempts": MAX_ATTEMPTS,
        "last_error": dead["last_error"],
    }
    assert not [m for m in sinks.received.mail if m["event_id"] == event.id]


async def test_a_retry_left_by_a_previous_process_is_resumed(world: Any) -> None:
    svc, sinks = world
    delivery_id, event_id = uuid.uuid4(), uuid.uuid4()
    # What a process that died between attempts leaves behind: a failed row, due now.
    async with svc.pool.acquire() as conn, conn.transaction():
        await _leave(
            conn,
            event_id,
            "licensing.license.issued.v1",
            [
                store.NewDelivery(
                    id=delivery_id,
                    audience="provider",
                    addressee="provider:940140000385",
                    channel="email",
                    destination="left@example.kz",
                    language="ru",
                    subject="Тема",
                    body="Текст",
                )
            ],
        )
        await conn.execute(
            "UPDATE deliveries SET status = 'failed', attempts = 2, last_error = 'smtp: timeout'"
            " WHERE id = $1",
            delivery_id,
        )
    sent = await email_of(svc, str(event_id), "sent")
    assert sent["attempts"] == 3
    mail = [m for m in sinks.received.mail if m["event_id"] == str(event_id)]
    assert [(m["to"], m["subject"], m["body"]) for m in mail] == [
        (["left@example.kz"], "Тема", "Текст")
    ]


async def test_a_webhook_for_a_deleted_subscription_is_dead_at_once(world: Any) -> None:
    svc, _ = world
    subscription_id, event_id = uuid.uuid4(), uuid.uuid4()
    async with svc.pool.acquire() as conn:
        await store.insert_subscription(
            conn,
            id=subscription_id,
            callback_url="https://gone.example.kz/h",
            event_types=["billing.run.completed.v1"],
            secret=domain.new_webhook_secret(),
            description=None,
            created_by="test",
            region=None,
        )
        await store.delete_subscription(conn, subscription_id)
    async with event_probe("notification.#") as probe, svc.pool.acquire() as conn:
        await _leave(
            conn,
            event_id,
            "billing.run.completed.v1",
            [
                store.NewDelivery(
                    id=uuid.uuid4(),
                    audience="subscriber",
                    addressee=f"subscription:{subscription_id}",
                    channel="webhook",
                    destination="https://gone.example.kz/h",
                    language="none",
                    subject=None,
                    body="{}",
                    subscription_id=subscription_id,
                )
            ],
        )
        failed = await probe.wait_for(lambda e: e["data"]["event_id"] == str(event_id))
    dead = await svc.pool.fetchrow("SELECT * FROM deliveries WHERE event_id = $1", event_id)
    assert (dead["status"], dead["attempts"]) == ("dead", 1)
    assert failed["data"]["last_error"] == "webhook: the subscription was deleted"
    assert failed["data"]["channel"] == "webhook"


async def _leave(conn: Any, event_id: uuid.UUID, event_type: str, rows: list[Any]) -> None:
    """Queue deliveries as the handler does (sealed)."""
    await store.insert_deliveries(
        conn,
        event_id=str(event_id),
        event_type=event_type,
        correlation_id="c",
        region=None,
        deliveries=rows,
    )
