"""The kit's names for JSON and for the documents it edits."""

from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

__all__ = ["Json", "JsonObject", "OpenApiDocument"]

# What `json.dumps` writes. Read-only containers (Sequence, Mapping), so a caller's `list[str]`
# or `dict[str, int]` is one; pydantic's `JsonValue` (list, dict: invariant) would refuse them.
Json: TypeAlias = "str | int | float | bool | Sequence[Json] | Mapping[str, Json] | None"
JsonObject: TypeAlias = dict[str, Json]

# The OpenAPI document as FastAPI builds it and as `document_*` edit it in place: nested dicts
# walked with `.get`/`.setdefault` whose shapes OpenAPI (not Python) defines. FastAPI itself
# types it `dict[str, Any]`; narrowing each step with isinstance would only add branches, so
# the `Any` stays, named once here.
OpenApiDocument: TypeAlias = dict[str, Any]  # type: ignore[explicit-any]
