"""A license issued becomes a delivery for the provider, sent and listed by the API."""

from typing import Any

import pytest
import pytest_asyncio
from harness import ADMIN, eventually
from notification_world import license_fields, new_bin, notification_world, publish
from ssu_contracts import LicenseIssuedV1

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world() -> Any:
    async with notification_world() as w:
        yield w


async def test_license_issued_is_mailed_to_the_provider_and_listed(world: Any) -> None:
    svc, sinks = world
    bin_ = new_bin()
    env = await publish(LicenseIssuedV1(**license_fields(bin_, phone=None)))

    async def sent() -> Any:
        r = await svc.client.get(
            "/v1/deliveries", params={"event_id": env.id, "status": "sent"}, headers=ADMIN
        )
        assert r.status_code == 200, r.text
        return r.json()["items"]

    items = await eventually(sent)
    assert len(items) == 1
    item = items[0]
    assert item["event_id"] == env.id
    assert item["event_type"] == "licensing.license.issued.v1"
    assert item["audience"] == "provider"
    assert item["addressee"] == f"provider:{bin_}"
    assert item["channel"] == "email"
    assert item["destination"] == "o***@umit.kz"
    assert item["language"] == "ru"
    assert item["status"] == "sent"
    assert item["attempts"] == 1
    assert item["subject"] == f"Выдана лицензия № L-{bin_[-6:]}"
    mail = [m for m in sinks.received.mail if m["event_id"] == env.id]
    assert len(mail) == 1
    assert mail[0]["to"] == ["office@umit.kz"]
    assert mail[0]["subject"] == f"Выдана лицензия № L-{bin_[-6:]}"
