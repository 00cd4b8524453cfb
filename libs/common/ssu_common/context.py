"""Correlation and causation of the work in progress, carried into logs and outgoing events."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import structlog

_correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)
_causation_id: ContextVar[str | None] = ContextVar("causation_id", default=None)


def current_correlation_id() -> str:
    """The correlation id of the request or event being handled, or a fresh one."""
    return _correlation_id.get() or str(uuid.uuid4())


def current_causation_id() -> str | None:
    """The id of the event being handled, if the work was caused by one."""
    return _causation_id.get()


@contextmanager
def work_context(
    *, correlation_id: str, causation_id: str | None = None, **log_context: str
) -> Iterator[None]:
    """Bind correlation (and causation) for outgoing events and every log line inside."""
    tokens = (_correlation_id.set(correlation_id), _causation_id.set(causation_id))
    with structlog.contextvars.bound_contextvars(correlation_id=correlation_id, **log_context):
        try:
            yield
        finally:
            _correlation_id.reset(tokens[0])
            _causation_id.reset(tokens[1])
