"""Enrollments: every DESIGN §3 rule, capacity under concurrency, events, regions."""

import asyncio
from collections.abc import AsyncIterator
from datetime import date

import pytest
import pytest_asyncio
from harness import ADMIN, RunningService, event_probe, reset_service, running_service, settings_for
from registry_world import (
    ASTANA,
    ASTANA_KATO,
    EAST,
    EAST_KATO,
    license_applied,
    license_event,
    new_iin,
    provider_with,
    publish_license,
    register,
    wait_event,
)
from ssu_registry import domain
from ssu_registry.main import build
from ssu_registry.settings import Settings

EAST_KEY = {"Authorization": "Bearer ssu-dev-east-kz"}

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def svc() -> AsyncIterator[RunningService]:
    await reset_service("registry")
    async with running_service(build(settings_for(Settings, "registry"))) as running:
        yield running


def site(site_id: str = "S1", places: int | None = 5, kato: str = EAST_KATO) -> dict[str, object]:
    return {"site_id": site_id, "address": f"Өскемен, {site_id}", "kato": kato, "places": places}


async def enroll(svc: RunningService, headers: dict[str, str] = ADMIN, **body: object):  # type: ignore[no-untyped-def]
    return await svc.client.post("/v1/enrollments", json=body, headers=headers)


async def test_enrollment_starts_and_is_announced_to_the_guardian_of_a_minor(
    svc: RunningService,
) -> None:
    number, bin_ = await provider_with(
        svc.client,
        ADMIN,
        sites=[site(places=5)],
        subtypes=[("semi_stationary", "child_disability")],
    )
    birth = date(2016, 4, 9)
    child = await register(
        svc.client,
        ADMIN,
        birth=birth,
        sex="male",
        category="child_disability",
        guardian={"name": "Ержан Ахметов", "phone": "+77019998877"},
    )
    async with event_probe("registry.enrollment.#") as probe:
        r = await enroll(
            svc,
            iin=child["iin"],
            provider_bin=bin_,
            site_id="S1",
            form="semi_stationary",
            start_date="2026-02-02",
        )
        assert r.status_code == 201, r.text
        got = r.json()
        event = await wait_event(probe, lambda e: e["subject"] == got["id"])
    assert got == {
        "id": got["id"],
        "iin": child["iin"],
        "provider_bin": bin_,
        "license_number": number,
        "site_id": "S1",
        "region": EAST,
        "form": "semi_stationary",
        "category": "child_disability",
        "start_date": "2026-02-02",
        "end_date": None,
        "status": "active",
        "end_reason": None,
        "disrupted_on": None,
        "alternatives": None,
    }
    assert event["type"] == "registry.enrollment.started.v1"
    assert event["data"] == {
        "enrollment_id": got["id"],
        "iin": child["iin"],
        "provider_bin": bin_,
        "provider_name": "Мейірім",
        "license_number": number,
        "site_id": "S1",
        "site_address": "Өскемен, S1",
        "region": EAST,
        "form": "semi_stationary",
        "category": "child_disability",
        "start_date": "2026-02-02",
        "seq": 1,
        "addressee": {
            "name": "Ержан Ахметов",
            "email": None,
            "phone": "+77019998877",
            "language": "kk",
            "is_guardian": True,
        },
    }
    listed = await svc.client.get("/v1/providers", params={"bin": bin_}, headers=ADMIN)
    assert listed.json()["items"][0]["sites"][0]["free_places"] == 4


async def test_an_adult_is_told_directly(svc: RunningService) -> None:
    _, bin_ = await provider_with(svc.client, ADMIN, sites=[site()])
    adult = await register(
        svc.client, ADMIN, guardian={"name": "Қамқоршы", "phone": "+77010000001"}
    )
    async with event_probe("registry.enrollment.#") as probe:
        r = await enroll(svc, iin=adult["iin"], provider_bin=bin_, site_id="S1", form="stationary")
        assert r.status_code == 201
        event = await wait_event(probe, lambda e: e["subject"] == r.json()["id"])
    assert event["data"]["addressee"] == {
        "name": "Айгерим Сейтқали",
        "email": None,
        "phone": "+77051112233",
        "language": "kk",
        "is_guardian": False,
    }


async def test_license_must_be_active(svc: RunningService) -> None:
    number, bin_ = await provider_with(svc.client, ADMIN, sites=[site()])
    await publish_license(
        license_event("suspended", number=number, bin=bin_, seq=2, sites=[site()])
    )
    await license_applied(svc.client, ADMIN, bin=bin_, number=number, seq=2)
    person = await register(svc.client, ADMIN)
    r = await enroll(svc, iin=person["iin"], provider_bin=bin_, site_id="S1", form="stationary")
    assert r.status_code == 409
    assert r.json()["detail"] == f"the license {number} is suspended"
    assert r.json()["current_status"] == "suspended"


async def test_license_must_cover_the_subtype(svc: RunningService) -> None:
    number, bin_ = await provider_with(svc.client, ADMIN, sites=[site()])
    person = await register(svc.client, ADMIN, category="homeless")
    r = await enroll(svc, iin=person["iin"], provider_bin=bin_, site_id="S1", form="stationary")
    assert r.status_code == 422
    assert r.json()["detail"] == (
        f"the license {number} does not cover the form stationary for the category homeless"
    )
    assert r.json()["errors"] == [{"field": "form", "message": r.json()["detail"]}]
    r = await enroll(
        svc, iin=person["iin"], provider_bin=bin_, site_id="S1", form="home", category="elderly"
    )
    assert r.status_code == 422


async def test_unknown_site_and_recipient(svc: RunningService) -> None:
    _, bin_ = await provider_with(svc.client, ADMIN, sites=[site()])
    person = await register(svc.client, ADMIN)
    r = await enroll(svc, iin=person["iin"], provider_bin=bin_, site_id="NOPE", form="stationary")
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "site_id"
    r = await enroll(svc, iin=new_iin(), provider_bin=bin_, site_id="S1", form="stationary")
    assert r.status_code == 404


async def test_one_active_enrollment_per_form(svc: RunningService) -> None:
    _, bin_ = await provider_with(
        svc.client,
        ADMIN,
        sites=[site()],
        subtypes=[("stationary", "elderly"), ("home", "elderly")],
    )
    person = await register(svc.client, ADMIN)
    first = await enroll(svc, iin=person["iin"], provider_bin=bin_, site_id="S1", form="stationary")
    assert first.status_code == 201
    again = await enroll(svc, iin=person["iin"], provider_bin=bin_, site_id="S1", form="stationary")
    assert again.status_code == 409
    assert again.json()["enrollment_id"] == first.json()["id"]
    other_form = await enroll(svc, iin=person["iin"], provider_bin=bin_, site_id="S1", form="home")
    assert other_form.status_code == 201


async def test_twenty_concurrent_requests_for_the_last_place_have_one_winner(
    svc: RunningService,
) -> None:
    number, bin_ = await provider_with(svc.client, ADMIN, sites=[site(places=3)])
    for _ in range(2):
        person = await register(svc.client, ADMIN)
        r = await enroll(svc, iin=person["iin"], provider_bin=bin_, site_id="S1", form="stationary")
        assert r.status_code == 201
    people = [await register(svc.client, ADMIN) for _ in range(20)]
    answers = await asyncio.gather(
        *(
            enroll(svc, iin=p["iin"], provider_bin=bin_, site_id="S1", form="stationary")
            for p in people
        )
    )
    codes = sorted(a.status_code for a in answers)
    assert codes == [201] + [409] * 19
    refused = next(a for a in answers if a.status_code == 409).json()
    assert refused["detail"] == "site S1 has no free places (3 of 3 taken)"
    taken = await svc.pool.fetchval(
        "SELECT count(*) FROM enrollments WHERE license_number = $1 AND status = 'active'", number
    )
    assert taken == 3


async def test_home_care_has_no_place_limit_and_takes_no_place(svc: RunningService) -> None:
    _, bin_ = await provider_with(
        svc.client,
        ADMIN,
        sites=[site(places=1)],
        subtypes=[("home", "elderly"), ("stationary", "elderly")],
    )
    for _ in range(3):
        person = await register(svc.client, ADMIN)
        r = await enroll(svc, iin=person["iin"], provider_bin=bin_, site_id="S1", form="home")
        assert r.status_code == 201
    person = await register(svc.client, ADMIN)
    r = await enroll(svc, iin=person["iin"], provider_bin=bin_, site_id="S1", form="stationary")
    assert r.status_code == 201, r.text


async def test_a_site_dropped_from_the_license_takes_nobody(svc: RunningService) -> None:
    number, bin_ = await provider_with(svc.client, ADMIN, sites=[site("S1"), site("S2")])
    await publish_license(
        license_event("amended", number=number, bin=bin_, seq=2, sites=[site("S1")])
    )
    await license_applied(svc.client, ADMIN, bin=bin_, number=number, seq=2)
    person = await register(svc.client, ADMIN)
    r = await enroll(svc, iin=person["iin"], provider_bin=bin_, site_id="S2", form="stationary")
    assert r.status_code == 422
    assert r.json()["detail"] == f"site S2 is no longer part of the license {number}"


async def test_ending_an_enrollment_frees_its_place_and_is_announced(svc: RunningService) -> None:
    _, bin_ = await provider_with(svc.client, ADMIN, sites=[site(places=1)])
    person = await register(svc.client, ADMIN)
    started = await enroll(
        svc,
        iin=person["iin"],
        provider_bin=bin_,
        site_id="S1",
        form="stationary",
        start_date="2026-01-10",
    )
    eid = started.json()["id"]
    async with event_probe("registry.enrollment.ended.#") as probe:
        r = await svc.client.post(
            f"/v1/enrollments/{eid}/end",
            json={"end_date": "2026-03-31", "reason": "moved to relatives"},
            headers=ADMIN,
        )
        assert r.status_code == 200
        event = await wait_event(probe, lambda e: e["subject"] == eid)
    assert r.json()["status"] == "ended" and r.json()["end_date"] == "2026-03-31"
    assert event["data"] == {
        "enrollment_id": eid,
        "iin": person["iin"],
        "provider_bin": bin_,
        "region": EAST,
        "form": "stationary",
        "category": "elderly",
        "end_date": "2026-03-31",
        "reason": "moved to relatives",
        "seq": 2,  # started 1, ended 2
    }
    again = await svc.client.post(f"/v1/enrollments/{eid}/end", json={}, headers=ADMIN)
    assert again.status_code == 409
    early = await enroll(svc, iin=person["iin"], provider_bin=bin_, site_id="S1", form="stationary")
    assert early.status_code == 201  # the place is free again
    before_start = await svc.client.post(
        f"/v1/enrollments/{early.json()['id']}/end", json={"end_date": "2000-01-01"}, headers=ADMIN
    )
    assert before_start.status_code == 422
    assert before_start.json()["errors"][0]["field"] == "end_date"
    assert (
        await svc.client.post("/v1/enrollments/not-a-uuid/end", json={}, headers=ADMIN)
    ).status_code == 404


async def test_lists_enrollments_by_provider_recipient_and_status(svc: RunningService) -> None:
    number, bin_ = await provider_with(svc.client, ADMIN, sites=[site(places=10)])
    people = [await register(svc.client, ADMIN) for _ in range(3)]
    ids = []
    for p in people:
        r = await enroll(svc, iin=p["iin"], provider_bin=bin_, site_id="S1", form="stationary")
        ids.append(r.json()["id"])
    await svc.client.post(f"/v1/enrollments/{ids[0]}/end", json={}, headers=ADMIN)
    r = await svc.client.get(
        "/v1/enrollments", params={"provider": bin_, "status": "active"}, headers=ADMIN
    )
    assert sorted(i["id"] for i in r.json()["items"]) == sorted(ids[1:])
    r = await svc.client.get(
        "/v1/enrollments", params={"recipient": people[0]["iin"]}, headers=ADMIN
    )
    assert [i["status"] for i in r.json()["items"]] == ["ended"]
    first = await svc.client.get(
        "/v1/enrollments", params={"provider": number, "limit": 2}, headers=ADMIN
    )
    rest = await svc.client.get(
        "/v1/enrollments",
        params={"provider": number, "limit": 2, "cursor": first.json()["next_cursor"]},
        headers=ADMIN,
    )
    seen = [i["id"] for i in first.json()["items"] + rest.json()["items"]]
    assert sorted(seen) == sorted(ids) and rest.json()["next_cursor"] is None


async def test_a_regional_key_enrolls_and_sees_only_its_region(svc: RunningService) -> None:
    _, bin_ = await provider_with(
        svc.client, ADMIN, sites=[site("E1"), site("A1", kato=ASTANA_KATO)]
    )
    easterner = await register(svc.client, ADMIN, region=EAST)
    astanaian = await register(svc.client, ADMIN, region=ASTANA)
    r = await enroll(
        svc, EAST_KEY, iin=astanaian["iin"], provider_bin=bin_, site_id="A1", form="stationary"
    )
    assert r.status_code == 404
    r = await enroll(
        svc, EAST_KEY, iin=easterner["iin"], provider_bin=bin_, site_id="A1", form="stationary"
    )
    assert r.status_code == 404
    theirs = await enroll(
        svc, iin=astanaian["iin"], provider_bin=bin_, site_id="A1", form="stationary"
    )
    ours = await enroll(
        svc, EAST_KEY, iin=easterner["iin"], provider_bin=bin_, site_id="E1", form="stationary"
    )
    assert (theirs.status_code, ours.status_code) == (201, 201)
    r = await svc.client.get("/v1/enrollments", params={"provider": bin_}, headers=EAST_KEY)
    assert [i["id"] for i in r.json()["items"]] == [ours.json()["id"]]
    r = await svc.client.get(
        "/v1/enrollments", params={"provider": bin_, "region": ASTANA}, headers=EAST_KEY
    )
    assert r.status_code == 404
    tid = theirs.json()["id"]
    assert (await svc.client.get(f"/v1/enrollments/{tid}", headers=EAST_KEY)).status_code == 404
    r = await svc.client.post(f"/v1/enrollments/{tid}/end", json={}, headers=EAST_KEY)
    assert r.status_code == 404


async def test_a_site_id_alone_names_the_site(svc: RunningService) -> None:
    number, _ = await provider_with(svc.client, ADMIN, sites=[site("d1f0a6c2-unique-site")])
    person = await register(svc.client, ADMIN)
    r = await enroll(svc, iin=person["iin"], site_id="d1f0a6c2-unique-site", form="stationary")
    assert r.status_code == 201, r.text
    assert r.json()["license_number"] == number
    r = await enroll(svc, iin=person["iin"], provider_bin="123456789012", site_id="x", form="home")
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["provider_bin"]


@pytest.mark.parametrize("path", ["/v1/enrollments", "/v1/disruptions", "/v1/providers"])
@pytest.mark.parametrize("cursor", ["%%%", "WyJ4Il0", "eyJhIjogMX0", "MTIz"])
async def test_a_cursor_we_did_not_issue_is_422(
    svc: RunningService, path: str, cursor: str
) -> None:
    r = await svc.client.get(path, params={"cursor": cursor}, headers=ADMIN)
    assert r.status_code in (200, 422), r.text
    if r.status_code == 422:
        assert r.json()["errors"][0]["field"] == "query.cursor"


async def test_ending_without_a_body_ends_today(svc: RunningService) -> None:
    _, bin_ = await provider_with(svc.client, ADMIN, sites=[site()])
    person = await register(svc.client, ADMIN)
    r = await enroll(
        svc,
        iin=person["iin"],
        provider_bin=bin_,
        site_id="S1",
        form="stationary",
        start_date="2026-01-05",
    )
    ended = await svc.client.post(f"/v1/enrollments/{r.json()['id']}/end", headers=ADMIN)
    assert ended.status_code == 200, ended.text
    assert ended.json()["end_reason"] == "ended"
    assert ended.json()["end_date"] == domain.today().isoformat()
