"""Deaths reach billing as registry's de-registrations for death and fill `deaths`."""

import uuid
from collections.abc import AsyncIterator
from datetime import date

import pytest_asyncio
from billing_world import feed, new_bin, new_iin, started
from harness import RunningService, reset_service, running_service, settings_for
from ssu_billing.main import build
from ssu_billing.settings import Settings
from ssu_contracts import RecipientDeregisteredV1


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
