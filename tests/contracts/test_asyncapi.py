"""The AsyncAPI document tells the truth (issue 14): validated by the maintained AsyncAPI parser
(@asyncapi/parser, run with the machine's Node.js), and held to what the suite does: every
event sent by its publisher, mandatory and persistent, in CloudEvents' content type; every
consuming service's queue and dead-letter queue received from, with exactly the event types
its handlers take (ssu_common.topology)."""

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from ssu_common.messaging import CONTENT_TYPE
from ssu_common.topology import CONSUMERS
from ssu_contracts import EVENTS

ROOT = Path(__file__).parents[2]
DOCUMENT = ROOT / "contracts" / "asyncapi.yaml"
PARSER = Path(__file__).parent / "asyncapi"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(DOCUMENT.read_text(encoding="utf-8"))
    return loaded


def test_the_maintained_parser_finds_no_error_nor_warning() -> None:
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node and npm, "Node.js and npm are needed (Debian: nodejs, npm)"
    if not (PARSER / "node_modules" / "@asyncapi" / "parser").exists():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--silent"], cwd=PARSER, check=True, timeout=300
        )
    out = subprocess.run(
        [node, "validate.mjs", str(DOCUMENT)],
        cwd=PARSER,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    result = json.loads(out.stdout)
    assert result["parsed"] is True
    # Severity 0 is an error, 1 a warning; 2 and 3 are information and hints.
    assert [d for d in result["diagnostics"] if d["severity"] <= 1] == []


def test_every_event_is_sent_by_its_publisher_as_the_relay_sends_it(
    document: dict[str, Any],
) -> None:
    assert document["defaultContentType"] == CONTENT_TYPE
    sends = {name: op for name, op in document["operations"].items() if op["action"] == "send"}
    assert sorted(op["channel"]["$ref"].removeprefix("#/channels/") for op in sends.values()) == (
        sorted(EVENTS)
    )
    for name, op in sends.items():
        assert name.split(".", 1)[0] == op["channel"]["$ref"].split("/")[-1].split(".", 1)[0]
        assert op["bindings"]["amqp"]["mandatory"] is True
        assert op["bindings"]["amqp"]["deliveryMode"] == 2
    for message in document["components"]["messages"].values():
        assert message["contentType"] == CONTENT_TYPE


def test_every_consumer_receives_from_its_queue_and_dead_letter_queue(
    document: dict[str, Any],
) -> None:
    names = {model.__name__: t for t, model in EVENTS.items()}
    for service, event_types in CONSUMERS.items():
        for kind, queue in (
            ("receive", f"{service}.events"),
            ("receive_dead_letters", f"{service}.events.dlq"),
        ):
            op = document["operations"][f"{service}.{kind}"]
            assert op["action"] == "receive"
            assert op["channel"]["$ref"] == f"#/channels/{queue}"
            channel = document["channels"][queue]
            assert channel["bindings"]["amqp"]["is"] == "queue"
            assert channel["bindings"]["amqp"]["queue"]["name"] == queue
            received = sorted(names[m.split("/")[-1]] for m in channel["messages"])
            assert received == sorted(event_types), (service, kind)
    receivers = {n.split(".", 1)[0] for n, op in document["operations"].items()
                 if op["action"] == "receive"}  # fmt: skip
    assert receivers == set(CONSUMERS)
