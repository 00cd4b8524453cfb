"""A publish the broker does not confirm leaves its outbox row unsent, and the relay sends it
again once the broker accepts it: what a cluster node that dies mid-publish, or a queue
without a quorum, looks like to the relay."""

import uuid

import aio_pika
import probe_service
from harness import AMQP_URL, event_probe, eventually, reset_service, running_service
from test_outbox import revoked


async def test_a_nacked_publish_stays_unsent_and_is_sent_again() -> None:
    await reset_service("probe")
    connection = await aio_pika.connect(AMQP_URL)
    full = f"full-{uuid.uuid4()}"
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange("ssu.events", "topic", durable=True)
        # A queue that refuses every message: the broker answers the publish with a nack.
        # Exclusive: gone with this connection even when the test fails half-way.
        queue = await channel.declare_queue(
            full, exclusive=True, arguments={"x-max-length": 0, "x-overflow": "reject-publish"}
        )
        await queue.bind(exchange, routing_key="licensing.license.revoked.v1")
        async with running_service(probe_service.build()) as svc:
            async with svc.pool.acquire() as conn:
                event = await probe_service.write_thing_and_event(conn, "nacked", revoked(1))

            async def refused() -> bool:
                row = await svc.pool.fetchrow(
                    "SELECT sent_at, attempts, last_error FROM outbox WHERE event_id = $1",
                    uuid.UUID(event.id),
                )
                return row is not None and row["attempts"] >= 2 and row["sent_at"] is None

            await eventually(refused, timeout=20)
            error = await svc.pool.fetchval("SELECT last_error FROM outbox")
            assert "Nack" in error, error
            async with event_probe("licensing.license.revoked.v1") as probe:
                await queue.delete(if_unused=False, if_empty=False)
                arrived = await probe.wait_for(lambda e: e["id"] == event.id, timeout=30)
                assert arrived["subject"] == "nacked"

                async def sent() -> bool:
                    return bool(
                        await svc.pool.fetchval(
                            "SELECT sent_at IS NOT NULL FROM outbox WHERE event_id = $1",
                            uuid.UUID(event.id),
                        )
                    )

                await eventually(sent, timeout=10)
