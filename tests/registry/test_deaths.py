"""Notices of death from the state population register: one by the API, many by a CSV file.

A recipient who died is de-registered (died) on the date: their open enrollments end on it (the
day of death is the last date of service) and `registry.recipient.deregistered.v1` is published.
"""

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import pytest
import pytest_asyncio
from harness import ADMIN, RunningService, event_probe, reset_service, running_service, settings_for
from registry_world import EAST, EAST_KATO, provider_with, register, wait_event
from ssu_contracts import make_iin
from ssu_registry import domain, store
from ssu_registry.main import build
from ssu_registry.settings import Settings

EAST_KEY = {"Authorization": "Bearer ssu-dev-east-kz"}
READER = {"Authorization": "Bearer ssu-dev-reader"}
ELDER_BIRTH = date(1950, 3, 14)
START = "2026-02-02"

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def svc() -> AsyncIterator[RunningService]:
    await reset_service("registry")
    async with running_service(build(settings_for(Settings, "registry"))) as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def provider(svc: RunningService) -> str:
    _, bin_ = await provider_with(
        svc.client,
        ADMIN,
        sites=[{"site_id": "S1", "address": "Өскемен, 1", "kato": EAST_KATO, "places": 500}],
        subtypes=[("stationary", "elderly"), ("home", "elderly")],
    )
    return bin_


async def elder(svc: RunningService) -> str:
    iin: str = (await register(svc.client, ADMIN, birth=ELDER_BIRTH, sex="female"))["iin"]
    return iin


async def enrolled(
    svc: RunningService, bin_: str, iin: str, form: str = "home", start: str = START
) -> str:
    r = await svc.client.post(
        "/v1/enrollments",
        json={"iin": iin, "provider_bin": bin_, "site_id": "S1", "form": form, "start_date": start},
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    enrollment_id: str = r.json()["id"]
    return enrollment_id


async def state(svc: RunningService, iin: str) -> tuple[str, str | None, str | None]:
    got = (await svc.client.get(f"/v1/recipients/{iin}", headers=ADMIN)).json()
    return got["status"], got["deregistered_on"], got["deregistration_reason"]


async def enrollment(svc: RunningService, enrollment_id: str) -> tuple[str, str | None, str]:
    e = (await svc.client.get(f"/v1/enrollments/{enrollment_id}", headers=ADMIN)).json()
    return e["status"], e["end_date"], e["end_reason"]


async def outbox_count(svc: RunningService, *subjects: str) -> int:
    count: int = await svc.pool.fetchval(
        "SELECT count(*) FROM outbox WHERE subject = ANY($1::text[])", list(subjects)
    )
    return count


def stranger(serial: int) -> str:
    """An IIN of someone who is no recipient (no recipient of these tests is born in 1941)."""
    return make_iin(date(1941, 1, 1) + timedelta(days=serial // 5000), "male", serial % 5000)


async def post_csv(svc: RunningService, text: str, headers: dict[str, str] = ADMIN) -> Any:
    return await svc.client.post(
        "/v1/deaths/import",
        content=text.encode(),
        headers={**headers, "Content-Type": "text/csv"},
    )


# One notice by the API


async def test_a_notice_ends_the_enrollments_on_the_day_of_death_and_is_published(
    svc: RunningService, provider: str
) -> None:
    iin = await elder(svc)
    ids = [await enrolled(svc, provider, iin, form) for form in ("stationary", "home")]
    died_on = "2026-11-01"
    async with event_probe("registry.#") as probe:
        r = await svc.client.post(
            "/v1/deaths",
            json={"iin": iin, "died_on": died_on, "act_number": "ЗАГС-2026-118734"},
            headers=ADMIN,
        )
        assert r.status_code == 200, r.text
        assert r.json() == {"outcome": "recorded", "died_on": died_on}
        deregistered = await wait_event(
            probe,
            lambda e: e["type"] == "registry.recipient.deregistered.v1" and e["subject"] == iin,
        )
        ended = [
            await wait_event(
                probe,
                lambda e, i=i: e["type"] == "registry.enrollment.ended.v1" and e["subject"] == i,
            )
            for i in ids
        ]
    assert deregistered["data"] == {
        "iin": iin,
        "region": EAST,
        "category": "elderly",
        "reason": "died",
        "deregistered_on": died_on,
        "version": 2,
    }
    for event, enrollment_id, form in zip(ended, ids, ("stationary", "home"), strict=True):
        assert event["data"] == {
            "enrollment_id": enrollment_id,
            "iin": iin,
            "provider_bin": provider,
            "region": EAST,
            "form": form,
            "category": "elderly",
            "end_date": died_on,
            "reason": "died",
            "seq": 2,
        }
        assert await enrollment(svc, enrollment_id) == ("ended", died_on, "died")
    assert await state(svc, iin) == ("deregistered", died_on, "died")
    # the audit log keeps the notice, by the IIN's blind index, never the IIN
    actions = await svc.pool.fetch(
        "SELECT action, reason FROM audit_records WHERE aggregate_id = $1"
        " AND action IN ('recipient.deregistered', 'recipient.death_notified') ORDER BY id",
        store.iin_index(iin).hex(),
    )
    assert [tuple(a) for a in actions] == [
        ("recipient.deregistered", "died"),
        ("recipient.death_notified", "population register, act ЗАГС-2026-118734"),
    ]

    # the same notice again changes nothing
    before = await outbox_count(svc, iin, *ids)
    r = await svc.client.post("/v1/deaths", json={"iin": iin, "died_on": died_on}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json() == {"outcome": "unchanged", "died_on": died_on}
    assert (
        await outbox_count(svc, iin, *ids) == before == 6
    )  # registered, 2 started, 2 ended, 1 de-registered


async def test_a_death_before_an_enrollments_start_ends_it_on_its_start(
    svc: RunningService, provider: str
) -> None:
    iin = await elder(svc)
    early = await enrolled(svc, provider, iin, "stationary", start="2026-03-01")
    late = await enrolled(svc, provider, iin, "home", start="2026-06-10")
    r = await svc.client.post(
        "/v1/deaths", json={"iin": iin, "died_on": "2026-06-01"}, headers=ADMIN
    )
    assert r.status_code == 200 and r.json()["outcome"] == "recorded"
    assert await enrollment(svc, early) == ("ended", "2026-06-01", "died")
    # an enrollment cannot end before it starts; billing's `deaths` pays no date after the death
    assert await enrollment(svc, late) == ("ended", "2026-06-10", "died")


async def test_a_person_who_is_no_recipient_is_no_error(svc: RunningService) -> None:
    r = await svc.client.post(
        "/v1/deaths", json={"iin": stranger(1), "died_on": "2026-10-01"}, headers=ADMIN
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"outcome": "not_recipient", "died_on": "2026-10-01"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"died_on": "TOMORROW"}, "died_on"),
        ({"died_on": "1950-03-13"}, "died_on"),  # before the birth the IIN encodes
        ({"died_on": "2026-13-01"}, "died_on"),
        ({"iin": "123456789012"}, "iin"),
        ({"act_number": "x" * 65}, "act_number"),
        ({"cause": "none of ours"}, "cause"),
    ],
)
async def test_a_wrong_notice_is_422_naming_the_field(
    svc: RunningService, body: dict[str, str], field: str
) -> None:
    iin = await elder(svc)
    notice = {"iin": iin, "died_on": "2026-10-01", **body}
    if notice["died_on"] == "TOMORROW":
        notice["died_on"] = (domain.today() + timedelta(days=1)).isoformat()
    r = await svc.client.post("/v1/deaths", json=notice, headers=ADMIN)
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == [field]
    assert await state(svc, iin) == ("registered", None, None)


async def test_a_death_before_an_earlier_deregistration_is_a_conflict(
    svc: RunningService,
) -> None:
    iin = await elder(svc)
    r = await svc.client.post(
        f"/v1/recipients/{iin}/deregister",
        json={"reason": "moved", "date": "2026-09-01"},
        headers=ADMIN,
    )
    assert r.status_code == 200, r.text
    r = await svc.client.post(
        "/v1/deaths", json={"iin": iin, "died_on": "2026-08-15"}, headers=ADMIN
    )
    assert r.status_code == 409, r.text
    assert r.json()["errors"] == [
        {
            "field": "died_on",
            "message": "died_on: de-registered (moved) on 2026-09-01, after the date of death",
        }
    ]
    # a death after having moved away: nothing is left to stop
    r = await svc.client.post(
        "/v1/deaths", json={"iin": iin, "died_on": "2026-10-15"}, headers=ADMIN
    )
    assert r.json() == {"outcome": "unchanged", "died_on": "2026-10-15"}
    assert await state(svc, iin) == ("deregistered", "2026-09-01", "moved")


async def test_notices_are_national_and_need_registry_write(svc: RunningService) -> None:
    iin = await elder(svc)
    notice = {"iin": iin, "died_on": "2026-10-01"}
    r = await svc.client.post("/v1/deaths", json=notice, headers=EAST_KEY)
    assert r.status_code == 403, r.text
    assert (
        await post_csv(svc, f"iin,died_on,act_number\n{iin},2026-10-01,\n", EAST_KEY)
    ).status_code == 403
    assert (await svc.client.post("/v1/deaths", json=notice, headers=READER)).status_code == 403
    assert (await svc.client.post("/v1/deaths", json=notice)).status_code == 401
    assert await state(svc, iin) == ("registered", None, None)


# A file of notices


async def test_a_file_counts_every_row_and_again_changes_nothing(
    svc: RunningService, provider: str
) -> None:
    died, also_died, moved_before, moved_after, was_dead, dead_before = [
        await elder(svc) for _ in range(6)
    ]
    died_enrollment = await enrolled(svc, provider, died)
    also_enrollment = await enrolled(svc, provider, also_died, "stationary")
    for iin, reason, day in (
        (moved_before, "moved", "2026-04-01"),
        (moved_after, "moved", "2026-09-01"),
        (was_dead, "died", "2026-05-05"),
        (dead_before, "died", "2026-05-05"),
    ):
        r = await svc.client.post(
            f"/v1/recipients/{iin}/deregister", json={"reason": reason, "date": day}, headers=ADMIN
        )
        assert r.status_code == 200, r.text
    tomorrow = (domain.today() + timedelta(days=1)).isoformat()
    text = (
        "\ufeffiin,died_on,act_number\r\n"
        f"{died},2026-07-14,A-1\r\n"  # 2 recorded
        f"{stranger(10)},2026-07-14,A-2\r\n"  # 3 not a recipient
        f"{also_died},2026-08-01,\r\n"  # 4 recorded
        f"{moved_before},2026-07-01,A-4\r\n"  # 5 unchanged: moved before the death
        f"{moved_after},2026-07-01,A-5\r\n"  # 6 rejected: moved after the death
        f"{was_dead},2026-05-05,A-6\r\n"  # 7 unchanged: the death is held
        f"{stranger(11)},2026-07-15,A-7\r\n"  # 8 not a recipient
        "\r\n"  # blank: not a row
        f"{stranger(12)},{tomorrow},A-9\r\n"  # 10 rejected: future
        "123,2026-07-01,A-10\r\n"  # 11 rejected: IIN
        f"{stranger(13)},14.07.2026,A-11\r\n"  # 12 rejected: date format
        f"{died},2026-07-14,A-1\r\n"  # 13 unchanged: repeats line 2
        f"{also_died},2026-08-02,\r\n"  # 14 rejected: conflicts with line 4
        f"{stranger(14)},2026-07-16\r\n"  # 15 rejected: columns
        f"{dead_before},2026-05-01,A-15\r\n"  # 16 rejected: another date of death held
    )
    async with event_probe("registry.#") as probe:
        r = await post_csv(svc, text)
        assert r.status_code == 200, r.text
        for iin in (died, also_died):
            await wait_event(
                probe,
                lambda e, i=iin: (
                    e["type"] == "registry.recipient.deregistered.v1" and e["subject"] == i
                ),
            )
    first = r.json()
    assert first == {
        "rows": 14,
        "recorded": 2,
        "unchanged": 3,
        "not_recipients": 2,
        "rejected": 7,
        "errors": [
            {
                "line": 6,
                "field": "died_on",
                "reason": "de-registered (moved) on 2026-09-01, after the date of death",
            },
            {
                "line": 10,
                "field": "died_on",
                "reason": f"is in the future (today is {domain.today().isoformat()})",
            },
            {"line": 11, "field": "iin", "reason": "must be exactly 12 digits"},
            {"line": 12, "field": "died_on", "reason": "must be a date YYYY-MM-DD"},
            {"line": 14, "field": "died_on", "reason": "conflicts with line 4 of this file"},
            {"line": 15, "field": "row", "reason": "expected 3 columns, got 2"},
            {
                "line": 16,
                "field": "died_on",
                "reason": "the death is already recorded on 2026-05-05",
            },
        ],
    }
    assert await state(svc, died) == ("deregistered", "2026-07-14", "died")
    assert await state(svc, also_died) == ("deregistered", "2026-08-01", "died")
    assert await enrollment(svc, died_enrollment) == ("ended", "2026-07-14", "died")
    assert await enrollment(svc, also_enrollment) == ("ended", "2026-08-01", "died")
    assert await state(svc, moved_after) == ("deregistered", "2026-09-01", "moved")
    assert await state(svc, was_dead) == ("deregistered", "2026-05-05", "died")
    audited = await svc.pool.fetchval(
        "SELECT count(*) FROM audit_records WHERE action = 'deaths.imported'"
        " AND reason = '2 recorded of 14 rows'"
    )
    assert audited == 1

    everyone = (
        died,
        also_died,
        moved_before,
        moved_after,
        was_dead,
        died_enrollment,
        also_enrollment,
    )
    before = await outbox_count(svc, *everyone)
    again = await post_csv(svc, text)
    assert again.status_code == 200, again.text
    assert again.json() == {**first, "recorded": 0, "unchanged": 5}
    assert await outbox_count(svc, *everyone) == before


async def test_a_file_with_another_header_is_refused_whole(svc: RunningService) -> None:
    iin = await elder(svc)
    r = await post_csv(svc, f"iin,date\n{iin},2026-07-14\n")
    assert r.status_code == 422, r.text
    assert r.json()["errors"] == [
        {"field": "header", "message": "the CSV header must be: iin,died_on,act_number"}
    ]
    assert await state(svc, iin) == ("registered", None, None)


async def test_a_national_file_of_ten_thousand_notices(svc: RunningService, provider: str) -> None:
    """The register sends everyone's deaths: most are no recipients, found in one query."""
    recipients = [await elder(svc) for _ in range(3)]
    ids = [await enrolled(svc, provider, iin) for iin in recipients]
    lines = ["iin,died_on,act_number"]
    lines += [f"{stranger(100 + n)},2026-10-{1 + n % 28:02d},R-{n}" for n in range(9_997)]
    lines[2000:2000] = [f"{iin},2026-10-20,R-r{n}" for n in range(3) for iin in [recipients[n]]]
    text = "\n".join(lines) + "\n"
    started = time.perf_counter()
    r = await post_csv(svc, text)
    took = time.perf_counter() - started
    assert r.status_code == 200, r.text
    assert r.json() == {
        "rows": 10_000,
        "recorded": 3,
        "unchanged": 0,
        "not_recipients": 9_997,
        "rejected": 0,
        "errors": [],
    }
    for enrollment_id in ids:
        assert await enrollment(svc, enrollment_id) == ("ended", "2026-10-20", "died")
    print(f"10k notices in {took:.2f} s")
    again = await post_csv(svc, text)
    assert again.json()["unchanged"] == 3 and again.json()["recorded"] == 0


async def test_the_same_file_twice_at_once_records_each_death_once(
    svc: RunningService, provider: str
) -> None:
    recipients = [await elder(svc) for _ in range(12)]
    ids = [await enrolled(svc, provider, iin) for iin in recipients]
    text = "iin,died_on,act_number\n" + "".join(f"{iin},2026-09-09,\n" for iin in recipients)
    first, second = await asyncio.gather(post_csv(svc, text), post_csv(svc, text))
    answers = [first.json(), second.json()]
    assert [a["rejected"] for a in answers] == [0, 0], answers
    assert sum(a["recorded"] for a in answers) == 12
    assert sum(a["unchanged"] for a in answers) == 12
    deregistered = await svc.pool.fetchval(
        "SELECT count(*) FROM outbox WHERE subject = ANY($1::text[]) AND event_type = $2",
        recipients,
        "registry.recipient.deregistered.v1",
    )
    assert deregistered == 12
    for enrollment_id in ids:
        assert await enrollment(svc, enrollment_id) == ("ended", "2026-09-09", "died")
