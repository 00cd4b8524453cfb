"""Write the JSON Schemas of the events and the AsyncAPI document (`make contracts`)."""

import argparse
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic.json_schema import models_json_schema

from ssu_contracts.envelope import Envelope, schema_uri
from ssu_contracts.events import EVENTS, Event

EXCHANGE = "ssu.events"
CONTRACTS_DIR = Path(__file__).resolve().parent.parent
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_AMQP_BINDING_VERSION = "0.3.0"


def publisher_of(event_type: str) -> str:
    """Service that publishes an event type: the first segment of its routing key."""
    return event_type.split(".", 1)[0]


def source_of(event_type: str) -> str:
    """CloudEvents source of an event type's publisher."""
    return f"/ssu/{publisher_of(event_type)}"


def event_schema(model: type[Event]) -> dict[str, Any]:
    """JSON Schema of an event's data as it is on the wire."""
    schema = model.model_json_schema(mode="serialization")
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": schema_uri(model.event_type),
        "x-event-type": model.event_type,
        "x-publisher": publisher_of(model.event_type),
        **schema,
    }


def asyncapi_document() -> dict[str, Any]:
    """AsyncAPI 3.0.0 document of every event on the `ssu.events` topic exchange."""
    models: list[type[Event]] = [EVENTS[t] for t in sorted(EVENTS)]
    _, defs = models_json_schema(
        [(m, "serialization") for m in [Envelope, *models]],
        ref_template="#/components/schemas/{model}",
    )
    schemas = dict(sorted(defs.get("$defs", {}).items()))

    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for model in models:
        event_type = model.event_type
        name = model.__name__
        publisher = publisher_of(event_type)
        summary = (model.__doc__ or "").strip().splitlines()[0] if model.__doc__ else name
        messages[name] = {
            "name": event_type,
            "title": name,
            "summary": summary,
            "contentType": "application/json",
            "correlationId": {"location": "$message.payload#/correlationid"},
            "payload": {
                "allOf": [
                    {"$ref": "#/components/schemas/Envelope"},
                    {
                        "type": "object",
                        "properties": {
                            "type": {"const": event_type},
                            "source": {"const": source_of(event_type)},
                            "data": {"$ref": f"#/components/schemas/{name}"},
                        },
                    },
                ]
            },
            "bindings": {
                "amqp": {"messageType": event_type, "bindingVersion": _AMQP_BINDING_VERSION}
            },
        }
        channels[event_type] = {
            "address": event_type,
            "title": event_type,
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
            "bindings": {
                "amqp": {
                    "is": "routingKey",
                    "exchange": {
                        "name": EXCHANGE,
                        "type": "topic",
                        "durable": True,
                        "autoDelete": False,
                        "vhost": "/",
                    },
                    "bindingVersion": _AMQP_BINDING_VERSION,
                }
            },
        }
        operations[f"{publisher}.publish.{name}"] = {
            "action": "send",
            "title": f"{publisher} publishes {event_type}",
            "channel": {"$ref": f"#/channels/{event_type}"},
            "messages": [{"$ref": f"#/channels/{event_type}/messages/{name}"}],
            "tags": [{"name": publisher}],
            "bindings": {
                "amqp": {
                    "deliveryMode": 2,
                    "mandatory": False,
                    "bindingVersion": _AMQP_BINDING_VERSION,
                }
            },
        }

    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "ssu events",
            "version": "1.0.0",
            "description": (
                "Events of the ssu suite (licensing, registry, billing, notification). Every "
                "message is a CloudEvents 1.0 event in structured JSON mode published to the "
                f"topic exchange `{EXCHANGE}`; the routing key is the event type."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "rabbitmq": {
                "host": "127.0.0.1:5672",
                "protocol": "amqp",
                "protocolVersion": "0.9.1",
                "description": "RabbitMQ; the exchange `ssu.events` is a durable topic exchange",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def render() -> dict[str, str]:
    """Every generated file, by path relative to the contracts directory."""
    files = {
        f"schemas/{event_type}.json": json.dumps(
            event_schema(EVENTS[event_type]), indent=2, sort_keys=True, ensure_ascii=False
        )
        + "\n"
        for event_type in sorted(EVENTS)
    }
    files["asyncapi.yaml"] = yaml.safe_dump(
        asyncapi_document(), sort_keys=False, allow_unicode=True, width=100
    )
    return files


def generate(out_dir: Path = CONTRACTS_DIR) -> list[Path]:
    """Write every generated file under out_dir, removing schemas no event has any more."""
    files = render()
    schemas_dir = out_dir / "schemas"
    schemas_dir.mkdir(parents=True, exist_ok=True)
    for stale in schemas_dir.glob("*.json"):
        if f"schemas/{stale.name}" not in files:
            stale.unlink()
    written = []
    for relative, content in files.items():
        path = out_dir / relative
        path.write_text(content, encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=CONTRACTS_DIR, help="contracts directory")
    args = parser.parse_args(argv)
    for path in generate(args.out):
        print(path)


if __name__ == "__main__":
    main()
