"""The outbox: events are rows written in the caller's transaction; a relay publishes them.

The relay wakes on LISTEN/NOTIFY (and polls as a fallback), claims unsent rows with
`FOR UPDATE SKIP LOCKED` so any number of relays can run, publishes them with broker confirms
and marks them sent in the same transaction that held the claim. A row whose publish failed
stays unsent and is tried again: an event may be published twice after a crash between the
confirm and the commit, never lost; consumers deduplicate by event id.

An event that the broker returns as unroutable (no queue bound to its type) is parked: kept
unsent with the reason, counted in `status` and the `ssu_outbox_parked` gauge, left alone by the
relay until an operator retries it (`ssu outbox retry-parked`).

Retention: published rows are deleted once older than the retention setting (`prune`).
"""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
from ssu_contracts import Envelope, Event, make_event

from ssu_common.context import current_causation_id, current_correlation_id
from ssu_common.db import Connection
from ssu_common.logging import get_logger
from ssu_common.tracing import current_traceparent

log = get_logger(__name__)

NOTIFY_CHANNEL = "ssu_outbox"


@dataclass(frozen=True)
class OutboxRow:
    id: int
    event_id: str
    event_type: str
    body: str
    correlation_id: str
    traceparent: str | None = None


class Unroutable(Exception):
    """The broker returned the event: no queue is bound to its routing key."""


def source_of(event_type: str) -> str:
    """The CloudEvents `source` of an event: `/ssu/<service>`, the service its type belongs to.

    Derived from the type rather than kept per process: a service only ever publishes its own
    types (topic permissions), consumers refuse any other source, and several services may run
    in one process (tests), where a process-wide value would name the wrong one.
    """
    return f"/ssu/{event_type.split('.', 1)[0]}"


async def write(conn: Connection, envelope: Envelope) -> None:
    """Add an already built envelope to the outbox in the caller's transaction."""
    await conn.execute(
        "INSERT INTO outbox (event_id, event_type, subject, body, correlation_id, traceparent)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        envelope.id,
        envelope.type,
        envelope.subject,
        envelope.to_bytes().decode(),
        envelope.correlationid,
        envelope.traceparent,
    )
    # NOTIFY is delivered on commit only, so a rolled-back change wakes nobody.
    await conn.execute("SELECT pg_notify($1, '')", NOTIFY_CHANNEL)


async def emit(conn: Connection, data: Event, *, subject: str | None) -> Envelope:
    """Wrap an event in an envelope bound to the current request or event, and add it."""
    envelope = make_event(
        data,
        source=source_of(type(data).event_type),
        subject=subject,
        correlation_id=current_correlation_id(),
        causation_id=current_causation_id(),
        traceparent=current_traceparent(),
    )
    await write(conn, envelope)
    return envelope


async def emit_many(conn: Connection, items: list[tuple[Event, str | None]]) -> list[Envelope]:
    """Add many events in one statement (billing runs, mass disruptions)."""
    traceparent = current_traceparent()
    envelopes = [
        make_event(
            data,
            source=source_of(type(data).event_type),
            subject=subject,
            correlation_id=current_correlation_id(),
            causation_id=current_causation_id(),
            traceparent=traceparent,
        )
        for data, subject in items
    ]
    if not envelopes:
        return []
    await conn.executemany(
        "INSERT INTO outbox (event_id, event_type, subject, body, correlation_id, traceparent)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        [
            (e.id, e.type, e.subject, e.to_bytes().decode(), e.correlationid, traceparent)
            for e in envelopes
        ],
    )
    await conn.execute("SELECT pg_notify($1, '')", NOTIFY_CHANNEL)
    return envelopes


@dataclass(frozen=True)
class OutboxStatus:
    pending: int
    oldest_seconds: float
    sent: int
    parked: int = 0
    parked_types: tuple[str, ...] = ()


async def status(conn: Connection) -> OutboxStatus:
    """How many events wait to be published, for how long the oldest has waited, and how many
    are parked as unroutable."""
    row = await conn.fetchrow(
        "SELECT count(*) FILTER (WHERE sent_at IS NULL AND parked_at IS NULL) AS pending,"
        " count(*) FILTER (WHERE sent_at IS NOT NULL) AS sent,"
        " count(*) FILTER (WHERE parked_at IS NOT NULL) AS parked,"
        " coalesce(array_agg(DISTINCT event_type) FILTER (WHERE parked_at IS NOT NULL),"
        "   '{}') AS parked_types,"
        " coalesce(extract(epoch FROM now() - min(created_at)"
        "   FILTER (WHERE sent_at IS NULL AND parked_at IS NULL)), 0) AS oldest FROM outbox"
    )
    assert row is not None
    return OutboxStatus(
        pending=row["pending"],
        oldest_seconds=float(row["oldest"]),
        sent=row["sent"],
        parked=row["parked"],
        parked_types=tuple(sorted(row["parked_types"])),
    )


async def retry_parked(conn: Connection) -> int:
    """Hand parked events back to the relay (once their consumers' queues exist)."""
    result = await conn.execute(
        "UPDATE outbox SET parked_at = NULL WHERE parked_at IS NOT NULL AND sent_at IS NULL"
    )
    await conn.execute("SELECT pg_notify($1, '')", NOTIFY_CHANNEL)
    return int(result.split()[-1])


async def prune(conn: Connection, *, older_than: timedelta, batch: int = 5000) -> int:
    """Delete published rows sent before `older_than` ago, a batch per statement; unsent and
    parked rows stay. Returns how many went."""
    total = 0
    while True:
        result = await conn.execute(
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox"
            " WHERE sent_at < now() - $1::interval ORDER BY sent_at LIMIT $2)",
            older_than,
            batch,
        )
        deleted = int(result.split()[-1])
        total += deleted
        if deleted < batch:
            return total


PublishFn = Callable[[OutboxRow], Awaitable[None]]


class OutboxRelay:
    """Publishes unsent outbox rows; safe to run in every replica at once."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        dsn: str,
        publish: PublishFn,
        batch_size: int = 200,
        poll_seconds: float = 2.0,
    ) -> None:
        self._pool = pool
        self._dsn = dsn
        self._publish = publish
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._stopping = False
        self.last_error: str | None = None

    async def relay_once(self) -> int:
        """Claim one batch, publish it, mark what was confirmed; returns how many were sent."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT id, event_id::text, event_type, body, correlation_id, traceparent"
                " FROM outbox WHERE sent_at IS NULL AND parked_at IS NULL ORDER BY id"
                " LIMIT $1 FOR UPDATE SKIP LOCKED",
                self._batch_size,
            )
            if not rows:
                return 0
            batch = [OutboxRow(*r) for r in rows]
            # Confirms are awaited together: one round trip per batch, not per event.
            results = await asyncio.gather(
                *(self._publish(row) for row in batch), return_exceptions=True
            )
            sent = [row.id for row, res in zip(batch, results, strict=True) if res is None]
            parked = [
                (row.id, f"unroutable: {res}"[:500])
                for row, res in zip(batch, results, strict=True)
                if isinstance(res, Unroutable)
            ]
            failed = [
                (row.id, repr(res)[:500])
                for row, res in zip(batch, results, strict=True)
                if isinstance(res, BaseException) and not isinstance(res, Unroutable)
            ]
            if parked:
                # Nobody would receive them: kept with the reason instead of marked sent.
                await conn.executemany(
                    "UPDATE outbox SET parked_at = now(), attempts = attempts + 1,"
                    " last_error = $2 WHERE id = $1",
                    parked,
                )
                log.warning("outbox.parked_unroutable", count=len(parked), reason=parked[0][1])
            if sent:
                await conn.execute(
                    "UPDATE outbox SET sent_at = $2, attempts = attempts + 1"
                    " WHERE id = ANY($1::bigint[])",
                    sent,
                    datetime.now(UTC),
                )
            if failed:
                await conn.executemany(
                    "UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE id = $1",
                    failed,
                )
                self.last_error = failed[0][1]
                log.warning("outbox.publish_failed", count=len(failed), error=failed[0][1])
            return len(sent) + len(parked) if not failed else -len(failed)

    async def _listen(self) -> None:
        """Keep a LISTEN connection open; reconnect when the database goes away."""
        while not self._stopping:
            conn: Connection | None = None
            try:
                conn = await asyncpg.connect(self._dsn)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda *_, lost=lost: lost.set())
                await conn.add_listener(NOTIFY_CHANNEL, lambda *_: self._wake.set())
                self._wake.set()  # rows may have been written while we were not listening
                # asyncpg notices a dead socket only when it next uses it: ping now and then.
                while not self._stopping:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), timeout=5.0)
                    if lost.is_set():
                        break
                    await conn.fetchval("SELECT 1", timeout=5.0)
            except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
                log.warning("outbox.listen_failed", error=repr(exc))
                await asyncio.sleep(1.0)
            finally:
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await conn.close()

    async def run(self) -> None:
        """Relay until stopped; back off while the broker or the database is unavailable."""
        listener = asyncio.create_task(self._listen())
        backoff = 0.5
        try:
            while not self._stopping:
                # Cleared before the claim: a NOTIFY that arrives during it wakes the next wait.
                self._wake.clear()
                try:
                    result = await self.relay_once()
                except (
                    TimeoutError,
                    OSError,
                    asyncpg.PostgresError,
                    asyncpg.InterfaceError,
                ) as exc:
                    log.warning("outbox.relay_failed", error=repr(exc))
                    result = -1
                if result < 0:
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 10.0)
                    continue
                backoff = 0.5
                if result >= self._batch_size:
                    continue
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self._poll_seconds)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
