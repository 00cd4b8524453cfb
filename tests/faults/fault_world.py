"""The fault tests' world: the pair as real processes, a paced stream of events, the counts."""

import asyncio
import contextlib
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pair_service
from harness import (
    ADMIN,
    AMQP_URL,
    ServiceProcess,
    eventually,
    free_port,
    reset_service,
    test_dsn,
    wait_ready,
)

PRODUCER = "faults_producer"
CONSUMER = "faults_consumer"


def spawn(role: str, service: str, log_dir: Path, port: int | None = None) -> ServiceProcess:
    port = port or free_port()
    log_path = log_dir / f"{service}-{port}.log"
    process = pair_service.spawn(
        role,
        service=service,
        database_url=test_dsn(service),
        amqp_url=AMQP_URL,
        port=port,
        log_path=log_path,
    )
    return ServiceProcess(service=service, port=port, process=process, log_path=log_path)


@dataclass
class Pair:
    log_dir: Path
    producer: ServiceProcess
    consumer: ServiceProcess

    async def restart_consumer(self, *, kill: bool) -> None:
        """SIGKILL (or stop) the consumer process and start a new one on the same database."""
        if kill:
            self.consumer.kill()
        else:
            self.consumer.stop()
        self.consumer = spawn("consumer", CONSUMER, self.log_dir, self.consumer.port)
        await wait_ready(self.consumer)

    async def consumer_metric(self, outcome: str) -> float:
        """`ssu_events_total` of the consumer process for one outcome."""
        async with httpx.AsyncClient() as client:
            text = (await client.get(f"{self.consumer.url}/metrics", timeout=5)).text
        prefix = "ssu_events_total{"
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(prefix) and f'outcome="{outcome}"' in line
        )


@asynccontextmanager
async def running_pair(log_dir: Path) -> AsyncIterator[Pair]:
    """Fresh databases and queues; the consumer is ready (its queue bound) before the producer."""
    for service in (PRODUCER, CONSUMER):
        await reset_service(service)
    consumer = spawn("consumer", CONSUMER, log_dir)
    producer: ServiceProcess | None = None
    pair: Pair | None = None
    try:
        await wait_ready(consumer)
        producer = spawn("producer", PRODUCER, log_dir)
        await wait_ready(producer)
        pair = Pair(log_dir=log_dir, producer=producer, consumer=consumer)
        yield pair
    finally:
        for proc in (pair.producer, pair.consumer) if pair else (producer, consumer):
            if proc is not None:
                proc.stop()


@dataclass
class Stream:
    """Posts `total` events to the producer in bulk requests of `per_request`, paced at `rate`
    events/s; a failed request (the database is restarting…) is retried with the same seqs,
    which the producer treats as a no-op once they are in."""

    url: str
    total: int = 2400
    per_request: int = 10
    rate: float = 300.0
    posted: int = 0
    retries: int = 0
    errors: list[str] = field(default_factory=list)

    async def run(self) -> None:
        interval = self.per_request / self.rate
        started = time.monotonic()
        async with httpx.AsyncClient(headers=ADMIN, timeout=10) as client:
            for n, first in enumerate(range(0, self.total, self.per_request)):
                await asyncio.sleep(max(0.0, started + n * interval - time.monotonic()))
                count = min(self.per_request, self.total - first)
                while True:
                    try:
                        r = await client.post(
                            f"{self.url}/v1/things/bulk",
                            json={"first_seq": first, "count": count},
                        )
                        if r.status_code == 201:
                            break
                        self.errors.append(f"{r.status_code} {r.text[:200]}")
                    except httpx.HTTPError as exc:
                        self.errors.append(repr(exc))
                    self.retries += 1
                    await asyncio.sleep(0.2)
                self.posted = first + count

    async def reached(self, posted: int, timeout: float = 30.0) -> None:
        await eventually(lambda: self.posted >= posted, timeout=timeout, interval=0.05)


@dataclass(frozen=True)
class Counts:
    sent: int  # events in the producer's outbox
    unsent: int  # of which not yet published
    applied: int  # distinct events with an effect
    lost: int  # events in the outbox with no effect
    duplicated: int  # events with more than one effect row
    seqs: int  # distinct sequence numbers applied


async def count() -> Counts:
    producer = await asyncpg.connect(test_dsn(PRODUCER))
    try:
        sent = {r[0] for r in await producer.fetch("SELECT event_id FROM outbox")}
        unsent = int(await producer.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL"))
    finally:
        await producer.close()
    consumer = await asyncpg.connect(test_dsn(CONSUMER))
    try:
        rows = await consumer.fetch("SELECT event_id, count(*) AS n FROM effects GROUP BY event_id")
        seqs = int(await consumer.fetchval("SELECT count(DISTINCT seq) FROM effects"))
    finally:
        await consumer.close()
    applied = {r["event_id"] for r in rows}
    return Counts(
        sent=len(sent),
        unsent=unsent,
        applied=len(applied),
        lost=len(sent - applied),
        duplicated=sum(1 for r in rows if r["n"] > 1),
        seqs=seqs,
    )


async def settle(total: int, timeout: float = 40.0) -> Counts:
    """Wait until every event of the stream has its effect (or the timeout), then wait a little
    longer so that a late duplicate would still be counted."""
    last: Counts | None = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, asyncpg.PostgresError):
            last = await count()
            if last.sent >= total and last.unsent == 0 and last.lost == 0:
                break
        await asyncio.sleep(0.25)
    await asyncio.sleep(1.5)
    return await count()


def report(fault: str, counts: Counts) -> None:
    print(
        f"{fault}: sent={counts.sent} applied={counts.applied}"
        f" lost={counts.lost} duplicated={counts.duplicated}"
    )


async def run_command(*argv: str, timeout: float = 90.0) -> subprocess.CompletedProcess[str]:
    """A system command off the event loop, so the stream keeps flowing meanwhile."""
    return await asyncio.to_thread(
        subprocess.run, list(argv), capture_output=True, text=True, timeout=timeout, check=False
    )
