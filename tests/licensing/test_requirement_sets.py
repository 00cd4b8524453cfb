"""Requirement sets as versioned data: the shipped 2025.1 and 2026.1, new versions, activation."""

from typing import Any

import pytest
import pytest_asyncio
from harness import ADMIN, RunningService
from licensing_world import (
    OFFICIAL,
    READER,
    almaty_today,
    core_only_application,
    licensing_service,
    submit,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def svc():  # type: ignore[no-untyped-def]
    async with licensing_service() as running:
        yield running


def lenient_set(version: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "version": version,
        "title": "gardener advised, not required",
        "non_core_blocking": False,
        "requirements": [
            {
                "id": "staff.social_worker.places",
                "kind": "staff_ratio",
                "core": True,
                "role": "social_worker",
                "fte": "1.00",
                "per_places": 10,
                "title_kk": "әлеуметтік қызметкер",
                "title_ru": "социальный работник",
            },
            {
                "id": "staff.gardener.site",
                "kind": "staff_ratio",
                "core": False,
                "forms": ["stationary"],
                "role": "gardener",
                "fte": "0.50",
                "per_site": True,
                "title_kk": "бағбан",
                "title_ru": "садовник",
            },
        ],
    }
    body.update(overrides)
    return body


async def test_the_shipped_sets_are_loaded_with_2025_1_in_force(svc: RunningService) -> None:
    r = await svc.client.get("/v1/requirement-sets", headers=READER)
    assert r.status_code == 200
    sets = {s["version"]: s for s in r.json()["items"]}
    assert (sets["2025.1"]["status"], sets["2025.1"]["effective_from"]) == (
        "in_force",
        "2025-01-01",
    )
    assert sets["2025.1"]["non_core_blocking"] is True
    assert (sets["2026.1"]["status"], sets["2026.1"]["effective_from"]) == ("draft", None)
    assert sets["2026.1"]["non_core_blocking"] is False
    old = {q["id"] for q in sets["2025.1"]["requirements"]}
    new = {q["id"] for q in sets["2026.1"]["requirements"]}
    assert old - new == {
        "staff.gardener.site",
        "staff.janitor.site",
        "staff.tractor_driver.site",
        "staff.bread_cutter.site",
    }
    assert all(q["core"] for q in sets["2026.1"]["requirements"])
    one = await svc.client.get("/v1/requirement-sets/2026.1", headers=READER)
    assert one.json()["requirements"] == sets["2026.1"]["requirements"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"version": ""}, "version"),
        ({"non_core_blocking": "sometimes"}, "non_core_blocking"),
        ({"requirements": []}, "requirements"),
        (
            {
                "requirements": [
                    {"id": "x", "kind": "magic", "core": True, "title_kk": "k", "title_ru": "r"}
                ]
            },
            "requirements.0",
        ),
        (
            {
                "requirements": [
                    {
                        "id": "x",
                        "kind": "staff_ratio",
                        "core": True,
                        "title_kk": "k",
                        "title_ru": "r",
                        "role": "astronaut",
                        "fte": "1",
                    }
                ]
            },
            "requirements.0.staff_ratio.role",
        ),
        (
            {
                "requirements": [
                    {
                        "id": "x",
                        "kind": "equipment",
                        "core": True,
                        "title_kk": "k",
                        "title_ru": "r",
                        "code": "teleporter",
                    }
                ]
            },
            "requirements.0.equipment.code",
        ),
        (
            {
                "requirements": [
                    {
                        "id": "x",
                        "kind": "area_per_place",
                        "core": True,
                        "title_kk": "k",
                        "title_ru": "r",
                        "m2_per_place": "0",
                    }
                ]
            },
            "requirements.0.area_per_place.m2_per_place",
        ),
        ({"effective_from": "soon"}, "effective_from"),
    ],
)
async def test_bad_requirement_sets_are_422_naming_the_field(
    svc: RunningService, change: dict[str, Any], field: str
) -> None:
    r = await svc.client.post(
        "/v1/requirement-sets", json={**lenient_set("bad"), **change}, headers=ADMIN
    )
    assert r.status_code == 422, r.text
    assert field in [e["field"] for e in r.json()["errors"]]


async def test_versions_are_immutable(svc: RunningService) -> None:
    r = await svc.client.post("/v1/requirement-sets", json=lenient_set("2025.1"), headers=ADMIN)
    assert r.status_code == 409
    r = await svc.client.post("/v1/requirement-sets", json=lenient_set("x"), headers=READER)
    assert r.status_code == 403


async def test_approval_refused_under_2025_1_is_allowed_where_non_core_does_not_block(
    svc: RunningService,
) -> None:
    app = await submit(svc, core_only_application())
    r = await svc.client.post(f"/v1/applications/{app['id']}/approve", headers=OFFICIAL)
    assert r.status_code == 409
    assert r.json()["requirement_set"] == "2025.1"

    body = lenient_set("2026.test", effective_from=almaty_today().isoformat())
    r = await svc.client.post("/v1/requirement-sets", json=body, headers=ADMIN)
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "in_force"

    r = await svc.client.post(f"/v1/applications/{app['id']}/approve", headers=OFFICIAL)
    assert r.status_code == 201, r.text
    got = (await svc.client.get(f"/v1/applications/{app['id']}", headers=READER)).json()
    assert got["requirement_set"] == "2026.test"
    gardener = next(f for f in got["findings"] if f["requirement_id"] == "staff.gardener.site")
    assert (gardener["core"], gardener["blocking"], gardener["met"]) == (False, False, False)
    assert (gardener["expected"], gardener["actual"]) == (
        "gardener >= 0.50 FTE",
        "gardener 0.00 FTE",
    )


async def test_activating_2026_1_puts_it_in_force(svc: RunningService) -> None:
    today = almaty_today().isoformat()
    r = await svc.client.post(
        "/v1/requirement-sets/2026.1/activate", json={"effective_from": today}, headers=ADMIN
    )
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["effective_from"]) == ("in_force", today)
    sets = (await svc.client.get("/v1/requirement-sets", headers=READER)).json()["items"]
    assert {s["version"]: s["status"] for s in sets} == {
        "2025.1": "superseded",
        "2026.test": "superseded",
        "2026.1": "in_force",
    }
    app = await submit(svc, core_only_application())
    assert (app["requirement_set"], app["passes"]) == ("2026.1", True)
    assert "staff.gardener.site" not in {f["requirement_id"] for f in app["findings"]}
    r = await svc.client.post(
        "/v1/requirement-sets/9.9/activate", json={"effective_from": today}, headers=ADMIN
    )
    assert r.status_code == 404
    r = await svc.client.get(
        "/v1/decisions", params={"subject": "requirement-set:2026.1"}, headers=READER
    )
    [activated] = r.json()["items"]
    assert (activated["action"], activated["before"], activated["after"]) == (
        "requirement_set.activated",
        {"effective_from": None},
        {"effective_from": today},
    )


async def test_a_set_activated_from_a_future_date_is_scheduled(svc: RunningService) -> None:
    body = lenient_set("2030.1", effective_from="2030-01-01")
    r = await svc.client.post("/v1/requirement-sets", json=body, headers=ADMIN)
    assert (r.status_code, r.json()["status"], r.json()["in_force"]) == (201, "scheduled", False)
    app = await submit(svc, core_only_application())
    assert app["requirement_set"] == "2026.1"
