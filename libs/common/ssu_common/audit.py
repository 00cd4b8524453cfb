"""The audit trail: a hash chain of every write through the API (who, what, when).

A record's hash covers its fields and the previous record's hash, so editing a record changes
its hash and deleting one breaks the link of the next; `verify` finds both.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ssu_common.db import Connection

GENESIS = "0" * 64
# One writer at a time extends the chain; the lock is per database, so per service.
_AUDIT_LOCK = 582_031_774


@dataclass(frozen=True)
class AuditEntry:
    client: str
    method: str
    path: str
    route: str
    status: int
    correlation_id: str
    body_sha256: str | None
    body_bytes: int


def record_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


def _fields(at: datetime, e: AuditEntry | Any) -> dict[str, Any]:
    return {
        "at": at.astimezone(UTC).isoformat(),
        "client": e.client,
        "method": e.method,
        "path": e.path,
        "route": e.route,
        "status": e.status,
        "correlation_id": e.correlation_id,
        "body_sha256": e.body_sha256,
        "body_bytes": e.body_bytes,
    }


async def append(conn: Connection, entry: AuditEntry) -> None:
    """Add a record at the end of the chain."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _AUDIT_LOCK)
        prev = await conn.fetchval("SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1")
        prev_hash = prev or GENESIS
        at = datetime.now(UTC)
        await conn.execute(
            "INSERT INTO audit_log (at, client, method, path, route, status, correlation_id,"
            " body_sha256, body_bytes, prev_hash, hash)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            at,
            entry.client,
            entry.method,
            entry.path,
            entry.route,
            entry.status,
            entry.correlation_id,
            entry.body_sha256,
            entry.body_bytes,
            prev_hash,
            record_hash(prev_hash, _fields(at, entry)),
        )


@dataclass(frozen=True)
class ChainBreak:
    record_id: int
    problem: str


async def verify(conn: Connection) -> tuple[int, list[ChainBreak]]:
    """Walk the chain; returns the records checked and every break found."""
    breaks: list[ChainBreak] = []
    prev_hash = GENESIS
    checked = 0
    async with conn.transaction():
        async for row in conn.cursor("SELECT * FROM audit_log ORDER BY id"):
            checked += 1
            if row["prev_hash"] != prev_hash:
                breaks.append(ChainBreak(row["id"], "a record before it was deleted or altered"))
            if record_hash(row["prev_hash"], _fields(row["at"], _Row(row))) != row["hash"]:
                breaks.append(ChainBreak(row["id"], "the record was edited"))
            prev_hash = row["hash"]
    return checked, breaks


class _Row:
    def __init__(self, row: Any) -> None:
        for key in (
            "client",
            "method",
            "path",
            "route",
            "status",
            "correlation_id",
            "body_sha256",
            "body_bytes",
        ):
            setattr(self, key, row[key])


async def page(
    conn: Connection, *, after_id: int, limit: int, client: str | None
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT id, at, client, method, path, route, status, correlation_id, body_sha256,"
        " body_bytes, hash FROM audit_log WHERE id > $1 AND ($2::text IS NULL OR client = $2)"
        " ORDER BY id LIMIT $3",
        after_id,
        client,
        limit,
    )
    return [dict(r) for r in rows]
