"""Whether an event comes from the service it names (SECURITY.md, broker identities)."""

from ssu_contracts import Envelope

from ssu_common.identities import service_of_user
from ssu_common.topology import EVENTS_EXCHANGE_NAME


class UntrustedOrigin(ValueError):
    """The event's user, routing key, type and source do not name one publishing service."""


def check_origin(
    *, user_id: str | None, exchange: str, routing_key: str, replayed: bool, envelope: Envelope
) -> None:
    """Refuse an event that did not come from the service it names (SECURITY.md).

    The broker guarantees `user_id` is the publishing connection's user and, through topic
    permissions, that the routing key is one of that user's service. An event replayed from a
    dead-letter queue comes through the default exchange, which only the operators' identity
    may write to; it keeps its original `user_id`.
    """
    publisher = service_of_user(user_id)
    if publisher is None:
        raise UntrustedOrigin(f"user_id {user_id!r} is not the identity of a service")
    if exchange == EVENTS_EXCHANGE_NAME:
        if routing_key != envelope.type:
            raise UntrustedOrigin(
                f"routing key {routing_key!r} is not the event type {envelope.type!r}"
            )
    elif not (exchange == "" and replayed):
        raise UntrustedOrigin(f"published to {exchange or 'the default exchange'!r}")
    owner = envelope.type.split(".", 1)[0]
    if owner != publisher:
        raise UntrustedOrigin(f"{envelope.type} published by {user_id}, not by {owner}")
    if envelope.source != f"/ssu/{publisher}":
        raise UntrustedOrigin(f"source {envelope.source!r} is not /ssu/{publisher}")
