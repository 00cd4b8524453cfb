"""Events in: every notified event, the contact sources, and whatever webhooks may subscribe to."""

from ssu_common import Connection, EventHandler
from ssu_contracts import Envelope, Event

from ssu_notification import service


async def on_event(conn: Connection, envelope: Envelope, data: Event) -> None:
    await service.handle_event(conn=conn, envelope=envelope, data=data)


HANDLERS: dict[str, EventHandler] = {event_type: on_event for event_type in service.CONSUMED}
