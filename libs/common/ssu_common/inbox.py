"""The inbox: an event id is recorded in the handler's transaction, so it takes effect once."""

from ssu_common.db import Connection


async def claim(conn: Connection, *, event_id: str, event_type: str) -> bool:
    """Record the event as handled; False when it already was (a redelivery)."""
    row = await conn.fetchval(
        "INSERT INTO inbox (event_id, event_type) VALUES ($1, $2)"
        " ON CONFLICT (event_id) DO NOTHING RETURNING true",
        event_id,
        event_type,
    )
    return bool(row)
