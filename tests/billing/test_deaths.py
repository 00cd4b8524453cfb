"""Deaths reach billing as registry's de-registrations for death and fill `deaths`."""

import uuid
from collections.abc import AsyncIterator
from datetime import date

import pytest_asyncio
from billing_world import feed, issued, new_bin, new_iin, started
from harness import ADMIN, RunningService, eventually, reset_service, running_service, settings_for
from ssu_billing.main import build
from ssu_billing.settings import Settings
from ssu_contracts import RecipientDeregisteredV1
from ssu_registry.main import build as build_registry
from ssu_registry.settings import Settings as RegistrySettings


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def svc() -> AsyncIterator[RunningService]:
    await reset_service("billing")
    async with running_service(build(settings_for(Settings, "billing"))) as running:  # type: ignore[arg-type]
        yield running


def deregistered(
    iin: str, on: date, reason: str = "died", version: int = 2
) -> RecipientDeregisteredV1:
    return RecipientDeregisteredV1(
        iin=iin,
        region="630000000",
        category="elderly",
        reason=reason,  # type: ignore[arg-type]
        deregistered_on=on,
        version=version,
    )


async def enrolled(svc: RunningService, iin: str) -> str:
    """An enrollment of the person, so `deaths` is read by the same blind index as the run."""
    e = started(str(uuid.uuid4()), iin, new_bin(), "KZ-1", date(2026, 1, 3))
    await feed(svc, e)
    return e.enrollment_id


DIED_ON = (
    "SELECT d.died_on FROM deaths d JOIN enrollments e USING (iin_index) WHERE e.enrollment_id = $1"
)


async def test_a_death_fills_deaths_by_the_enrollments_blind_index(svc: RunningService) -> None:
    iin = new_iin()
    enrollment = await enrolled(svc, iin)
    before = await svc.pool.fetchval("SELECT count(*) FROM deaths")
    await feed(svc, deregistered(iin, date(2026, 2, 14)))
    assert await svc.pool.fetchval(DIED_ON, enrollment) == date(2026, 2, 14)
    assert await svc.pool.fetchval("SELECT count(*) FROM deaths") == before + 1


async def test_a_redelivered_death_and_a_later_date_change_nothing(svc: RunningService) -> None:
    iin = new_iin()
    enrollment = await enrolled(svc, iin)
    await feed(svc, deregistered(iin, date(2026, 2, 14)))
    await feed(svc, deregistered(iin, date(2026, 2, 14)))
    await feed(svc, deregistered(iin, date(2026, 3, 1), version=4))
    assert await svc.pool.fetchval(DIED_ON, enrollment) == date(2026, 2, 14)


async def test_an_earlier_date_of_death_wins(svc: RunningService) -> None:
    iin = new_iin()
    enrollment = await enrolled(svc, iin)
    await feed(svc, deregistered(iin, date(2026, 2, 14)))
    await feed(svc, deregistered(iin, date(2026, 2, 2), version=4))
    assert await svc.pool.fetchval(DIED_ON, enrollment) == date(2026, 2, 2)


async def test_a_deregistration_for_another_reason_is_no_death(svc: RunningService) -> None:
    iin = new_iin()
    enrollment = await enrolled(svc, iin)
    before = await svc.pool.fetchval("SELECT count(*) FROM deaths")
    await feed(svc, deregistered(iin, date(2026, 2, 14), reason="moved"))
    await feed(svc, deregistered(iin, date(2026, 2, 15), reason="declined"))
    assert await svc.pool.fetchval(DIED_ON, enrollment) is None
    assert await svc.pool.fetchval("SELECT count(*) FROM deaths") == before


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def registry() -> AsyncIterator[RunningService]:
    await reset_service("registry")
    settings = settings_for(RegistrySettings, "registry")
    async with running_service(build_registry(settings)) as running:  # type: ignore[arg-type]
        yield running


async def test_a_notice_of_death_in_registry_reaches_billings_deaths(
    svc: RunningService, registry: RunningService
) -> None:
    """Through the broker: registry's notice ends the enrollment and fills billing's `deaths`."""
    bin_, number, iin = new_bin(), f"LIC-{uuid.uuid4().hex[:10]}", new_iin()
    await feed(svc, issued(bin_, number, date(2026, 1, 1)))

    async def listed() -> bool:
        r = await registry.client.get("/v1/providers", params={"bin": bin_}, headers=ADMIN)
        return bool(r.json()["items"])

    await eventually(listed, timeout=30)
    recipient = {
        "iin": iin,
        "full_name": "Жанар Омарова",
        "birth_date": "1950-05-17",
        "category": "elderly",
        "region": "630000000",
        "language": "kk",
    }
    r = await registry.client.post("/v1/recipients", json=recipient, headers=ADMIN)
    assert r.status_code == 201, r.text
    r = await registry.client.post(
        "/v1/enrollments",
        json={"iin": iin, "site_id": "s1", "form": "stationary", "start_date": "2026-02-02"},
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    enrollment = r.json()["id"]
    r = await registry.client.post(
        "/v1/deaths", json={"iin": iin, "died_on": "2026-10-05"}, headers=ADMIN
    )
    assert r.status_code == 200 and r.json()["outcome"] == "recorded", r.text

    async def billed() -> object:
        return await svc.pool.fetchrow(
            "SELECT e.status, e.end_date, d.died_on FROM enrollments e"
            " LEFT JOIN deaths d USING (iin_index) WHERE e.enrollment_id = $1",
            enrollment,
        )

    async def arrived() -> bool:
        row = await billed()
        return row is not None and row["died_on"] is not None and row["status"] == "ended"  # type: ignore[index]

    await eventually(arrived, timeout=30)
    assert tuple(await billed()) == ("ended", date(2026, 10, 5), date(2026, 10, 5))  # type: ignore[arg-type]
