"""Decisions recorded after the fact take effect on the order's date (billing counts from it)."""

from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
from harness import EventProbe, RunningService, event_probe, eventually
from licensing_world import OFFICIAL, almaty_today, application, submit

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def svc():  # type: ignore[no-untyped-def]
    from licensing_world import licensing_service

    async with licensing_service() as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def probe():  # type: ignore[no-untyped-def]
    async with event_probe("licensing.license.#") as p:
        yield p


async def events_of(probe: EventProbe, number: str, count: int) -> list[dict[str, Any]]:
    async def enough() -> list[dict[str, Any]]:
        await probe.pull()
        mine = [e for e in probe.received if e["subject"] == number]
        return mine if len(mine) >= count else []

    return list(await eventually(enough))


async def test_a_license_and_its_suspension_recorded_with_earlier_dates(
    svc: RunningService, probe: EventProbe
) -> None:
    today = almaty_today()
    issued_on = today - timedelta(days=60)
    app = await submit(svc, application(submitted_on=str(issued_on - timedelta(days=3))))
    r = await svc.client.post(
        f"/v1/applications/{app['id']}/approve",
        json={"effective_date": str(issued_on)},
        headers=OFFICIAL,
    )
    assert r.status_code == 201, r.text
    number = r.json()["number"]
    assert number.startswith(f"SSU-63-{issued_on.year}-")

    suspended_on, reinstated_on = issued_on + timedelta(days=9), issued_on + timedelta(days=14)
    r = await svc.client.post(
        f"/v1/licenses/{number}/suspend",
        json={"reason": "fire safety order", "effective_date": str(suspended_on)},
        headers=OFFICIAL,
    )
    assert r.status_code == 200, r.text
    r = await svc.client.post(
        f"/v1/licenses/{number}/reinstate",
        json={"effective_date": str(reinstated_on)},
        headers=OFFICIAL,
    )
    assert r.status_code == 200, r.text
    events = await events_of(probe, number, 3)
    assert [(e["type"], e["data"]["effective_date"], e["data"]["seq"]) for e in events] == [
        ("licensing.license.issued.v1", str(issued_on), 1),
        ("licensing.license.suspended.v1", str(suspended_on), 2),
        ("licensing.license.reinstated.v1", str(reinstated_on), 3),
    ]


async def test_effective_dates_in_the_future_or_before_the_last_change_are_422(
    svc: RunningService,
) -> None:
    today = almaty_today()
    app = await submit(svc, application(submitted_on=str(today - timedelta(days=5))))
    r = await svc.client.post(
        f"/v1/applications/{app['id']}/approve",
        json={"effective_date": str(today + timedelta(days=1))},
        headers=OFFICIAL,
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "effective_date"
    r = await svc.client.post(
        f"/v1/applications/{app['id']}/approve",
        json={"effective_date": str(today - timedelta(days=5))},
        headers=OFFICIAL,
    )
    number = r.json()["number"]
    r = await svc.client.post(
        f"/v1/licenses/{number}/suspend",
        json={"reason": "x", "effective_date": str(today - timedelta(days=6))},
        headers=OFFICIAL,
    )
    assert r.status_code == 422
    assert r.json()["detail"] == (
        "effective_date: must not be before the license's last change "
        f"({today - timedelta(days=5)})"
    )
