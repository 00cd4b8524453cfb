"""The audit log: one record per change, written in the transaction that makes the change.

A record names the actor (the API client and, when the request says so, the official), the
aggregate, the action and the reason. Writers only insert, so no writer waits for another; the
sealer (`ssu_common.seal`) later puts the committed records in a Merkle tree and signs its head.
"""

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import unquote

from ssu_common.context import current_causation_id, current_correlation_id
from ssu_common.db import Connection

OFFICIAL_HEADER = "X-SSU-Official"
_OFFICIAL_MAX = 200


@dataclass(frozen=True)
class Actor:
    """Who acts: the API client (or `system` for events and timers) and, if named, the official."""

    client: str
    official: str | None = None


SYSTEM = Actor("system")
ANONYMOUS = Actor("anonymous")
_actor: ContextVar[Actor] = ContextVar("audit_actor", default=SYSTEM)


def current_actor() -> Actor:
    return _actor.get()


@contextmanager
def acting_as(actor: Actor) -> Iterator[None]:
    """Attribute every record written inside to `actor` (the HTTP kit sets it per request)."""
    token = _actor.set(actor)
    try:
        yield
    finally:
        _actor.reset(token)


class BadOfficial(ValueError):
    """The official a request names cannot be kept as given."""


def official_from_header(value: str | None) -> str | None:
    """The official a request names: an identifier or a name, UTF-8 percent-encoded (header
    values are ASCII), printable and at most 200 characters once decoded."""
    if value is None:
        return None
    try:
        decoded = unquote(value.strip(), errors="strict")
    except UnicodeDecodeError:
        raise BadOfficial("is not UTF-8 once percent-decoded") from None
    if not decoded:
        raise BadOfficial("is empty")
    if len(decoded) > _OFFICIAL_MAX:
        raise BadOfficial(f"is longer than {_OFFICIAL_MAX} characters")
    if not decoded.isprintable():
        raise BadOfficial("holds control characters")
    return decoded


@dataclass(frozen=True)
class Aggregate:
    """What a record is about: `Aggregate("license", "KZ-2026-000001")`."""

    type: str
    id: str


class AuditOutsideTransaction(RuntimeError):
    """A record must commit or roll back with its change."""


_INSERT = (
    "INSERT INTO audit_records (client, official, aggregate_type, aggregate_id, action, reason,"
    " correlation_id, causation_id) SELECT $1, $2, a.type, a.id, $3, $4, $5, $6"
    " FROM unnest($7::text[], $8::text[]) AS a(type, id)"
)


async def record(
    conn: Connection, *, aggregate: Aggregate, action: str, reason: str | None = None
) -> None:
    """Record a change (or a read of personal data) in the caller's transaction."""
    await record_many(conn, aggregates=[aggregate], action=action, reason=reason)


async def record_many(
    conn: Connection, *, aggregates: Sequence[Aggregate], action: str, reason: str | None = None
) -> None:
    """One record per aggregate, in one statement (mass disruptions, list reads)."""
    if not aggregates:
        return
    if not conn.is_in_transaction():
        raise AuditOutsideTransaction(f"audit record of {action} outside a transaction")
    actor = current_actor()
    await conn.execute(
        _INSERT,
        actor.client,
        actor.official,
        action,
        reason,
        current_correlation_id(),
        current_causation_id(),
        [a.type for a in aggregates],
        [a.id for a in aggregates],
    )


async def record_reads(
    conn: Connection, *, aggregates: Sequence[Aggregate], action: str, reason: str | None = None
) -> None:
    """Record reads of personal data: one statement, before the answer leaves (a read changes
    nothing, so it needs no transaction of its own; if the record fails, nothing is answered)."""
    if not aggregates:
        return
    actor = current_actor()
    await conn.execute(
        _INSERT,
        actor.client,
        actor.official,
        action,
        reason,
        current_correlation_id(),
        current_causation_id(),
        [a.type for a in aggregates],
        [a.id for a in aggregates],
    )


async def record_refused(
    conn: Connection, *, method: str, route: str, status: int, correlation_id: str
) -> None:
    """An access record of a refused request (4xx): no change, so its own small transaction."""
    actor = current_actor()
    await conn.execute(
        "INSERT INTO audit_records (client, official, aggregate_type, aggregate_id, action,"
        " reason, correlation_id) VALUES ($1, $2, 'route', $3, 'request.refused', $4, $5)",
        actor.client,
        actor.official,
        f"{method} {route}",
        f"status {status}",
        correlation_id,
    )


def canonical_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class AuditRecord:
    id: int
    at: datetime
    client: str
    official: str | None
    aggregate_type: str
    aggregate_id: str
    action: str
    reason: str | None
    correlation_id: str
    causation_id: str | None
    leaf_index: int | None = None
    leaf_hash: bytes | None = None

    def canonical(self) -> bytes:
        """The bytes a Merkle leaf hashes: JSON, keys sorted, no spaces, UTF-8."""
        return json.dumps(
            {
                "id": self.id,
                "at": canonical_time(self.at),
                "client": self.client,
                "official": self.official,
                "aggregate_type": self.aggregate_type,
                "aggregate_id": self.aggregate_id,
                "action": self.action,
                "reason": self.reason,
                "correlation_id": self.correlation_id,
                "causation_id": self.causation_id,
            },
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()


async def page(
    conn: Connection, *, after_id: int, limit: int, client: str | None
) -> list[AuditRecord]:
    rows = await conn.fetch(
        "SELECT id, at, client, official, aggregate_type, aggregate_id, action, reason,"
        " correlation_id, causation_id, leaf_index, leaf_hash FROM audit_records"
        " WHERE id > $1 AND ($2::text IS NULL OR client = $2) ORDER BY id LIMIT $3",
        after_id,
        client,
        limit,
    )
    return [AuditRecord(**dict(r)) for r in rows]
