"""The messaging names where tools and tests have always imported them from: the broker and its
topology (ssu_common.broker), the outbox publisher (ssu_common.publisher) and the consumer
(ssu_common.consumer)."""

from ssu_common.broker import (
    DEAD_LETTER_EXCHANGE,
    EVENTS_EXCHANGE,
    connect_first,
    create_broker,
    dead_letter_policy,
    dead_letter_queue,
    declare_suite_topology,
    declare_topology,
    dlq_name,
    queue_depth,
    queue_name,
    service_queue,
)
from ssu_common.consumer import REASON_HEADER, Consumer, EventHandler, PermanentError
from ssu_common.publisher import CONTENT_TYPE, OutboxPublisher
from ssu_common.settings import broker_addresses

__all__ = [
    "CONTENT_TYPE",
    "DEAD_LETTER_EXCHANGE",
    "EVENTS_EXCHANGE",
    "REASON_HEADER",
    "Consumer",
    "EventHandler",
    "OutboxPublisher",
    "PermanentError",
    "broker_addresses",
    "connect_first",
    "create_broker",
    "dead_letter_policy",
    "dead_letter_queue",
    "declare_suite_topology",
    "declare_topology",
    "dlq_name",
    "queue_depth",
    "queue_name",
    "service_queue",
]
