"""GET /v1/statistics: the figures officials quote, from a fixed world."""

from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import jsonschema
import pytest
import pytest_asyncio
from harness import ADMIN, RunningService, reset_service, running_service, settings_for
from registry_world import (
    ASTANA,
    ASTANA_KATO,
    EAST,
    EAST_KATO,
    license_applied,
    license_event,
    provider_with,
    publish_license,
    register,
)
from ssu_registry.main import build
from ssu_registry.settings import Settings

EAST_KEY = {"Authorization": "Bearer ssu-dev-east-kz"}

pytestmark = pytest.mark.asyncio(loop_scope="session")


def site(places: int, kato: str = EAST_KATO) -> list[dict[str, Any]]:
    return [{"site_id": "S1", "address": "x", "kato": kato, "places": places}]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def svc() -> AsyncIterator[RunningService]:
    await reset_service("registry")
    async with running_service(build(settings_for(Settings, "registry"))) as running:
        await build_world(running)
        yield running


async def enroll(svc: RunningService, iin: str, bin_: str, form: str = "stationary") -> None:
    r = await svc.client.post(
        "/v1/enrollments",
        json={"iin": iin, "provider_bin": bin_, "site_id": "S1", "form": form},
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text


async def build_world(svc: RunningService) -> None:
    c = svc.client
    _, state = await provider_with(
        c,
        ADMIN,
        name="Мемлекеттік",
        legal_form="state",
        sites=site(10),
        subtypes=[("stationary", "elderly"), ("stationary", "child_disability")],
    )
    await provider_with(
        c,
        ADMIN,
        name="ҮЕҰ",
        legal_form="ngo",
        sites=site(5),
        subtypes=[("semi_stationary", "adult_disability")],
    )
    private_number, private = await provider_with(
        c,
        ADMIN,
        name="Жеке",
        legal_form="private",
        sites=site(4),
        subtypes=[("stationary", "adult_disability")],
    )
    _, astana = await provider_with(
        c,
        ADMIN,
        name="Астана үйі",
        legal_form="ngo",
        region=ASTANA,
        sites=site(3, ASTANA_KATO),
        subtypes=[("home", "elderly")],
    )
    elder = await register(c, ADMIN, birth=date(1950, 3, 4))
    child = await register(
        c,
        ADMIN,
        birth=date(2016, 5, 6),
        category="child_disability",
        guardian={"name": "Ана", "phone": "+77010001122"},
    )
    adult = await register(c, ADMIN, birth=date(1986, 7, 8), category="adult_disability")
    astanaian = await register(c, ADMIN, birth=date(1950, 1, 1), region=ASTANA)
    await enroll(svc, elder["iin"], state)
    await enroll(svc, child["iin"], state)
    await enroll(svc, adult["iin"], private)
    await enroll(svc, astanaian["iin"], astana, form="home")
    await publish_license(
        license_event(
            "suspended",
            number=private_number,
            bin=private,
            seq=2,
            name="Жеке",
            legal_form="private",
            sites=site(4),
            subtypes=[("stationary", "adult_disability")],
        )
    )
    await license_applied(c, ADMIN, bin=private, number=private_number, seq=2)


def zeros(*keys: str) -> dict[str, int]:
    return dict.fromkeys(keys, 0)


FORMS = ("stationary", "semi_stationary", "home", "temporary_stay")
CATEGORIES = (
    "child_disability",
    "adult_disability",
    "elderly",
    "domestic_violence",
    "homeless",
    "other",
)

EAST_FIGURES = {
    "providers": {
        "total": 3,
        "state": 1,
        "ngo": 1,
        "private": 1,
        "by_status": {"active": 2, "suspended": 1, "revoked": 0},
    },
    "places": {"total": 19, "occupied": 3, "free": 16},
    "recipients_served": {
        "total": 2,
        "by_form": {**zeros(*FORMS), "stationary": 2},
        "by_category": {**zeros(*CATEGORIES), "elderly": 1, "child_disability": 1},
        "by_age_band": {"0-17": 1, "18-64": 0, "65+": 1},
        "by_legal_form": {"state": 2, "ngo": 0, "private": 0},
    },
    "disrupted_recipients": 1,
}


async def test_region_figures_include_providers_serving_nobody(svc: RunningService) -> None:
    r = await svc.client.get("/v1/statistics", params={"region": EAST}, headers=ADMIN)
    assert r.status_code == 200, r.text
    got = r.json()
    assert {k: got[k] for k in EAST_FIGURES} == EAST_FIGURES
    assert got["region"] == EAST
    assert got["name_ru"] == "Восточно-Казахстанская область"
    assert got["name_kk"] == "Шығыс Қазақстан облысы"
    assert [
        (p["name"], p["legal_form"], p["status"], p["places"], p["recipients_served"])
        for p in got["by_provider"]
    ] == [
        ("Жеке", "private", "suspended", 4, 0),
        ("Мемлекеттік", "state", "active", 10, 2),
        ("ҮЕҰ", "ngo", "active", 5, 0),
    ]
    assert [b["region"] for b in got["regions"]] == [EAST]
    # The regional key gets the same figures for its own region, and 404 for another.
    mine = await svc.client.get("/v1/statistics", headers=EAST_KEY)
    assert {k: mine.json()[k] for k in EAST_FIGURES} == EAST_FIGURES
    other = await svc.client.get("/v1/statistics", params={"region": ASTANA}, headers=EAST_KEY)
    assert other.status_code == 404


async def test_country_figures_with_a_block_per_region(svc: RunningService) -> None:
    got = (await svc.client.get("/v1/statistics", headers=ADMIN)).json()
    assert got["region"] is None and "by_provider" not in got
    assert got["providers"]["total"] == 4 and got["providers"]["ngo"] == 2
    assert got["places"] == {"total": 22, "occupied": 3, "free": 19}
    assert got["recipients_served"]["total"] == 3
    assert got["recipients_served"]["by_form"]["home"] == 1
    assert got["recipients_served"]["by_age_band"] == {"0-17": 1, "18-64": 0, "65+": 2}
    assert got["disrupted_recipients"] == 1
    east, astana = got["regions"]
    assert {k: east[k] for k in EAST_FIGURES} == EAST_FIGURES
    assert astana["region"] == ASTANA and astana["name_ru"] == "город Астана"
    assert astana["providers"]["ngo"] == 1
    assert astana["recipients_served"]["by_legal_form"] == {"state": 0, "ngo": 1, "private": 0}
    # Home care takes no place at a site.
    assert astana["places"] == {"total": 3, "occupied": 0, "free": 3}


async def test_the_figures_are_what_the_document_describes(svc: RunningService) -> None:
    """A generated client reads the figures by the schema: every member documented, and both
    answers (the country's, a region's with its providers) valid against it."""
    doc = (await svc.client.get("/openapi.json")).json()
    ok = doc["paths"]["/v1/statistics"]["get"]["responses"]["200"]["content"]["application/json"]
    assert ok["schema"] == {"$ref": "#/components/schemas/StatisticsOut"}
    figures = doc["components"]["schemas"]["StatisticsOut"]
    assert set(figures["required"]) == {
        "as_of",
        "region",
        "providers",
        "places",
        "recipients_served",
        "disrupted_recipients",
        "unplaced_recipients",
        "waiting",
        "regions",
    }
    assert {"name_kk", "name_ru", "by_provider"} <= set(figures["properties"])
    validator = jsonschema.Draft202012Validator({**ok["schema"], "components": doc["components"]})
    for params in ({}, {"region": EAST}):
        got = (await svc.client.get("/v1/statistics", params=params, headers=ADMIN)).json()
        validator.validate(got)
    # Members are checked, not only present: a count that is not a number is refused.
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({**got, "places": {"total": "22", "occupied": 3, "free": 19}})


async def test_metrics_export_enrollments_by_status_and_region(svc: RunningService) -> None:
    text = (await svc.client.get("/metrics")).text
    assert f'ssu_enrollments{{region="{EAST}",service="registry",status="active"}} 2.0' in text
    assert f'ssu_enrollments{{region="{EAST}",service="registry",status="disrupted"}} 1.0' in text
