"""What someone who reads a service's database directly would see."""

from typing import Any


async def raw_dump(pool: Any, *, skip: tuple[str, ...] = ("outbox",)) -> str:
    """Every row of every table of a database, as PostgreSQL prints it (bytea as hex, and
    also decoded as UTF-8, so clear bytes would show). The outbox is skipped: it carries the
    events' data until it is published and cleared after its retention period."""
    tables = await pool.fetch(
        "SELECT table_name FROM information_schema.tables"
        " WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
    )
    parts = []
    for t in tables:
        name = t["table_name"]
        if name in skip:
            continue
        rows = await pool.fetch(f'SELECT to_jsonb(x)::text AS j FROM "{name}" x')  # noqa: S608
        parts += [r["j"] for r in rows]
        cols = await pool.fetch(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_name = $1 AND data_type = 'bytea'",
            name,
        )
        for c in cols:
            values = await pool.fetch(f'SELECT "{c["column_name"]}" AS v FROM "{name}"')  # noqa: S608
            parts += [v["v"].decode("utf-8", "replace") for v in values if v["v"] is not None]
    return "\n".join(parts)
