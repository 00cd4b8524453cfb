"""Broker connection and topology: the exchanges, each consumer's queue and dead-letter queue.

Topology (DESIGN §2): topic exchange `ssu.events`; per consuming service a durable quorum queue
`<service>.events` bound to the event types it handles, dead-lettering into `ssu.dlx`, whose
queue `<service>.events.dlq` keeps what could not be processed. Messages are persistent and
published with confirms. The deployment declares every consumer's queue (ssu_common.topology)
before any service publishes (`declare_suite_topology`).
"""

import asyncio
import logging
import random
from typing import ClassVar

import aio_pika
from faststream.rabbit import (
    Channel,
    ExchangeType,
    QueueType,
    RabbitBroker,
    RabbitExchange,
    RabbitQueue,
)
from faststream.rabbit.prometheus import RabbitPrometheusMiddleware
from prometheus_client import CollectorRegistry
from yarl import URL

from ssu_common.logging import get_logger
from ssu_common.settings import broker_addresses
from ssu_common.topology import CONSUMERS, DEAD_LETTER_EXCHANGE_NAME, EVENTS_EXCHANGE_NAME

log = get_logger(__name__)

EVENTS_EXCHANGE = RabbitExchange(EVENTS_EXCHANGE_NAME, type=ExchangeType.TOPIC, durable=True)
DEAD_LETTER_EXCHANGE = RabbitExchange(
    DEAD_LETTER_EXCHANGE_NAME, type=ExchangeType.DIRECT, durable=True
)


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


def dead_letter_policy(service: str, *, delivery_limit: int) -> dict[str, str | int]:
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

        def __init__(self, url: URL, loop: asyncio.AbstractEventLoop | None = None, **kw: object):
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
