"""The envelopes the services write are CloudEvents the CloudEvents SDK reads (issue 14):
real outbox rows of a running registry, read with `cloudevents` (JSONFormat, v1.0), written
back and read by our own Envelope to the same event; absent attributes are left out (the SDK
refuses a null `subject`), and `dataschema` names the JSON Schema of the data by its `$id`."""

import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from harness import ADMIN, RunningService, reset_service, running_service, settings_for
from ssu_contracts import Envelope, make_event
from ssu_contracts.events import WaitingJoinedV1
from ssu_registry.main import build
from ssu_registry.settings import Settings

sys.path.insert(0, str(Path(__file__).parents[1] / "registry"))
from registry_world import provider_with, register

pytestmark = pytest.mark.asyncio(loop_scope="session")
SCHEMAS = Path(__file__).parents[2] / "contracts" / "schemas"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def svc() -> AsyncIterator[RunningService]:
    await reset_service("registry")
    async with running_service(build(settings_for(Settings, "registry"))) as running:
        yield running


async def outbox_rows(svc: RunningService) -> list[dict[str, Any]]:
    async with svc.pool.acquire() as conn:
        rows = await conn.fetch("SELECT event_type, body FROM outbox ORDER BY id")
    return [dict(r) for r in rows]


async def test_real_outbox_rows_round_trip_through_the_sdk(svc: RunningService) -> None:
    _, bin_ = await provider_with(svc.client, ADMIN)
    person = await register(svc.client, ADMIN)
    r = await svc.client.post(
        "/v1/enrollments",
        json={"iin": person["iin"], "provider_bin": bin_, "site_id": "S1", "form": "stationary"},
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    rows = await outbox_rows(svc)
    assert {r["event_type"] for r in rows} == {
        "registry.recipient.registered.v1",
        "registry.enrollment.started.v1",
    }
    fmt = JSONFormat()
    for row in rows:
        body = row["body"]
        event = fmt.read(None, body)
        assert isinstance(event, CloudEvent)
        ours = Envelope.from_bytes(body)
        assert (event.get_id(), event.get_type(), event.get_source(), event.get_subject()) == (
            ours.id,
            ours.type,
            ours.source,
            ours.subject,
        )
        assert event.get_dataschema() == f"urn:ssu:schema:{ours.type}"
        schema = json.loads((SCHEMAS / f"{ours.type}.json").read_text(encoding="utf-8"))
        assert schema["$id"] == event.get_dataschema()
        assert event.get_extension("correlationid") == ours.correlationid
        assert event.get_data() == ours.data
        # Written by the SDK and read back by us: the same event.
        assert Envelope.from_bytes(fmt.write(event)) == ours


def test_an_envelope_without_subject_leaves_it_out() -> None:
    sample = WaitingJoinedV1.model_validate(
        {
            "request_id": "w1",
            "iin": "791028302728",
            "region": "630000000",
            "form": "stationary",
            "category": "elderly",
            "asked_on": "2026-02-01",
            "position": 1,
            "waiting": 1,
            "addressee": {"name": "Асем", "language": "ru"},
        }
    )
    envelope = make_event(sample, source="/ssu/registry", subject=None)
    body = json.loads(envelope.to_bytes())
    assert "subject" not in body and "causationid" not in body and "traceparent" not in body
    event = JSONFormat().read(None, envelope.to_bytes())
    assert event.get_subject() is None
    assert Envelope.from_bytes(envelope.to_bytes()) == envelope
