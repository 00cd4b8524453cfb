"""The outbox relay's publish: each event to the events exchange, persistent, confirmed.

Trust (SECURITY.md): each service publishes as its own broker user (ssu_common.identities) and
sets the AMQP `user_id`, which RabbitMQ checks against the connection's user.
"""

from collections.abc import Callable

import aio_pika
from faststream.rabbit import RabbitBroker

from ssu_common import tracing
from ssu_common.broker import EVENTS_EXCHANGE
from ssu_common.outbox import OutboxRow, Unroutable

CONTENT_TYPE = "application/cloudevents+json"


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
