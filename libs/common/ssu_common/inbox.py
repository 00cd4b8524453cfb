"""The inbox: event ids are recorded in the handlers' transaction, so each takes effect once."""

from ssu_common.db import Connection


async def claim_many(conn: Connection, events: list[tuple[str, str]]) -> set[str]:
    """Record a batch of events in one statement; the ids that were not recorded before."""
    rows = await conn.fetch(
        "INSERT INTO inbox (event_id, event_type)"
        " SELECT * FROM unnest($1::uuid[], $2::text[])"
        " ON CONFLICT (event_id) DO NOTHING RETURNING event_id::text",
        [event_id for event_id, _ in events],
        [event_type for _, event_type in events],
    )
    return {r["event_id"] for r in rows}


async def release(conn: Connection, event_id: str) -> None:
    """Forget a claim whose effect failed, so that a redelivery applies the event."""
    await conn.execute("DELETE FROM inbox WHERE event_id = $1", event_id)
