"""Revocation leaves recipients unplaced (told, on the board until placed again), and the
statistics answer as of a date from the license history and enrollment dates."""

from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import pytest
import pytest_asyncio
from harness import (
    ADMIN,
    RunningService,
    event_probe,
    reset_service,
    running_service,
    settings_for,
)
from registry_world import (
    license_applied,
    license_event,
    provider_with,
    publish_license,
    register,
    wait_event,
)
from ssu_registry import domain
from ssu_registry.main import build
from ssu_registry.settings import Settings

PAVLODAR = "550000000"
PAVLODAR_KATO = "551010000"
ELDERLY = [("stationary", "elderly")]
PHONE = "+77011234567"

pytestmark = pytest.mark.asyncio(loop_scope="session")


def site(places: int) -> list[dict[str, Any]]:
    return [{"site_id": "S1", "address": "Павлодар, S1", "kato": PAVLODAR_KATO, "places": places}]


async def enroll(svc: RunningService, iin: str, bin_: str, start: str) -> str:
    r = await svc.client.post(
        "/v1/enrollments",
        json={
            "iin": iin,
            "provider_bin": bin_,
            "site_id": "S1",
            "form": "stationary",
            "start_date": start,
        },
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    enrollment_id: str = r.json()["id"]
    return enrollment_id


async def board(svc: RunningService) -> list[dict[str, Any]]:
    r = await svc.client.get("/v1/disruptions", params={"region": PAVLODAR}, headers=ADMIN)
    assert r.status_code == 200, r.text
    return sorted(r.json()["items"], key=lambda i: i["iin"])


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world() -> AsyncIterator[dict[str, Any]]:
    """Provider A (private, 5 places) issued 2026-01-05, suspended 2026-03-01, reinstated
    2026-03-15, revoked 2026-04-01; provider B (state, 4 places) issued 2026-02-01. At A: the
    elder from 2026-01-10, the ward (reached through a guardian) from 2026-02-10; at B: the
    third from 2026-02-15. After the revocation the elder is placed at B from 2026-05-01."""
    await reset_service("registry")
    async with running_service(build(settings_for(Settings, "registry"))) as svc:
        c = svc.client
        a_number, a_bin = await provider_with(
            c, ADMIN, name="Жеке үй", legal_form="private", region=PAVLODAR, sites=site(5),
            subtypes=ELDERLY,
        )  # fmt: skip
        b_number, b_bin = await provider_with(
            c, ADMIN, name="Мемлекеттік үй", legal_form="state", region=PAVLODAR,
            sites=site(4), subtypes=ELDERLY, effective_date=date(2026, 2, 1),
        )  # fmt: skip
        elder = await register(c, ADMIN, region=PAVLODAR, birth=date(1950, 1, 2))
        ward = await register(
            c,
            ADMIN,
            region=PAVLODAR,
            birth=date(1948, 6, 7),
            phone=None,
            guardian={"name": "Дана Нұрланова", "email": "dana@example.kz"},
            language="ru",
        )
        third = await register(c, ADMIN, region=PAVLODAR, birth=date(1952, 2, 3))
        ids = {
            "elder": await enroll(svc, elder["iin"], a_bin, "2026-01-10"),
            "ward": await enroll(svc, ward["iin"], a_bin, "2026-02-10"),
            "third": await enroll(svc, third["iin"], b_bin, "2026-02-15"),
        }
        common = {
            "number": a_number, "bin": a_bin, "name": "Жеке үй", "legal_form": "private",
            "region": PAVLODAR, "sites": site(5), "subtypes": ELDERLY,
        }  # fmt: skip
        async with event_probe("registry.enrollment.#") as probe:
            for kind, seq, on in (
                ("suspended", 2, date(2026, 3, 1)),
                ("reinstated", 3, date(2026, 3, 15)),
            ):
                await publish_license(license_event(kind, seq=seq, effective_date=on, **common))
                await license_applied(c, ADMIN, bin=a_bin, number=a_number, seq=seq)
            await publish_license(
                license_event(
                    "revoked",
                    seq=4,
                    effective_date=date(2026, 4, 1),
                    reason="repeated violations",
                    **common,
                )
            )
            for who in ("elder", "ward"):
                await wait_event(
                    probe,
                    lambda e, who=who: (
                        e["type"] == "registry.enrollment.unplaced.v1" and e["subject"] == ids[who]
                    ),
                )
            await probe.pull(wait=0.3)
            board_after_revocation = await board(svc)
            placed_again = await enroll(svc, elder["iin"], b_bin, "2026-05-01")
            yield {
                "svc": svc,
                "a": (a_number, a_bin),
                "b": (b_number, b_bin),
                "people": {"elder": elder, "ward": ward, "third": third},
                "ids": ids,
                "probe": probe,
                "board_after_revocation": board_after_revocation,
                "board_after_placement": await board(svc),
                "placed_again": placed_again,
            }


async def test_revocation_ends_enrollments_and_tells_each_recipient_with_alternatives(
    world: dict[str, Any],
) -> None:
    probe, ids, people = world["probe"], world["ids"], world["people"]
    a_number, a_bin = world["a"]
    b_number, b_bin = world["b"]
    by_subject = {
        (e["type"], e["subject"]): e
        for e in probe.of_type("registry.enrollment.ended.v1")
        + probe.of_type("registry.enrollment.unplaced.v1")
    }
    assert len(probe.of_type("registry.enrollment.unplaced.v1")) == 2
    # Billing still learns the end (the day before the revocation) from the ended event.
    ended = by_subject[("registry.enrollment.ended.v1", ids["ward"])]["data"]
    assert (ended["end_date"], ended["reason"], ended["seq"]) == (
        "2026-03-31",
        "license revoked: repeated violations",
        4,  # started 1, disrupted 2, resumed 3, ended 4
    )
    unplaced = by_subject[("registry.enrollment.unplaced.v1", ids["ward"])]["data"]
    assert unplaced == {
        "enrollment_id": ids["ward"],
        "iin": people["ward"]["iin"],
        "provider_bin": a_bin,
        "provider_name": "Жеке үй",
        "license_number": a_number,
        "region": PAVLODAR,
        "form": "stationary",
        "category": "elderly",
        "unplaced_on": "2026-04-01",
        "reason": "license revoked: repeated violations",
        "alternatives": [
            {
                "bin": b_bin,
                "name": "Мемлекеттік үй",
                "site_id": "S1",
                "address": "Павлодар, S1",
                "free_places": 3,
                "license_number": b_number,
                "phone": PHONE,
            }
        ],
        "addressee": {
            "name": "Дана Нұрланова",
            "email": "dana@example.kz",
            "phone": None,
            "language": "ru",
            "is_guardian": True,
        },
        "seq": 5,  # started 1, disrupted 2, resumed 3, ended 4, unplaced 5
    }


async def test_unplaced_recipients_stay_on_the_board_until_enrolled_again(
    world: dict[str, Any],
) -> None:
    ids, people = world["ids"], world["people"]
    a_number, a_bin = world["a"]
    b_number, b_bin = world["b"]
    alternatives = [
        {
            "bin": b_bin,
            "name": "Мемлекеттік үй",
            "site_id": "S1",
            "address": "Павлодар, S1",
            "free_places": 3,
            "license_number": b_number,
            "phone": PHONE,
        }
    ]
    days = (domain.today() - date(2026, 4, 1)).days
    expected = {
        who: {
            "enrollment_id": ids[who],
            "iin": people[who]["iin"],
            "full_name": "Айгерим Сейтқали",
            "region": PAVLODAR,
            "form": "stationary",
            "category": "elderly",
            "provider_bin": a_bin,
            "provider_name": "Жеке үй",
            "license_number": a_number,
            "site_id": "S1",
            "disrupted_on": "2026-04-01",
            "days_disrupted": days,
            "reason": "license revoked: repeated violations",
            "alternatives": alternatives,
            "state": "unplaced",
            "unplaced_on": "2026-04-01",
        }
        for who in ("elder", "ward")
    }
    got = {i["enrollment_id"]: i for i in world["board_after_revocation"]}
    assert set(got) == {ids["elder"], ids["ward"]}
    for who in ("elder", "ward"):
        item = dict(got[ids[who]])
        item.pop("addressee")
        assert item == expected[who]
    # Placed again elsewhere: the elder leaves the board, the ward stays.
    assert [(i["enrollment_id"], i["state"]) for i in world["board_after_placement"]] == [
        (ids["ward"], "unplaced")
    ]
    # The re-enrollment is an ordinary active enrollment.
    r = await world["svc"].client.get(f"/v1/enrollments/{world['placed_again']}", headers=ADMIN)
    assert r.json()["status"] == "active"


def zeros(*keys: str) -> dict[str, int]:
    return dict.fromkeys(keys, 0)


def figures(
    *,
    total: int,
    private: int,
    state: int,
    active: int,
    suspended: int,
    revoked: int,
    places: tuple[int, int, int],
    served: int,
    served_private: int,
    disrupted: int,
    unplaced: int,
) -> dict[str, Any]:
    return {
        "providers": {
            "total": total,
            "state": state,
            "ngo": 0,
            "private": private,
            "by_status": {"active": active, "suspended": suspended, "revoked": revoked},
        },
        "places": {"total": places[0], "occupied": places[1], "free": places[2]},
        "recipients_served": {
            "total": served,
            "by_form": {
                **zeros("stationary", "semi_stationary", "home", "temporary_stay"),
                "stationary": served,
            },
            "by_category": {
                **zeros(
                    "child_disability",
                    "adult_disability",
                    "elderly",
                    "domestic_violence",
                    "homeless",
                    "other",
                ),
                "elderly": served,
            },
            "by_age_band": {"0-17": 0, "18-64": 0, "65+": served},
            "by_legal_form": {
                "state": served - served_private,
                "ngo": 0,
                "private": served_private,
            },
        },
        "disrupted_recipients": disrupted,
        "unplaced_recipients": unplaced,
    }


# (as_of, figures, by_provider: (name, status, places, recipients served))
HISTORY = [
    (
        "2026-01-04",
        figures(
            total=0, private=0, state=0, active=0, suspended=0, revoked=0, places=(0, 0, 0),
            served=0, served_private=0, disrupted=0, unplaced=0,
        ),
        [],
    ),
    (
        "2026-01-20",
        figures(
            total=1, private=1, state=0, active=1, suspended=0, revoked=0, places=(5, 1, 4),
            served=1, served_private=1, disrupted=0, unplaced=0,
        ),
        [("Жеке үй", "active", 5, 1)],
    ),
    (
        "2026-02-20",
        figures(
            total=2, private=1, state=1, active=2, suspended=0, revoked=0, places=(9, 3, 6),
            served=3, served_private=2, disrupted=0, unplaced=0,
        ),
        [("Жеке үй", "active", 5, 2), ("Мемлекеттік үй", "active", 4, 1)],
    ),
    (
        "2026-03-05",
        figures(
            total=2, private=1, state=1, active=1, suspended=1, revoked=0, places=(9, 3, 6),
            served=1, served_private=0, disrupted=2, unplaced=0,
        ),
        [("Жеке үй", "suspended", 5, 0), ("Мемлекеттік үй", "active", 4, 1)],
    ),
    (
        "2026-03-20",
        figures(
            total=2, private=1, state=1, active=2, suspended=0, revoked=0, places=(9, 3, 6),
            served=3, served_private=2, disrupted=0, unplaced=0,
        ),
        [("Жеке үй", "active", 5, 2), ("Мемлекеттік үй", "active", 4, 1)],
    ),
    # Revoked: not in the total nor its legal form, its places gone, its people unplaced.
    (
        "2026-04-10",
        figures(
            total=1, private=0, state=1, active=1, suspended=0, revoked=1, places=(4, 1, 3),
            served=1, served_private=0, disrupted=0, unplaced=2,
        ),
        [("Жеке үй", "revoked", 5, 0), ("Мемлекеттік үй", "active", 4, 1)],
    ),
    (
        "2026-05-01",
        figures(
            total=1, private=0, state=1, active=1, suspended=0, revoked=1, places=(4, 2, 2),
            served=2, served_private=0, disrupted=0, unplaced=1,
        ),
        [("Жеке үй", "revoked", 5, 0), ("Мемлекеттік үй", "active", 4, 2)],
    ),
]  # fmt: skip


@pytest.mark.parametrize(("as_of", "expected", "by_provider"), HISTORY)
async def test_statistics_as_of_a_date_come_from_history(
    world: dict[str, Any], as_of: str, expected: dict[str, Any], by_provider: list[Any]
) -> None:
    r = await world["svc"].client.get(
        "/v1/statistics", params={"region": PAVLODAR, "as_of": as_of}, headers=ADMIN
    )
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["as_of"] == as_of
    assert {k: got[k] for k in expected} == expected
    assert [
        (p["name"], p["status"], p["places"], p["recipients_served"]) for p in got["by_provider"]
    ] == by_provider


async def test_statistics_default_to_today_and_refuse_a_future_date(
    world: dict[str, Any],
) -> None:
    client = world["svc"].client
    today = domain.today()
    r = await client.get("/v1/statistics", params={"region": PAVLODAR}, headers=ADMIN)
    got = r.json()
    assert got["as_of"] == today.isoformat()
    assert {k: got[k] for k in HISTORY[-1][1]} == HISTORY[-1][1]
    # The country figures count the revoked license by status only.
    country = (await client.get("/v1/statistics", headers=ADMIN)).json()
    assert country["providers"] == {
        "total": 1,
        "state": 1,
        "ngo": 0,
        "private": 0,
        "by_status": {"active": 1, "suspended": 0, "revoked": 1},
    }
    tomorrow = (today + timedelta(days=1)).isoformat()
    r = await client.get("/v1/statistics", params={"as_of": tomorrow}, headers=ADMIN)
    assert r.status_code == 422, r.text
    assert r.json()["errors"] == [
        {"field": "query.as_of", "message": f"must not be after today ({today.isoformat()})"}
    ]
