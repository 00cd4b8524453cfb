"""Opaque cursors for list endpoints (DESIGN §5: `limit` and `cursor`).

A cursor is the last key of a page, JSON in URL-safe base64. Clients cannot be trusted to send
back what we gave them, so decoding checks the key against the shape its list issues (strictly:
types, lengths and the range of a bigint); anything else is a 422 naming `query.cursor`, never
a value that reaches SQL and fails there as a 500.
"""

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Annotated, TypeAlias, TypeVar, cast
from uuid import UUID

from annotated_types import Interval
from pydantic import TypeAdapter, ValidationError

from ssu_common.problems import field_error

T = TypeVar("T")

# A bigserial key; larger numbers would overflow PostgreSQL's int8.
Seq = Annotated[int, Interval(ge=0, le=2**63 - 1)]
# The key of lists ordered by creation time and id (newest or oldest first).
# Passed as a value (`decode_cursor(cursor, TimeAndId)`), so declared as one: a bare alias is a
# special form to mypy and would lose the key's type.
TimeAndId: type[tuple[datetime, UUID]] = tuple[datetime, UUID]
# What a page's last key is made of: JSON, with dates and UUIDs (json.dumps writes them through
# `str`).
CursorKey: TypeAlias = (
    "str | int | float | bool | date | UUID | Sequence[CursorKey] | Mapping[str, CursorKey] | None"
)

# Far more than any key we issue; bounds the work a hostile cursor can cause.
MAX_CURSOR_CHARS = 1024
_NOT_OURS = "not a cursor this API issued"


def encode_cursor(value: CursorKey) -> str:
    """Wrap the last key of a page so clients cannot depend on its form."""
    raw = json.dumps(value, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# One adapter per shape, built at its first cursor (a dict, as `functools.cache` would be: its
# wrapper asks for a Hashable that mypy does not see a type as).
_ADAPTERS: dict[object, TypeAdapter[object]] = {}


def _adapter(shape: type[object]) -> TypeAdapter[object]:
    adapter = _ADAPTERS.get(shape)
    if adapter is None:
        adapter = _ADAPTERS[shape] = TypeAdapter(shape)
    return adapter


def decode_cursor(cursor: str | None, shape: type[T]) -> T | None:
    """The key a cursor wraps (None without one), of the shape its list issues, or a 422."""
    if not cursor:
        return None
    if len(cursor) > MAX_CURSOR_CHARS:
        raise field_error("query.cursor", _NOT_OURS)
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        # strict: a number is not a string nor a bool an int; JSON strings still give dates.
        # The cache forgets T; the adapter was built from `shape`, so it validates to a T.
        adapter = cast("TypeAdapter[T]", _adapter(shape))
        return adapter.validate_json(raw, strict=True)
    except (binascii.Error, ValueError, ValidationError, RecursionError) as exc:
        raise field_error("query.cursor", _NOT_OURS) from exc
