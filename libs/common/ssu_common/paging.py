"""Opaque cursors for list endpoints (DESIGN §5: `limit` and `cursor`).

A cursor is the last key of a page, JSON in URL-safe base64. Clients cannot be trusted to send
back what we gave them, so decoding checks the key against the shape its list issues (strictly:
types, lengths and the range of a bigint); anything else is a 422 naming `query.cursor`, never
a value that reaches SQL and fails there as a 500.
"""

import base64
import binascii
import functools
import json
from datetime import datetime
from typing import Annotated, Any, TypeVar, overload
from uuid import UUID

from annotated_types import Interval
from pydantic import TypeAdapter, ValidationError

from ssu_common.problems import field_error

T = TypeVar("T")

# A bigserial key; larger numbers would overflow PostgreSQL's int8.
Seq = Annotated[int, Interval(ge=0, le=2**63 - 1)]
# The key of lists ordered by creation time and id (newest or oldest first).
TimeAndId = tuple[datetime, UUID]

# Far more than any key we issue; bounds the work a hostile cursor can cause.
MAX_CURSOR_CHARS = 1024
_NOT_OURS = "not a cursor this API issued"


def encode_cursor(value: Any) -> str:
    """Wrap the last key of a page so clients cannot depend on its form."""
    raw = json.dumps(value, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@functools.cache
def _adapter(shape: Any) -> TypeAdapter[Any]:
    return TypeAdapter(shape)


@overload
def decode_cursor(cursor: str | None, shape: type[T]) -> T | None: ...
@overload
def decode_cursor(cursor: str | None, shape: Any) -> Any: ...
def decode_cursor(cursor: str | None, shape: Any) -> Any:
    """The key a cursor wraps (None without one), of the shape its list issues, or a 422."""
    if not cursor:
        return None
    if len(cursor) > MAX_CURSOR_CHARS:
        raise field_error("query.cursor", _NOT_OURS)
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        # strict: a number is not a string nor a bool an int; JSON strings still give dates.
        return _adapter(shape).validate_json(raw, strict=True)
    except (binascii.Error, ValueError, ValidationError, RecursionError) as exc:
        raise field_error("query.cursor", _NOT_OURS) from exc
