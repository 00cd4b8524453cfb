"""Opaque cursors for list endpoints (DESIGN §5: `limit` and `cursor`)."""

import base64
import binascii
import json
from typing import Any

from ssu_common.problems import field_error


def encode_cursor(value: Any) -> str:
    """Wrap the last key of a page so clients cannot depend on its form."""
    raw = json.dumps(value, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, default: Any = 0) -> Any:
    """The key a cursor wraps; a cursor we did not issue is a 422 naming `cursor`."""
    if not cursor:
        return default
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise field_error("query.cursor", "not a cursor this API issued") from exc
