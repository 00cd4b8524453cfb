"""The outbox: nothing for a rollback, each row once with two relays, nothing lost to an outage."""

import asyncio
from collections import Counter
from datetime import date

import probe_service
import pytest
from harness import TcpProxy, event_probe, eventually, reset_service, running_service
from ssu_common import OutboxRelay, emit
from ssu_common.messaging import OutboxPublisher
from ssu_contracts import LicenseRevokedV1, make_bin

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
