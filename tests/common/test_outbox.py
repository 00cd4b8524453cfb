"""The outbox: nothing for a rollback, each row once with two relays, nothing lost to an outage."""

import asyncio
import uuid
from collections import Counter
from datetime import date

import aio_pika
import probe_service
import pytest
from harness import (
    AMQP_URL,
    TcpProxy,
    delete_queues,
    event_probe,
    eventually,
    reset_service,
    running_service,
)
from ssu_common import OutboxRelay, emit, outbox
from ssu_common.messaging import OutboxPublisher, declare_suite_topology
from ssu_contracts import DeliveryFailedV1, LicenseRevokedV1, make_bin

BIN = make_bin(date(2010, 1, 1), 1)


def revoked(seq: int) -> LicenseRevokedV1:
    return LicenseRevokedV1(
        license_number="SSU-63-2026-000001",
        bin=BIN,
        provider_name="Шапағат",
        legal_form="ngo",
        region="630000000",
        contact={"language": "kk"},
        subtypes=[{"form": "home", "category": "elderly"}],
        sites=[],
        status="revoked",
        seq=seq,
        effective_date=date(2026, 11, 26),
        reason="test",
    )


@pytest.fixture(autouse=True)
async def fresh() -> None:
    await reset_service("probe")


async def test_rolled_back_transaction_publishes_nothing() -> None:
    async with event_probe("licensing.#") as probe, running_service(probe_service.build()) as svc:
        async with svc.pool.acquire() as conn:
            with pytest.raises(RuntimeError):
                async with conn.transaction():
                    await emit(conn, revoked(1), subject="rolled-back")
                    raise RuntimeError("the state change failed")
            committed = await probe_service.write_thing_and_event(conn, "kept", revoked(2))
        await probe.wait_for(lambda e: e["id"] == committed.id)
        await probe.pull(wait=1.0)  # a relay cycle later, still nothing else
        assert [e["subject"] for e in probe.received] == ["kept"]
        assert await svc.pool.fetchval("SELECT count(*) FROM outbox") == 1


async def test_two_relays_publish_each_row_once() -> None:
    async with event_probe("licensing.#") as probe, running_service(probe_service.build()) as svc:
        second = OutboxRelay(
            pool=svc.pool,
            dsn=svc.runtime.settings.database_url,
            publish=OutboxPublisher(
                svc.runtime.broker,
                user_id=svc.runtime.settings.broker_user(),
                on_published=lambda: None,
            ),
            batch_size=50,
        )
        task = asyncio.create_task(second.run())
        try:
            async with svc.pool.acquire() as conn:
                for batch in range(10):
                    async with conn.transaction():
                        for i in range(100):
                            await emit(conn, revoked(batch * 100 + i + 1), subject="x")

            async def all_arrived() -> bool:
                await probe.pull()
                return len(probe.received) >= 1000

            await eventually(all_arrived, timeout=30)
            await probe.pull(wait=1.0)
        finally:
            second.stop()
            await task
        counts = Counter(e["id"] for e in probe.received)
        assert len(counts) == 1000
        assert max(counts.values()) == 1
        assert await svc.pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0


async def test_event_written_while_broker_unreachable_arrives_when_it_returns() -> None:
    proxy = TcpProxy()
    await proxy.start()
    runtime = probe_service.build(amqp_url=proxy.amqp_url)
    async with event_probe("licensing.#") as probe, running_service(runtime) as svc:
        await proxy.cut()
        async with svc.pool.acquire() as conn:
            env = await probe_service.write_thing_and_event(conn, "during-outage", revoked(7))
        await asyncio.sleep(2.0)
        assert await svc.pool.fetchval(
            "SELECT sent_at IS NULL FROM outbox WHERE event_id = $1", env.id
        )
        await probe.pull()
        assert probe.received == []
        await proxy.restore()
        got = await probe.wait_for(lambda e: e["id"] == env.id, timeout=30)
        assert got["data"]["seq"] == 7


def delivery_failed() -> DeliveryFailedV1:
    return DeliveryFailedV1(
        delivery_id="d-1",
        event_id=str(uuid.uuid4()),
        failed_event_type="licensing.license.issued.v1",
        channel="email",
        attempts=3,
        last_error="550 mailbox unavailable",
    )


async def test_an_unroutable_event_is_parked_with_its_reason_not_marked_sent() -> None:
    # No service consumes this type; the fault tests' consumer queue would, so it goes first.
    await delete_queues("faults_consumer.events")
    async with running_service(probe_service.build()) as svc:
        async with svc.pool.acquire() as conn:
            env = await probe_service.write_thing_and_event(conn, "p1", delivery_failed())

        async def parked() -> object:
            return await svc.pool.fetchrow(
                "SELECT sent_at, last_error FROM outbox WHERE event_id = $1 AND parked_at"
                " IS NOT NULL",
                env.id,
            )

        row = await eventually(parked)
        assert dict(row) == {
            "sent_at": None,
            "last_error": "unroutable: no queue is bound to notification.delivery.failed.v1",
        }
        async with svc.pool.acquire() as conn:
            st = await outbox.status(conn)
        assert (st.pending, st.parked, st.parked_types) == (
            0,
            1,
            ("notification.delivery.failed.v1",),
        )
        metrics = (await svc.client.get("/metrics")).text
        assert 'ssu_outbox_parked{service="probe"} 1.0' in metrics

        # Once a queue is bound to it, the operator hands it back and it goes out.
        async with event_probe(env.type) as probe:
            async with svc.pool.acquire() as conn:
                assert await outbox.retry_parked(conn) == 1
            await probe.wait_for(lambda e: e["id"] == env.id)
        sent = await svc.pool.fetchval("SELECT sent_at FROM outbox WHERE event_id = $1", env.id)
        assert sent is not None


async def test_an_event_published_before_its_consumer_ever_ran_waits_in_its_queue() -> None:
    await delete_queues("billing.events", "billing.events.dlq")  # billing has never run
    # The deployment's step before any service starts.
    await declare_suite_topology(AMQP_URL, delivery_limit=5)
    await reset_service("probe_licensing")
    async with running_service(probe_service.build(publishes_as="licensing")) as producer:
        async with producer.pool.acquire() as conn:
            env = await probe_service.write_thing_and_event(conn, "early", revoked(5))

        async def sent() -> object:
            sql = "SELECT sent_at FROM outbox WHERE event_id = $1"
            return await producer.pool.fetchval(sql, env.id)

        await eventually(sent)
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue("billing.events")
        waiting = await queue.get(fail=False, no_ack=True)
        assert waiting is not None and waiting.message_id == env.id
        assert waiting.user_id == "ssu-licensing"
