"""Broker topology, the outbox publisher, and the consumer that runs handlers through the inbox.

Topology (DESIGN §2): topic exchange `ssu.events`; per consuming service a durable quorum queue
`<service>.events` bound to the event types it handles, dead-lettering into `ssu.dlx`, whose
queue `<service>.events.dlq` keeps what could not be processed. Messages are persistent and
published with confirms. The deployment declares every consumer's queue (ssu_common.topology)
before any service publishes (`declare_suite_topology`).

Trust (SECURITY.md): each service publishes as its own broker user (ssu_common.identities) and
sets the AMQP `user_id`, which RabbitMQ checks against the connection's user; a consumer refuses
an event whose user, routing key, type and CloudEvents `source` do not name the same service.
"""

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

import aio_pika
import asyncpg
from faststream import AckPolicy
from faststream.rabbit import (
    Channel,
    ExchangeType,
    QueueType,
    RabbitBroker,
    RabbitExchange,
    RabbitMessage,
    RabbitQueue,
)
from faststream.rabbit.prometheus import RabbitPrometheusMiddleware
from prometheus_client import CollectorRegistry
from pydantic import ValidationError
from ssu_contracts import Envelope, Event, parse_data
from yarl import URL

from ssu_common import inbox, tracing
from ssu_common.context import work_context
from ssu_common.db import Connection
from ssu_common.errors import DomainError
from ssu_common.logging import get_logger
from ssu_common.outbox import OutboxRow, Unroutable
from ssu_common.problems import Problem
from ssu_common.settings import broker_addresses
from ssu_common.topology import CONSUMERS, DEAD_LETTER_EXCHANGE_NAME, EVENTS_EXCHANGE_NAME
from ssu_common.trust import UntrustedOrigin, check_origin

log = get_logger(__name__)

EVENTS_EXCHANGE = RabbitExchange(EVENTS_EXCHANGE_NAME, type=ExchangeType.TOPIC, durable=True)
DEAD_LETTER_EXCHANGE = RabbitExchange(
    DEAD_LETTER_EXCHANGE_NAME, type=ExchangeType.DIRECT, durable=True
)
CONTENT_TYPE = "application/cloudevents+json"
REASON_HEADER = "x-ssu-dead-letter-reason"


class PermanentError(Exception):
    """A message that can never succeed (a domain rule refuses it): dead-lettered at once."""


EventHandler = Callable[[Connection, Envelope, Any], Awaitable[None]]


def queue_name(service: str) -> str:
    return f"{service}.events"


def dlq_name(service: str) -> str:
    return f"{service}.events.dlq"


def service_queue(service: str, *, delivery_limit: int | None) -> RabbitQueue:
    """The service's quorum queue. With `delivery_limit=None` it is declared without the
    dead-letter and delivery-limit arguments: a broker policy sets them (`dead_letter_policy`),
    so they can change without redeclaring the queue (an argument would win over a policy)."""
    if delivery_limit is None:
        return RabbitQueue(queue_name(service), queue_type=QueueType.QUORUM, durable=True)
    return RabbitQueue(
        queue_name(service),
        queue_type=QueueType.QUORUM,
        durable=True,
        arguments={
            "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE.name,
            "x-dead-letter-routing-key": dlq_name(service),
            "x-delivery-limit": delivery_limit,
        },
    )


def dead_letter_policy(service: str, *, delivery_limit: int) -> dict[str, Any]:
    """The policy definition that replaces the queue arguments (`rabbitmqctl set_policy`)."""
    return {
        "dead-letter-exchange": DEAD_LETTER_EXCHANGE.name,
        "dead-letter-routing-key": dlq_name(service),
        "delivery-limit": delivery_limit,
    }


def dead_letter_queue(service: str) -> RabbitQueue:
    return RabbitQueue(
        dlq_name(service), queue_type=QueueType.QUORUM, durable=True, routing_key=dlq_name(service)
    )


def _failover_connection(addresses: list[str]) -> type[aio_pika.RobustConnection]:
    """aio-pika's robust connection, reconnecting to the next node of the list each time.

    aio-pika retries only the URL it was given, which is the node that just died. Each
    connection attempt (the first, and every one after a loss or a failure) takes the next
    address instead; replicas start at a random one so that they spread over the nodes.
    """

    class FailoverConnection(aio_pika.RobustConnection):
        ADDRESSES: ClassVar[tuple[URL, ...]] = tuple(URL(a) for a in addresses)

        def __init__(self, url: URL, loop: asyncio.AbstractEventLoop | None = None, **kw: Any):
            super().__init__(url, loop, **kw)
            self._turn = random.randrange(len(self.ADDRESSES))

        # RobustConnection's private step that opens the transport from `self.url`; every
        # attempt goes through it. Named as Python mangles the parent's `__connect_transport`.
        async def _RobustConnection__connect_transport(self) -> None:
            self.url = self.ADDRESSES[self._turn % len(self.ADDRESSES)]
            self._turn += 1
            log.info("broker.connecting", address=f"{self.url.host}:{self.url.port}")
            await super()._RobustConnection__connect_transport()  # type: ignore[misc]

    return FailoverConnection


async def connect_first(url: str, *, timeout: float = 10.0) -> aio_pika.abc.AbstractConnection:
    """One plain connection to the first node of `SSU_AMQP_URL` that answers (tools, tests)."""
    error: Exception | None = None
    for address in broker_addresses(url):
        try:
            return await aio_pika.connect(address, timeout=timeout)
        except (OSError, aio_pika.exceptions.AMQPError, TimeoutError) as exc:
            error = exc
    assert error is not None
    raise error


def create_broker(
    *, url: str, service: str, registry: CollectorRegistry, prefetch: int = 32
) -> RabbitBroker:
    """A broker that publishes with confirms, fails on unroutable messages and exports metrics;
    `url` may list several nodes (see `broker_addresses`)."""
    addresses = broker_addresses(url)
    broker = RabbitBroker(
        addresses[0],
        default_channel=Channel(prefetch_count=prefetch, on_return_raises=True),
        middlewares=[RabbitPrometheusMiddleware(registry=registry, app_name=service)],
        app_id=service,
        logger=get_logger("faststream"),
        # Its "Received"/"Processed" line per message is debug detail; ours count outcomes.
        log_level=logging.DEBUG,
        # Handlers take the message itself (see Consumer.subscribe): no dependency injection,
        # which would cost a thread-pool hop per message to resolve a context field.
        apply_types=False,
        fail_fast=False,
        reconnect_interval=1.0,
    )
    if len(addresses) > 1:
        # FastStream hands these to aio_pika.connect_robust, which takes the class to build.
        broker._connection_kwargs["connection_class"] = _failover_connection(addresses)
    return broker


async def declare_topology(
    broker: RabbitBroker, service: str, *, delivery_limit: int | None, event_types: list[str]
) -> None:
    """Declare the exchanges and, for a consumer, its queue, bindings and dead-letter queue."""
    exchange = await broker.declare_exchange(EVENTS_EXCHANGE)
    dlx = await broker.declare_exchange(DEAD_LETTER_EXCHANGE)
    if not event_types:
        return
    dlq = await broker.declare_queue(dead_letter_queue(service))
    await dlq.bind(dlx, routing_key=dlq_name(service))
    queue = await broker.declare_queue(service_queue(service, delivery_limit=delivery_limit))
    for event_type in event_types:
        await queue.bind(exchange, routing_key=event_type)


async def declare_suite_topology(url: str, *, delivery_limit: int | None) -> None:
    """Declare every consumer's queues and bindings (ssu_common.topology) as the deployment's
    own step, before any service starts publishing: an event then always has the queue of each
    service that reads it, even one that has never run yet.

    Run with an administrator's credentials (the local runner, the tests, `ssu topology
    declare`); compose and Kubernetes declare the same from their definitions. A service's
    identity may not: a queue that dead-letters needs `read` on it to be declared.
    """
    connection = await connect_first(url)
    async with connection:
        channel = await connection.channel()
        await channel.declare_exchange(
            EVENTS_EXCHANGE_NAME, aio_pika.ExchangeType.TOPIC, durable=True
        )
        await channel.declare_exchange(
            DEAD_LETTER_EXCHANGE_NAME, aio_pika.ExchangeType.DIRECT, durable=True
        )
        for service, event_types in CONSUMERS.items():
            # A channel per consumer: a queue that exists with other arguments (another
            # delivery limit) refuses the declaration and closes the channel. It exists, which
            # is what matters here; its bindings are its owner's at start-up then.
            channel = await connection.channel()
            try:
                await _declare_consumer(channel, service, event_types, delivery_limit)
            except aio_pika.exceptions.ChannelPreconditionFailed as exc:
                log.warning("topology.queue_differs", service=service, error=str(exc)[:300])


async def _declare_consumer(
    channel: aio_pika.abc.AbstractChannel,
    service: str,
    event_types: tuple[str, ...],
    delivery_limit: int | None,
) -> None:
    exchange = await channel.get_exchange(EVENTS_EXCHANGE_NAME)
    dlx = await channel.get_exchange(DEAD_LETTER_EXCHANGE_NAME)
    dlq_spec = dead_letter_queue(service)
    dlq = await channel.declare_queue(dlq_spec.name, durable=True, arguments=dlq_spec.arguments)
    await dlq.bind(dlx, routing_key=dlq_name(service))
    spec = service_queue(service, delivery_limit=delivery_limit)
    queue = await channel.declare_queue(spec.name, durable=True, arguments=spec.arguments)
    for event_type in event_types:
        await queue.bind(exchange, routing_key=event_type)


class OutboxPublisher:
    """The relay's publish: persistent, mandatory, confirmed by the broker.

    It publishes on a confirm channel of its own, straight through aio-pika: the broker's
    generic publish path (middlewares, serialisation) costs about a third more CPU per event,
    and the relay is the producer's hot loop.
    """

    def __init__(
        self,
        broker: RabbitBroker,
        *,
        user_id: str,
        timeout: float = 10.0,
        on_published: Callable[[], None],
    ) -> None:
        self._broker = broker
        self._user_id = user_id
        self._timeout = timeout
        self._on_published = on_published
        self._channel: aio_pika.abc.AbstractChannel | None = None
        self._exchange: aio_pika.abc.AbstractExchange | None = None

    async def _events_exchange(self) -> aio_pika.abc.AbstractExchange:
        if self._exchange is None or self._channel is None or self._channel.is_closed:
            connection = self._broker._connection  # FastStream's own connection, robust
            if connection is None:
                raise ConnectionError("the broker is not connected")
            self._channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            self._exchange = await self._channel.get_exchange(EVENTS_EXCHANGE.name)
        return self._exchange

    async def __call__(self, row: OutboxRow) -> None:
        exchange = await self._events_exchange()
        message = aio_pika.Message(
            row.body.encode(),
            message_id=row.event_id,
            correlation_id=row.correlation_id,
            content_type=CONTENT_TYPE,
            type=row.event_type,
            # The broker refuses a user_id that is not the connection's user: consumers can
            # trust it to name the publishing service.
            user_id=self._user_id,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        try:
            # The send span (aio-pika instrumentation) continues the writer's trace and puts
            # its traceparent in the headers.
            with tracing.continued(row.traceparent):
                await exchange.publish(
                    message, routing_key=row.event_type, mandatory=True, timeout=self._timeout
                )
        except aio_pika.exceptions.DeliveryError as exc:
            # Returned as unroutable: no queue is bound to this type. The relay parks the row.
            if exc.frame is not None and getattr(exc.frame, "name", "") == "Basic.Return":
                raise Unroutable(f"no queue is bound to {row.event_type}") from exc
            raise
        except Exception:
            self._exchange = None  # reopen the channel for the next attempt
            raise
        self._on_published()


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
    trace: tracing.Context | None = None


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
        headers: dict[str, Any] = dict(raw.headers or {})
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


async def queue_depth(broker: RabbitBroker, name: str) -> int | None:
    """Messages waiting in a queue (passive declare), or None when it cannot be read."""
    try:
        channel = await broker._connection.channel()  # type: ignore[union-attr]
        try:
            queue = await channel.declare_queue(name, passive=True)
            return int(queue.declaration_result.message_count or 0)
        finally:
            await channel.close()
    except Exception:
        return None
