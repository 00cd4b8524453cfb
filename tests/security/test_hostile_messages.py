"""Hostile messages on every service's queue: each dead-lettered with a reason, the consumer
stays up, and the next good message is applied."""

import json
import uuid
from datetime import date
from pathlib import Path

import aio_pika
import pytest
from harness import AMQP_URL, RunningService, eventually, publish_raw, read_dlq
from ssu_common import REASON_HEADER
from ssu_contracts import EnrollmentStartedV1, LicenseIssuedV1, make_bin, make_event

from services import all_services

BIN = make_bin(date(2015, 5, 5), 77)


def good_event(service: str) -> bytes:
    if service == "licensing":
        data: object = EnrollmentStartedV1(
            enrollment_id=str(uuid.uuid4()),
            iin="791028302728",
            provider_bin=BIN,
            license_number="SSU-63-2026-000009",
            site_id="s1",
            region="630000000",
            form="home",
            category="elderly",
            start_date=date(2026, 11, 1),
            addressee={
                "name": "Айгүл",
                "language": "kk",
                "is_guardian": False,
                "phone": "+77011234567",
            },
        )
    else:
        data = LicenseIssuedV1(
            license_number="SSU-63-2026-000009",
            bin=BIN,
            provider_name="Қамқор",
            legal_form="ngo",
            region="630000000",
            contact={"email": "info@kamkor.kz", "language": "ru"},
            subtypes=[{"form": "home", "category": "elderly"}],
            sites=[{"site_id": "s1", "address": "Өскемен", "kato": "631010000", "places": None}],
            status="active",
            seq=1,
            effective_date=date(2026, 11, 1),
        )
    source = "/ssu/registry" if service == "licensing" else "/ssu/licensing"
    return make_event(data, source=source, subject="hostile").to_bytes()  # type: ignore[arg-type]


def hostile(service: str) -> list[tuple[str, aio_pika.Message]]:
    good = json.loads(good_event(service))
    wrong_types = {
        **good,
        "id": str(uuid.uuid4()),
        "data": {**good["data"], "start_date": 17, "seq": "first"},
    }
    unknown = {**good, "id": str(uuid.uuid4()), "type": "evil.takeover.v1"}
    return [
        ("binary garbage", aio_pika.Message(b"\x00\xff\xfe garbage", message_id="m1")),
        ("not an envelope", aio_pika.Message(b"[1, 2, 3]", message_id="m2")),
        (
            "wrong types",
            aio_pika.Message(json.dumps(wrong_types).encode(), message_id=wrong_types["id"]),
        ),
        ("unknown type", aio_pika.Message(json.dumps(unknown).encode(), message_id=unknown["id"])),
        ("huge", aio_pika.Message(b'{"pad": "' + b"x" * 3_000_000 + b'"}', message_id="m5")),
        (
            "missing properties",
            aio_pika.Message(json.dumps({**good, "id": str(uuid.uuid4())}).encode()),
        ),
    ]


@pytest.fixture(scope="module")
async def services(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    async with all_services(tmp_path_factory.mktemp("keys")) as running:
        yield running


@pytest.mark.parametrize("service", ["licensing", "registry", "billing", "notification"])
async def test_hostile_messages_are_dead_lettered_and_the_consumer_goes_on(
    services: dict[str, RunningService],
    service: str,
    tmp_path: Path,
) -> None:
    svc = services[service]
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        for _, message in hostile(service):
            await channel.default_exchange.publish(message, routing_key=f"{service}.events")
    # The next good event, from the service that publishes its type, through `ssu.events`.
    good = good_event(service)
    good_id = json.loads(good)["id"]
    await publish_raw(good, routing_key=json.loads(good)["type"])

    async def applied() -> bool:
        return bool(await svc.pool.fetchval("SELECT 1 FROM inbox WHERE event_id = $1", good_id))

    assert await eventually(applied, timeout=20)
    dead = await read_dlq(service, expect=6)
    reasons = [m.headers[REASON_HEADER] for m in dead]
    print(f"{service}: dead-lettered {len(dead)}: {reasons}")
    assert len(dead) == 6
    assert all(r.startswith("invalid message:") for r in reasons)
    assert "evil.takeover.v1" in reasons[3]
    assert "larger than" in reasons[4]
    # aio-pika fills in a random message id when none is given: it cannot match the event.
    assert "is not the event id" in reasons[5]
    ready = await svc.client.get("/health/ready")
    assert ready.status_code == 200
