"""The inbox: event ids are recorded in the handlers' transaction, so each takes effect once."""

from datetime import timedelta

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


async def prune(conn: Connection, *, older_than: timedelta, batch: int = 5000) -> int:
    """Forget ids received before `older_than` ago, a batch per statement; how many went.

    The window must be longer than any redelivery can come late (SECURITY.md, retention): an id
    forgotten too early lets a late copy apply its event a second time."""
    total = 0
    while True:
        result = await conn.execute(
            "DELETE FROM inbox WHERE event_id IN (SELECT event_id FROM inbox"
            " WHERE received_at < now() - $1::interval ORDER BY received_at LIMIT $2)",
            older_than,
            batch,
        )
        deleted = int(result.split()[-1])
        total += deleted
        if deleted < batch:
            return total
