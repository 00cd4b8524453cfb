"""The consumer: decodes each event, dedupes it through the inbox, runs its handler, acks.

Trust (SECURITY.md): a consumer refuses an event whose AMQP user, routing key, type and
CloudEvents `source` do not name the same service.
"""

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aio_pika.abc import HeadersType
from faststream import AckPolicy
from faststream.rabbit import RabbitBroker, RabbitMessage
from opentelemetry.context import Context
from pydantic import ValidationError
from ssu_contracts import Envelope, Event, parse_data

from ssu_common import inbox, tracing
from ssu_common.broker import DEAD_LETTER_EXCHANGE, dlq_name, service_queue
from ssu_common.context import work_context
from ssu_common.db import Connection
from ssu_common.errors import DomainError
from ssu_common.logging import get_logger
from ssu_common.problems import Problem
from ssu_common.trust import UntrustedOrigin, check_origin

log = get_logger(__name__)

REASON_HEADER = "x-ssu-dead-letter-reason"


class PermanentError(Exception):
    """A message that can never succeed (a domain rule refuses it): dead-lettered at once."""


# A handler takes its own event class (`data: LicenseSuspendedV1`); a callable is contravariant
# in its arguments, so `Event` here would refuse every such handler, and a dict keyed by event
# class cannot pair each key with its handler's type. The consumer passes the class the
# envelope's type names (`parse_data`), so the pairing holds at run time.
EventHandler = Callable[[Connection, Envelope, Any], Awaitable[None]]  # type: ignore[explicit-any]


async def _the_message_itself(message: RabbitMessage) -> RabbitMessage:
    """The handler takes the message (to decode it and to acknowledge it itself)."""
    return message


class _HandlerFailed(Exception):
    """A handler raised on the fast path; the batch is redone with savepoints."""


def _database_unavailable(exc: BaseException) -> bool:
    """The database cannot be reached (restarting, network): worth waiting for, not a fault
    of the event.

    A statement timeout (QueryCanceledError, a kind of OperatorInterventionError) is not: the
    database answered, this event's work was too slow. It is retried like any transient
    failure, and dead-lettered with its reason at the delivery limit, instead of holding the
    batch forever."""
    if isinstance(exc, asyncpg.exceptions.QueryCanceledError):
        return False
    return isinstance(
        exc,
        OSError
        | asyncpg.PostgresConnectionError
        | asyncpg.InterfaceError
        | asyncpg.exceptions.OperatorInterventionError,
    )


def _permanent(exc: BaseException) -> bool:
    """The event can never succeed: a domain rule refuses it (PermanentError, a problem of the
    4xx kind), or its data breaks a rule of the database (class 22 data exception, class 23
    integrity constraint). Retrying the same event would get the same answer."""
    if isinstance(exc, DomainError):
        return exc.disposition == "dead_letter"
    if isinstance(exc, Problem):
        return exc.status < 500
    return isinstance(
        exc,
        PermanentError | asyncpg.DataError | asyncpg.IntegrityConstraintViolationError,
    )


@dataclass(frozen=True)
class _Work:
    message: RabbitMessage
    envelope: Envelope
    data: Event
    handler: EventHandler
    trace: Context | None = None


@dataclass
class Consumer:
    """Runs a service's event handlers: decode, dedupe through the inbox, apply, ack.

    Messages are applied in small batches, one transaction per batch and a savepoint per
    message, and acknowledged after the commit: one commit serves many events, a failing
    event rolls back only its own savepoint, and a crash before the acks means redelivery,
    which the inbox turns into no effect.

    - invalid body, unknown type, wrong data, an untrusted origin, a permanent (domain) error:
      dead-lettered at once with the reason;
    - the database unreachable: the batch is held unacknowledged until it is back;
    - any other failure (a statement timeout, a bug): nack and redeliver with back-off; the
      last delivery the queue allows is dead-lettered with the reason.
    """

    service: str
    pool: asyncpg.Pool
    broker: RabbitBroker
    handlers: Mapping[str, EventHandler]
    on_outcome: Callable[[str, str], None] | None = None
    on_received: Callable[[Envelope], None] | None = None
    batch_size: int = 32
    batch_wait: float = 0.002
    # No event of the catalogue comes near this; a larger body is garbage or an attack.
    max_message_bytes: int = 1_048_576
    delivery_limit: int = 10
    _queue: asyncio.Queue[_Work] = field(default_factory=asyncio.Queue)
    _retries: set[asyncio.Task[None]] = field(default_factory=set)

    def subscribe(self, delivery_limit: int, *, declared: bool = True) -> None:
        """Consume the service's queue; `declared=False`: its dead-lettering and delivery limit
        come from a broker policy, not from the declaration (SSU_QUEUE_POLICIES)."""
        self.delivery_limit = delivery_limit
        self.broker.subscriber(
            service_queue(self.service, delivery_limit=delivery_limit if declared else None),
            ack_policy=AckPolicy.MANUAL,
            no_reply=True,
            decoder=_the_message_itself,
        )(self._on_message)

    def _count(self, event_type: str, outcome: str) -> None:
        if self.on_outcome is not None:
            self.on_outcome(event_type, outcome)

    async def _on_message(self, message: RabbitMessage) -> None:
        if len(message.body) > self.max_message_bytes:
            await self._dead_letter(
                message, f"invalid message: larger than {self.max_message_bytes} bytes"
            )
            self._count("invalid", "dead_lettered")
            return
        try:
            envelope = Envelope.from_bytes(message.body)
            handler = self.handlers.get(envelope.type)
            if handler is None:
                raise ValueError(f"event type {envelope.type!r} is not handled by {self.service}")
            data = parse_data(envelope)
            # DESIGN §2: the AMQP message id repeats the event id; a message without it did
            # not come from an outbox, and one that disagrees is not what it claims to be.
            message_id = message.raw_message.message_id
            if message_id is None:
                raise ValueError("the message has no message_id property")
            if message_id != envelope.id:
                raise ValueError(f"message_id {message_id!r} is not the event id {envelope.id!r}")
            raw = message.raw_message
            check_origin(
                user_id=raw.user_id,
                exchange=raw.exchange or "",
                routing_key=raw.routing_key or "",
                replayed=bool((raw.headers or {}).get("x-ssu-replayed")),
                envelope=envelope,
            )
        except UntrustedOrigin as exc:
            await self._dead_letter(message, f"untrusted origin: {exc}")
            self._count("untrusted", "dead_lettered")
            return
        except (ValidationError, ValueError) as exc:
            await self._dead_letter(message, f"invalid message: {_describe(exc)}")
            self._count("invalid", "dead_lettered")
            return
        if self.on_received is not None:
            self.on_received(envelope)
        # Returning without an ack lets the broker hand over the next message (up to the
        # prefetch); the batch worker acknowledges after its commit.
        await self._queue.put(_Work(message, envelope, data, handler, tracing.captured()))

    async def run(self) -> None:
        """Take queued messages in batches and apply them until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + self.batch_wait
            while len(batch) < self.batch_size:
                if not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                    continue
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                except TimeoutError:
                    break
            await self._apply_batch(batch)

    async def _apply_batch(self, batch: list[_Work]) -> None:
        outcomes: list[tuple[_Work, Exception | None, bool]] = []
        careful = False
        delay = 0.5
        while True:
            try:
                outcomes = await self._run_batch(batch, careful=careful)
                break
            except _HandlerFailed:
                # Redo the batch with a savepoint per event: only the failing one is left out.
                careful = True
            except Exception as exc:
                if not _database_unavailable(exc):
                    outcomes = [(work, exc, False) for work in batch]
                    break
                # The database is away: keep the messages unacknowledged and wait for it.
                # Nacking would spend their delivery limit and dead-letter sound events.
                log.warning(
                    "consumer.database_unavailable",
                    error=repr(exc)[:300],
                    retry_in=delay,
                    held=len(batch),
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        for work, error, duplicate in outcomes:
            if error is None:
                await self._ack(work.message)
                self._count(work.envelope.type, "duplicate" if duplicate else "handled")
                continue
            with self._context(work.envelope):
                if _permanent(error):
                    await self._dead_letter(work.message, f"refused: {_describe_error(error)}")
                    self._count(work.envelope.type, "dead_lettered")
                elif _deliveries(work.message) >= self.delivery_limit + 1:
                    # The queue would drop it into the DLQ without a word: say why ourselves.
                    await self._dead_letter(
                        work.message,
                        f"failed {_deliveries(work.message)} deliveries: {_describe_error(error)}",
                    )
                    self._count(work.envelope.type, "dead_lettered")
                else:
                    self._count(work.envelope.type, "retried")
                    task = asyncio.create_task(self._retry_later(work.message, error))
                    self._retries.add(task)
                    task.add_done_callback(self._retries.discard)

    async def _run_batch(
        self, batch: list[_Work], *, careful: bool
    ) -> list[tuple[_Work, Exception | None, bool]]:
        """One transaction: claim the batch in the inbox (one statement), apply each new event.

        Fast path: no savepoints, and the first failure aborts the batch (`_HandlerFailed`).
        Careful path: a savepoint per event; a failing event's claim is released.
        Returns (work, error, was a duplicate) per message.
        """
        outcomes: list[tuple[_Work, Exception | None, bool]] = []
        async with self.pool.acquire() as conn, conn.transaction():
            fresh = await inbox.claim_many(
                conn, [(work.envelope.id, work.envelope.type) for work in batch]
            )
            for work in batch:
                if work.envelope.id not in fresh:
                    outcomes.append((work, None, True))
                    continue
                fresh.discard(work.envelope.id)  # a second copy in this batch is a duplicate
                with (
                    self._context(work.envelope),
                    tracing.processing(work.trace, work.envelope.type, work.envelope.id),
                ):
                    if not careful:
                        try:
                            await work.handler(conn, work.envelope, work.data)
                        except Exception as exc:
                            raise _HandlerFailed from exc
                        outcomes.append((work, None, False))
                        continue
                    try:
                        async with conn.transaction():
                            await work.handler(conn, work.envelope, work.data)
                        outcomes.append((work, None, False))
                    except Exception as exc:
                        if _database_unavailable(exc):
                            raise
                        await inbox.release(conn, work.envelope.id)
                        outcomes.append((work, exc, False))
        return outcomes

    @staticmethod
    def _context(envelope: Envelope) -> AbstractContextManager[None]:
        return work_context(
            correlation_id=envelope.correlationid,
            causation_id=envelope.id,
            event_id=envelope.id,
            event_type=envelope.type,
        )

    @staticmethod
    async def _ack(message: RabbitMessage) -> None:
        try:
            await message.ack()
        except Exception as exc:
            # The channel went away: the broker redelivers, and the inbox absorbs it.
            log.warning("event.ack_failed", error=repr(exc))

    async def _retry_later(self, message: RabbitMessage, exc: Exception) -> None:
        count = _deliveries(message) - 1
        delay = min(0.1 * 2**count, 5.0)
        log.warning(
            "event.failed_transient", error=repr(exc)[:500], delivery=count + 1, retry_in=delay
        )
        # Back-off before the nack: the message is redelivered after the delay, and a consumer
        # that keeps failing cannot spin the queue. The queue's delivery limit ends the loop.
        await asyncio.sleep(delay)
        try:
            await message.nack(requeue=True)
        except Exception as nack_exc:
            log.warning("event.nack_failed", error=repr(nack_exc))

    async def _dead_letter(self, message: RabbitMessage, reason: str) -> None:
        raw = message.raw_message
        headers: HeadersType = dict(raw.headers or {})
        headers.update(
            {
                REASON_HEADER: reason[:1000],
                "x-ssu-service": self.service,
                "x-ssu-original-routing-key": raw.routing_key or "",
                "x-ssu-dead-lettered-at": datetime.now(UTC).isoformat(),
            }
        )
        try:
            await self.broker.publish(
                message.body,
                exchange=DEAD_LETTER_EXCHANGE,
                routing_key=dlq_name(self.service),
                persist=True,
                headers=headers,
                message_id=raw.message_id,
                correlation_id=raw.correlation_id,
                content_type=raw.content_type,
                timeout=10.0,
            )
        except Exception as exc:
            # Not recorded in the DLQ: keep the message in the queue rather than lose it.
            log.error("event.dead_letter_failed", error=repr(exc))
            with contextlib.suppress(Exception):
                await message.nack(requeue=True)
            return
        log.warning("event.dead_lettered", reason=reason, message_id=raw.message_id)
        await self._ack(message)


def _deliveries(message: RabbitMessage) -> int:
    """Which delivery of the message this is (1 for the first): a quorum queue counts the
    earlier ones in `x-delivery-count`."""
    count = (message.raw_message.headers or {}).get("x-delivery-count", 0)
    return 1 + (int(count) if isinstance(count, int | str) else 0)


def _describe_error(exc: Exception) -> str:
    if isinstance(exc, PermanentError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"[:900]


def _describe(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
            for e in exc.errors()[:10]
        ]
        return json.dumps(errors, ensure_ascii=False)
    return str(exc)
