"""The timed end of a suspension survives a restart: its state is in the database."""

from datetime import timedelta

import pytest
from harness import eventually, running_service, settings_for
from licensing_world import OFFICIAL, almaty_today, issue, licensing_service
from ssu_licensing.main import build
from ssu_licensing.settings import Settings

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_suspension_due_while_the_service_was_down_ends_when_it_starts() -> None:
    today = almaty_today()
    async with licensing_service(suspension_check_seconds=3600) as first:
        number = (await issue(first))["number"]
        r = await first.client.post(
            f"/v1/licenses/{number}/suspend",
            json={"reason": "repairs", "until": str(today + timedelta(days=2))},
            headers=OFFICIAL,
        )
        assert r.status_code == 200
    # While it is down, the end date comes.
    settings = settings_for(Settings, "licensing", suspension_check_seconds=3600)
    async with running_service(build(settings)) as second:  # type: ignore[arg-type]
        await second.pool.execute(
            "UPDATE licenses SET suspended_until = $2 WHERE number = $1", number, today
        )
    async with running_service(build(settings)) as third:  # type: ignore[arg-type]

        async def reinstated() -> object:
            lic = (await third.client.get(f"/v1/licenses/{number}")).json()
            return lic["status"] == "active" and lic

        lic = await eventually(reinstated)
        assert (lic["seq"], lic["status_since"], lic["suspended_until"]) == (
            3,
            today.isoformat(),
            None,
        )
