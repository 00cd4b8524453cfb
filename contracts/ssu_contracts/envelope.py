"""CloudEvents 1.0 envelope (structured JSON mode) that carries every event (DESIGN §2)."""

import uuid
from datetime import UTC, datetime
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

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
    # Not validated: a malformed trace context must not dead-letter a sound event; the
    # propagator ignores what it cannot read.
    traceparent: str | None = Field(
        default=None,
        description="CloudEvents distributed-tracing extension: the W3C traceparent of the span"
        " that emitted the event; absent when the producer exports no traces.",
    )
    dataschema: str | None = Field(
        default=None,
        description="the JSON Schema of `data`: its `$id`, `urn:ssu:schema:<type>` (the schema "
        "is contracts/schemas/<type>.json)",
    )
    # The event's JSON as on the wire, read by its model (`parse_data`). `object`, not
    # `JsonValue`: pydantic would walk every value again and document a `JsonValue` schema.
    data: dict[str, object]

    @field_validator("time")
    @classmethod
    def _aware_utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("time must carry a timezone (UTC)")
        return value.astimezone(UTC)

    def to_bytes(self) -> bytes:
        """JSON body of the envelope."""
        # An absent optional attribute is left out, never sent as null: CloudEvents gives null
        # no meaning and its SDKs refuse it.
        omit = {name for name in _OPTIONAL if getattr(self, name) is None}
        return self.model_dump_json(exclude=omit).encode("utf-8")

    @classmethod
    def from_bytes(cls, body: bytes | str) -> "Envelope":
        """Envelope from a JSON body; pydantic ValidationError when it is not one."""
        return cls.model_validate_json(body)


_OPTIONAL = ("subject", "causationid", "traceparent", "dataschema")


def schema_uri(event_type: str) -> str:
    """The `$id` of an event type's JSON Schema, carried as the envelope's `dataschema`."""
    return f"urn:ssu:schema:{event_type}"


def make_event(
    data: Event,
    *,
    source: str,
    subject: str | None,
    correlation_id: str | None = None,
    causation_id: str | None = None,
    traceparent: str | None = None,
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
        traceparent=traceparent,
        dataschema=schema_uri(type(data).event_type),
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
