"""An SMS gateway that cannot be reached: retried, then dead with the reason."""

from typing import Any

import pytest
import pytest_asyncio
from harness import eventually
from notification_world import license_fields, new_bin, notification_world, publish
from ssu_contracts import LicenseIssuedV1

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world() -> Any:
    # Nothing listens on the discard port: every call is refused at once.
    async with notification_world(sms_url="http://127.0.0.1:9/sms", max_attempts=2) as w:
        yield w


async def test_unreachable_gateway_makes_the_sms_dead(world: Any) -> None:
    svc, sinks = world
    event = await publish(LicenseIssuedV1(**license_fields(new_bin())))

    async def settled() -> Any:
        rows = await svc.pool.fetch(
            "SELECT channel, status, attempts, last_error FROM deliveries"
            " WHERE event_id = $1 ORDER BY channel",
            event.id,
        )
        return rows if {r["status"] for r in rows} == {"sent", "dead"} else None

    email, sms = await eventually(settled, timeout=15)
    assert (email["channel"], email["status"], email["attempts"]) == ("email", "sent", 1)
    assert (sms["channel"], sms["status"], sms["attempts"]) == ("sms", "dead", 2)
    assert sms["last_error"].startswith("sms: ConnectError")
    assert [m["event_id"] for m in sinks.received.mail].count(event.id) == 1
