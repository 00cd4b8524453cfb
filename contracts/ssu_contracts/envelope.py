"""CloudEvents 1.0 envelope (structured JSON mode) that carries every event (DESIGN §2)."""

import uuid
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, field_validator

from ssu_contracts.events import EVENTS, Event

E = TypeVar("E", bound=Event)


class UnknownEventType(ValueError):
    """The envelope's type is not in the event registry."""


class Envelope(BaseModel):
    """A CloudEvents 1.0 event with the suite's correlation and causation extensions."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    specversion: Literal["1.0"] = "1.0"
    id: str
    type: str
    source: str
    subject: str | None = None
    time: datetime
    datacontenttype: Literal["application/json"] = "application/json"
    correlationid: str
    causationid: str | None = None
    data: dict[str, Any]

    @field_validator("time")
    @classmethod
    def _aware_utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("time must carry a timezone (UTC)")
        return value.astimezone(UTC)

    def to_bytes(self) -> bytes:
        """JSON body of the envelope."""
        return self.model_dump_json().encode("utf-8")

    @classmethod
    def from_bytes(cls, body: bytes | str) -> "Envelope":
        """Envelope from a JSON body; pydantic ValidationError when it is not one."""
        return cls.model_validate_json(body)


def make_event(
    data: Event,
    *,
    source: str,
    subject: str | None,
    correlation_id: str | None = None,
    causation_id: str | None = None,
) -> Envelope:
    """Wrap an event payload in a new envelope (new id, now in UTC)."""
    return Envelope(
        id=str(uuid.uuid4()),
        type=type(data).event_type,
        source=source,
        subject=subject,
        time=datetime.now(UTC),
        correlationid=correlation_id or str(uuid.uuid4()),
        causationid=causation_id,
        data=data.model_dump(mode="json"),
    )


def model_of(event_type: str) -> type[Event]:
    """Event model registered for a type; UnknownEventType when there is none."""
    try:
        return EVENTS[event_type]
    except KeyError:
        raise UnknownEventType(f"unknown event type {event_type!r}") from None


def parse_data(envelope: Envelope) -> Event:
    """Typed payload of an envelope; UnknownEventType or pydantic ValidationError."""
    return model_of(envelope.type).model_validate(envelope.data)


def parse_as(envelope: Envelope, model: type[E]) -> E:
    """Payload of an envelope as the given model; UnknownEventType when the type differs."""
    if envelope.type != model.event_type:
        raise UnknownEventType(f"expected {model.event_type!r}, got {envelope.type!r}")
    return model.model_validate(envelope.data)
