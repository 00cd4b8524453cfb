"""The reliable event path under faults: outbox → relay → RabbitMQ → consumer with inbox.

Each test runs the pair (tests/faults/pair_service.py) as two real processes with their own
databases, sends a paced stream of 2,400 events, injects one fault mid-stream and counts at
the end: events in the producer's outbox without an effect (lost) and events with more than
one effect row (duplicated). Both must be 0. Run with `-s` to see the counts.
"""

import asyncio
import contextlib
import os
import time
from pathlib import Path

import asyncpg
import pytest
from fault_world import (
    CONSUMER,
    PRODUCER,
    Counts,
    Stream,
    report,
    run_command,
    running_pair,
    settle,
)
from harness import AMQP_URL, eventually, publish_raw, read_dlq, test_dsn
from pair_service import EVENT_TYPE
from ssu_common import REASON_HEADER

pytestmark = [pytest.mark.faults, pytest.mark.timeout(120)]

TOTAL = 2400
PG_CLUSTER = os.environ.get("SSU_TEST_PG_CLUSTER") or (
    sorted(os.listdir("/etc/postgresql"))[-1] if os.path.isdir("/etc/postgresql") else "15"
)


def assert_exact(counts: Counts) -> None:
    assert counts.sent == TOTAL
    assert counts.unsent == 0
    assert counts.lost == 0
    assert counts.duplicated == 0
    assert counts.applied == TOTAL
    assert counts.seqs == TOTAL


async def test_rabbitmq_stopped_and_started_mid_stream(tmp_path: Path) -> None:
    async with running_pair(tmp_path) as pair:
        stream = Stream(pair.producer.url, total=TOTAL)
        task = asyncio.create_task(stream.run())
        try:
            await stream.reached(TOTAL // 3)
            stopped = await run_command("rabbitmqctl", "stop_app")
            assert stopped.returncode == 0, stopped.stderr
            await asyncio.sleep(3.0)
        finally:
            started = await run_command("rabbitmqctl", "start_app")
            await run_command("rabbitmqctl", "await_startup")
        assert started.returncode == 0, started.stderr
        await wait_amqp()
        await task
        counts = await settle(TOTAL, timeout=60)
        report("rabbitmq restart", counts)
        assert_exact(counts)


async def test_consumer_killed_mid_stream_and_restarted(tmp_path: Path) -> None:
    async with running_pair(tmp_path) as pair:
        stream = Stream(pair.producer.url, total=TOTAL)
        task = asyncio.create_task(stream.run())
        await stream.reached(TOTAL // 3)
        await pair.restart_consumer(kill=True)
        await task
        counts = await settle(TOTAL)
        report("consumer SIGKILL", counts)
        assert_exact(counts)


async def test_postgresql_restarted_mid_stream(tmp_path: Path) -> None:
    async with running_pair(tmp_path) as pair:
        stream = Stream(pair.producer.url, total=TOTAL)
        task = asyncio.create_task(stream.run())
        try:
            await stream.reached(TOTAL // 3)
            restarted = await run_command(
                "pg_ctlcluster", "--skip-systemctl-redirect", PG_CLUSTER, "main", "restart"
            )
            assert restarted.returncode == 0, restarted.stderr
        finally:
            await wait_postgresql()
        await task
        counts = await settle(TOTAL, timeout=60)
        report("postgresql restart", counts)
        print(f"postgresql restart: the stream retried {stream.retries} requests")
        assert_exact(counts)


async def test_every_message_delivered_twice(tmp_path: Path) -> None:
    async with running_pair(tmp_path) as pair:
        stream = Stream(pair.producer.url, total=TOTAL)
        task = asyncio.create_task(stream.run())
        await stream.reached(TOTAL // 2)
        # The relay crashed after publishing and before marking: everything sent so far is
        # published again; once the stream is out, the rest is published a second time too.
        conn = await asyncpg.connect(test_dsn(PRODUCER))
        try:
            first = await conn.fetch(
                "UPDATE outbox SET sent_at = NULL WHERE sent_at IS NOT NULL RETURNING id"
            )
            boundary = max(r["id"] for r in first)
            await task

            async def all_sent() -> bool:
                return not await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")

            await eventually(all_sent, timeout=30)
            second = await conn.fetch(
                "UPDATE outbox SET sent_at = NULL WHERE id > $1 RETURNING id", boundary
            )
        finally:
            await conn.close()
        republished = len(first) + len(second)
        counts = await settle(TOTAL)

        async def absorbed() -> float:
            seen = await pair.consumer_metric("duplicate")
            return seen if seen >= republished else 0.0

        duplicates_seen = await eventually(absorbed, timeout=30, interval=0.5)
        report("every message twice", counts)
        print(
            f"every message twice: republished={republished}"
            f" redeliveries absorbed by the inbox={duplicates_seen:.0f}"
        )
        assert republished == TOTAL
        assert duplicates_seen >= republished
        assert_exact(counts)


async def test_poison_message_in_the_middle_is_dead_lettered(tmp_path: Path) -> None:
    async with running_pair(tmp_path) as pair:
        stream = Stream(pair.producer.url, total=TOTAL)
        task = asyncio.create_task(stream.run())
        await stream.reached(TOTAL // 2)
        await publish_raw(b"\x00poison: not a cloud event", routing_key=EVENT_TYPE)
        dead = await read_dlq(CONSUMER, expect=1, timeout=20)
        await task
        counts = await settle(TOTAL)
        report("poison message", counts)
        assert len(dead) == 1
        assert dead[0].body == b"\x00poison: not a cloud event"
        assert dead[0].headers[REASON_HEADER].startswith("invalid message:")
        assert dead[0].headers["x-ssu-original-routing-key"] == EVENT_TYPE
        print(f"poison message: dead-lettered with reason {dead[0].headers[REASON_HEADER]!r}")
        assert_exact(counts)


async def wait_amqp(timeout: float = 60.0) -> None:
    import aio_pika

    deadline = time.monotonic() + timeout
    while True:
        try:
            connection = await aio_pika.connect(AMQP_URL, timeout=5)
            await connection.close()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def wait_postgresql(timeout: float = 60.0) -> None:
    """Until `pg_isready` answers; if the cluster is still down, start it (never leave it off)."""
    deadline = time.monotonic() + timeout
    started = False
    while True:
        ready = await run_command("pg_isready", "-h", "127.0.0.1", "-q", timeout=10)
        if ready.returncode == 0:
            return
        if not started and time.monotonic() > deadline - timeout / 2:
            with contextlib.suppress(Exception):
                await run_command(
                    "pg_ctlcluster", "--skip-systemctl-redirect", PG_CLUSTER, "main", "start"
                )
            started = True
        if time.monotonic() > deadline:
            raise AssertionError("PostgreSQL did not come back")
        await asyncio.sleep(0.3)
