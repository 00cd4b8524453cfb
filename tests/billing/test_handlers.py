"""Billing's read models, built from licensing and registry events through RabbitMQ."""

import uuid
from collections.abc import AsyncIterator
from datetime import date

import pytest
import pytest_asyncio
from billing_world import (
    disrupted,
    ended,
    feed,
    issued,
    new_bin,
    new_iin,
    reinstated,
    resumed,
    revoked,
    started,
    suspended,
)
from harness import (
    RunningService,
    eventually,
    publish_raw,
    reset_service,
    running_service,
    settings_for,
)
from ssu_billing.main import build
from ssu_billing.settings import Settings
from ssu_contracts import make_event


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def svc() -> AsyncIterator[RunningService]:
    await reset_service("billing")
    async with running_service(build(settings_for(Settings, "billing"))) as running:  # type: ignore[arg-type]
        yield running


async def active_of(svc: RunningService, number: str) -> str:
    return str(
        await svc.pool.fetchval(
            "SELECT active::text FROM licenses WHERE license_number = $1", number
        )
    )


async def test_issued_license_makes_the_provider_known(svc: RunningService) -> None:
    bin_ = new_bin()
    await feed(svc, issued(bin_, "KZ-1", date(2026, 1, 5)))
    row = await svc.pool.fetchrow(
        "SELECT name, region, status, license_number, seq FROM providers WHERE bin = $1", bin_
    )
    assert dict(row) == {
        "name": f"Центр {bin_}",
        "region": "630000000",
        "status": "active",
        "license_number": "KZ-1",
        "seq": 1,
    }
    assert await active_of(svc, "KZ-1") == "{[2026-01-05,)}"


async def test_suspension_until_reinstatement_then_revocation(svc: RunningService) -> None:
    bin_, number = new_bin(), f"KZ-{uuid.uuid4().hex[:8]}"
    await feed(svc, issued(bin_, number, date(2026, 1, 1)))
    await feed(svc, suspended(bin_, number, date(2026, 2, 10), seq=2))
    assert await active_of(svc, number) == "{[2026-01-01,2026-02-10)}"
    await feed(svc, reinstated(bin_, number, date(2026, 2, 20), seq=3))
    assert await active_of(svc, number) == "{[2026-01-01,2026-02-10),[2026-02-20,)}"
    await feed(svc, revoked(bin_, number, date(2026, 3, 15), seq=4))
    assert await active_of(svc, number) == "{[2026-01-01,2026-02-10),[2026-02-20,2026-03-15)}"
    status = await svc.pool.fetchval("SELECT status FROM providers WHERE bin = $1", bin_)
    assert status == "revoked"


async def test_an_event_older_than_the_one_held_is_ignored(svc: RunningService) -> None:
    bin_, number = new_bin(), f"KZ-{uuid.uuid4().hex[:8]}"
    await feed(svc, issued(bin_, number, date(2026, 1, 1)))
    await feed(svc, suspended(bin_, number, date(2026, 1, 10), seq=3))
    await feed(svc, reinstated(bin_, number, date(2026, 1, 12), seq=2))
    assert await active_of(svc, number) == "{[2026-01-01,2026-01-10)}"
    row = await svc.pool.fetchrow("SELECT status, seq FROM providers WHERE bin = $1", bin_)
    assert (row["status"], row["seq"]) == ("suspended", 3)


async def test_enrollment_read_model_follows_registry(svc: RunningService) -> None:
    bin_, iin = new_bin(), new_iin()
    e = started(str(uuid.uuid4()), iin, bin_, "KZ-1", date(2026, 1, 3))
    await feed(svc, e)
    await feed(svc, disrupted(e, date(2026, 1, 10)))
    status = "SELECT status, end_date FROM enrollments WHERE enrollment_id = $1"
    assert tuple(await svc.pool.fetchrow(status, e.enrollment_id)) == ("disrupted", None)
    await feed(svc, resumed(e, date(2026, 1, 20)))
    assert tuple(await svc.pool.fetchrow(status, e.enrollment_id)) == ("active", None)
    await feed(svc, ended(e, date(2026, 1, 31)))
    assert tuple(await svc.pool.fetchrow(status, e.enrollment_id)) == (
        "ended",
        date(2026, 1, 31),
    )


@pytest.mark.parametrize("repeat", [2])
async def test_a_redelivered_event_has_no_second_effect(svc: RunningService, repeat: int) -> None:
    bin_ = new_bin()
    e = started(str(uuid.uuid4()), new_iin(), bin_, "KZ-1", date(2026, 1, 3))
    for _ in range(repeat):
        await feed(svc, e)
    count = await svc.pool.fetchval(
        "SELECT count(*) FROM enrollments WHERE provider_bin = $1", bin_
    )
    assert count == 1


async def test_an_end_that_arrives_before_the_start_is_applied_once_the_start_arrives(
    svc: RunningService,
) -> None:
    e = started(str(uuid.uuid4()), new_iin(), new_bin(), "KZ-1", date(2026, 1, 3))
    end = make_event(ended(e, date(2026, 1, 20)), source="/ssu/registry", subject=e.enrollment_id)
    await publish_raw(end.to_bytes(), routing_key=end.type, message_id=end.id)
    await feed(svc, e)

    async def end_applied() -> object:
        return await svc.pool.fetchval(
            "SELECT end_date FROM enrollments WHERE enrollment_id = $1", e.enrollment_id
        )

    assert await eventually(end_applied) == date(2026, 1, 20)


async def enrollment_state(svc: RunningService, enrollment_id: str) -> tuple[str, int]:
    row = await svc.pool.fetchrow(
        "SELECT status, seq FROM enrollments WHERE enrollment_id = $1", enrollment_id
    )
    return (row["status"], row["seq"])


async def test_an_end_overtaken_by_an_older_disruption_stays_ended(svc: RunningService) -> None:
    e = started(str(uuid.uuid4()), new_iin(), new_bin(), "KZ-1", date(2026, 1, 3))
    e = e.model_copy(update={"seq": 1})
    await feed(svc, e)
    await feed(svc, ended(e, date(2026, 1, 20)).model_copy(update={"seq": 3}))
    await feed(svc, disrupted(e, date(2026, 1, 10)).model_copy(update={"seq": 2}))
    assert await enrollment_state(svc, e.enrollment_id) == ("ended", 3)


async def test_a_resumption_overtaken_by_an_older_disruption_stays_active(
    svc: RunningService,
) -> None:
    e = started(str(uuid.uuid4()), new_iin(), new_bin(), "KZ-1", date(2026, 1, 3))
    e = e.model_copy(update={"seq": 1})
    await feed(svc, e)
    await feed(svc, resumed(e, date(2026, 1, 12)).model_copy(update={"seq": 3}))
    await feed(svc, disrupted(e, date(2026, 1, 10)).model_copy(update={"seq": 2}))
    assert await enrollment_state(svc, e.enrollment_id) == ("active", 3)
