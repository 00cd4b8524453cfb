"""Write the JSON Schemas of the events and the AsyncAPI document (`make contracts`)."""

import argparse
import json
from pathlib import Path

import yaml
from pydantic import BaseModel
from pydantic.json_schema import JsonDict, models_json_schema

from ssu_contracts.envelope import Envelope, schema_uri
from ssu_contracts.events import EVENTS, Event

EXCHANGE = "ssu.events"
DEAD_LETTER_EXCHANGE = "ssu.dlx"
# What the relay publishes: a structured-mode CloudEvent (ssu_common.messaging.CONTENT_TYPE).
CONTENT_TYPE = "application/cloudevents+json"
DEAD_LETTER_REASON = "x-ssu-dead-letter-reason"
CONTRACTS_DIR = Path(__file__).resolve().parent.parent
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_AMQP_BINDING_VERSION = "0.3.0"


def publisher_of(event_type: str) -> str:
    """Service that publishes an event type: the first segment of its routing key."""
    return event_type.split(".", 1)[0]


def source_of(event_type: str) -> str:
    """CloudEvents source of an event type's publisher."""
    return f"/ssu/{publisher_of(event_type)}"


def event_schema(model: type[Event]) -> JsonDict:
    """JSON Schema of an event's data as it is on the wire."""
    schema = model.model_json_schema(mode="serialization")
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": schema_uri(model.event_type),
        "x-event-type": model.event_type,
        "x-publisher": publisher_of(model.event_type),
        **schema,
    }


def _queue_channel(name: str, messages: JsonDict, description: str) -> JsonDict:
    return {
        "address": name,
        "title": name,
        "description": description,
        "messages": messages,
        "bindings": {
            "amqp": {
                "is": "queue",
                "queue": {
                    "name": name,
                    "durable": True,
                    "exclusive": False,
                    "autoDelete": False,
                    "vhost": "/",
                },
                "bindingVersion": _AMQP_BINDING_VERSION,
            }
        },
    }


def _receivers(
    consumers: dict[str, tuple[str, ...]],
    models: list[type[Event]],
    channels: JsonDict,
    operations: JsonDict,
) -> None:
    """Per consuming service: its queue (bound to the event types it handles), the queue its
    dead letters go to, and a `receive` operation on each."""
    by_type = {m.event_type: m.__name__ for m in models}
    for service, event_types in sorted(consumers.items()):
        names = sorted(by_type[t] for t in event_types if t in by_type)
        messages: JsonDict = {n: {"$ref": f"#/components/messages/{n}"} for n in names}
        queue, dlq = f"{service}.events", f"{service}.events.dlq"
        channels[queue] = _queue_channel(
            queue,
            messages,
            f"{service}'s quorum queue, bound to `{EXCHANGE}` by each event type it handles; "
            f"a message that fails for good is dead-lettered through `{DEAD_LETTER_EXCHANGE}`",
        )
        channels[dlq] = _queue_channel(
            dlq,
            dict(messages),
            f"what {service} could not process, kept for an operator; the header "
            f"`{DEAD_LETTER_REASON}` says why",
        )
        for kind, channel in (("receive", queue), ("receive_dead_letters", dlq)):
            operations[f"{service}.{kind}"] = {
                "action": "receive",
                "title": f"{service} consumes {channel}",
                "channel": {"$ref": f"#/channels/{channel}"},
                "messages": [{"$ref": f"#/channels/{channel}/messages/{n}"} for n in names],
                "tags": [{"name": service}],
                "bindings": {"amqp": {"ack": True, "bindingVersion": _AMQP_BINDING_VERSION}},
            }


def _consumers() -> dict[str, tuple[str, ...]]:
    """Who consumes what: the suite's topology (ssu_common), read only when generating."""
    from ssu_common.topology import CONSUMERS

    return CONSUMERS


def asyncapi_document(consumers: dict[str, tuple[str, ...]] | None = None) -> JsonDict:
    """AsyncAPI 3.0.0 document of every event on the `ssu.events` topic exchange: who sends
    each, and who receives them from which queue (with its dead-letter queue)."""
    models: list[type[Event]] = [EVENTS[t] for t in sorted(EVENTS)]
    documented: list[type[BaseModel]] = [Envelope, *models]
    _, defs = models_json_schema(
        [(m, "serialization") for m in documented],
        ref_template="#/components/schemas/{model}",
    )
    schemas = dict(sorted(defs.get("$defs", {}).items()))

    channels: JsonDict = {}
    operations: JsonDict = {}
    messages: JsonDict = {}
    for model in models:
        event_type = model.event_type
        name = model.__name__
        publisher = publisher_of(event_type)
        summary = (model.__doc__ or "").strip().splitlines()[0] if model.__doc__ else name
        messages[name] = {
            "name": event_type,
            "title": name,
            "summary": summary,
            "contentType": CONTENT_TYPE,
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
                    "mandatory": True,
                    "bindingVersion": _AMQP_BINDING_VERSION,
                }
            },
        }

    _receivers(consumers or {}, models, channels, operations)
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "ssu events",
            "version": "1.0.0",
            "description": (
                "Events of the ssu suite (licensing, registry, billing, notification). Every "
                "message is a CloudEvents 1.0 event in structured JSON mode "
                f"(`{CONTENT_TYPE}`), persistent and mandatory, published with publisher "
                f"confirms to the topic exchange `{EXCHANGE}`; the routing key is the event "
                "type, the AMQP message id the event id. Each consuming service reads its own "
                "quorum queue `<service>.events` and acknowledges after its inbox recorded the "
                f"event; what fails for good goes to `<service>.events.dlq` through "
                f"`{DEAD_LETTER_EXCHANGE}`. Each event's data has a JSON Schema whose `$id` the "
                "envelope names in `dataschema`."
            ),
        },
        "defaultContentType": CONTENT_TYPE,
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
        asyncapi_document(_consumers()), sort_keys=False, allow_unicode=True, width=100
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
