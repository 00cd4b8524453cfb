"""The provider read model built from licensing events, and GET /v1/providers."""

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from harness import ADMIN, RunningService, eventually, reset_service, running_service, settings_for
from registry_world import (
    ASTANA,
    ASTANA_KATO,
    EAST,
    EAST_KATO,
    license_event,
    new_bin,
    new_license_number,
    publish_license,
)
from ssu_registry.main import build
from ssu_registry.settings import Settings


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def svc() -> AsyncIterator[RunningService]:
    await reset_service("registry")
    async with running_service(build(settings_for(Settings, "registry"))) as running:
        yield running


async def provider(svc: RunningService, number: str, min_seq: int = 1) -> dict[str, Any] | None:
    r = await svc.client.get("/v1/providers", params={"limit": 200}, headers=ADMIN)
    assert r.status_code == 200
    for item in r.json()["items"]:
        if item["license_number"] == number and item["seq"] >= min_seq:
            return item
    return None


async def test_issued_license_appears_with_sites_and_free_places(svc: RunningService) -> None:
    number, bin_ = new_license_number(), new_bin()
    await publish_license(license_event("issued", number=number, bin=bin_, seq=1))

    await eventually(lambda: provider(svc, number), timeout=30)
    r = await svc.client.get("/v1/providers", params={"region": EAST}, headers=ADMIN)
    assert r.status_code == 200
    found = [i for i in r.json()["items"] if i["license_number"] == number]
    assert found == [
        {
            "license_number": number,
            "bin": bin_,
            "name": "Мейірім",
            "legal_form": "ngo",
            "region": EAST,
            "status": "active",
            "seq": 1,
            "effective_date": "2026-01-05",
            "contact": {"email": "info@meirim.kz", "phone": "+77011234567", "language": "kk"},
            "subtypes": [{"form": "stationary", "category": "elderly"}],
            "sites": [
                {
                    "site_id": "S1",
                    "address": "Өскемен, Абай 1",
                    "kato": EAST_KATO,
                    "region": EAST,
                    "places": 10,
                    "occupied": 0,
                    "free_places": 10,
                }
            ],
            "free_places": 10,
        }
    ]
    other = await svc.client.get("/v1/providers", params={"region": ASTANA}, headers=ADMIN)
    assert number not in [i["license_number"] for i in other.json()["items"]]


async def test_older_seq_never_overwrites_newer_state(svc: RunningService) -> None:
    number, bin_ = new_license_number(), new_bin()
    two_sites = [
        {"site_id": "S1", "address": "Өскемен, Абай 1", "kato": EAST_KATO, "places": 10},
        {"site_id": "S2", "address": "Астана, Мәңгілік Ел 5", "kato": ASTANA_KATO, "places": 4},
    ]
    await publish_license(license_event("amended", number=number, bin=bin_, seq=2, sites=two_sites))
    await eventually(lambda: provider(svc, number, 2), timeout=30)
    await publish_license(license_event("issued", number=number, bin=bin_, seq=1, name="Old"))
    # A later event (seq 3) proves the stale one was consumed before it.
    await publish_license(
        license_event("suspended", number=number, bin=bin_, seq=3, sites=two_sites)
    )
    got = await eventually(lambda: provider(svc, number, 3), timeout=30)
    assert got["name"] == "Мейірім"
    assert got["status"] == "suspended"
    assert [s["site_id"] for s in got["sites"]] == ["S1", "S2"]
    # The branch in Astana makes the provider visible from Astana too.
    r = await svc.client.get("/v1/providers", params={"region": ASTANA}, headers=ADMIN)
    assert number in [i["license_number"] for i in r.json()["items"]]


async def test_duplicate_delivery_has_no_effect(svc: RunningService) -> None:
    number, bin_ = new_license_number(), new_bin()
    event = license_event("issued", number=number, bin=bin_, seq=1)
    event_id = await publish_license(event)
    await publish_license(event, event_id=event_id)
    await eventually(lambda: provider(svc, number), timeout=30)

    async def handled() -> int:
        return await svc.pool.fetchval("SELECT count(*) FROM inbox WHERE event_id = $1", event_id)

    assert await eventually(handled, timeout=30) == 1


async def test_filters_by_subtype_and_free_places(svc: RunningService) -> None:
    full, roomy = new_license_number(), new_license_number()
    await publish_license(
        license_event(
            "issued",
            number=full,
            bin=new_bin(),
            seq=1,
            sites=[{"site_id": "F", "address": "a", "kato": EAST_KATO, "places": 0}],
            subtypes=[("semi_stationary", "child_disability")],
        )
    )
    await publish_license(
        license_event(
            "issued",
            number=roomy,
            bin=new_bin(),
            seq=1,
            sites=[{"site_id": "R", "address": "b", "kato": EAST_KATO, "places": 3}],
            subtypes=[("semi_stationary", "child_disability")],
        )
    )
    await eventually(lambda: provider(svc, full), timeout=30)
    await eventually(lambda: provider(svc, roomy), timeout=30)
    params = {"region": EAST, "form": "semi_stationary", "category": "child_disability"}
    r = await svc.client.get("/v1/providers", params=params, headers=ADMIN)
    assert {full, roomy} <= {i["license_number"] for i in r.json()["items"]}
    r = await svc.client.get("/v1/providers", params={**params, "free": "true"}, headers=ADMIN)
    numbers = {i["license_number"] for i in r.json()["items"]}
    assert roomy in numbers and full not in numbers
    r = await svc.client.get(
        "/v1/providers", params={"region": EAST, "form": "home"}, headers=ADMIN
    )
    assert not {full, roomy} & {i["license_number"] for i in r.json()["items"]}


async def test_providers_need_a_key_and_page_with_a_cursor(svc: RunningService) -> None:
    assert (await svc.client.get("/v1/providers")).status_code == 401
    for _ in range(3):
        number = new_license_number()
        await publish_license(license_event("issued", number=number, bin=new_bin(), seq=1))
        await eventually(lambda n=number: provider(svc, n), timeout=30)
    first = (await svc.client.get("/v1/providers", params={"limit": 2}, headers=ADMIN)).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    second = (
        await svc.client.get(
            "/v1/providers", params={"limit": 2, "cursor": first["next_cursor"]}, headers=ADMIN
        )
    ).json()
    assert not {i["license_number"] for i in first["items"]} & {
        i["license_number"] for i in second["items"]
    }


pytestmark = pytest.mark.asyncio(loop_scope="session")
