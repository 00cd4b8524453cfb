"""The waiting list and placement offers (issue 18): the line's stated priority, the offer
cycle (accept, decline, lapse), concurrent frees on two replicas, the cascade from a
disruption or a revocation, and the figures of waiting."""

import asyncio
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import pytest
import pytest_asyncio
from harness import (
    ADMIN,
    RunningService,
    event_probe,
    eventually,
    reset_service,
    running_service,
    settings_for,
)
from registry_world import (
    PATIENCE,
    license_applied,
    license_event,
    provider_with,
    publish_license,
    register,
    wait_event,
)
from ssu_registry import domain, service
from ssu_registry.main import build
from ssu_registry.settings import Settings

pytestmark = pytest.mark.asyncio(loop_scope="session")

KOSTANAY, KOSTANAY_KATO = "390000000", "391010000"
KARAGANDA, KARAGANDA_KATO = "350000000", "351010000"
AKTOBE, AKTOBE_KATO = "150000000", "151010000"
ATYRAU, ATYRAU_KATO = "230000000", "231010000"
SHELTER = [("temporary_stay", "homeless")]
CARE = [("stationary", "adult_disability")]
HOLD_DAYS = 3
WAIT_DAYS = 5


def sites(kato: str, places: int, site_id: str = "S1") -> list[dict[str, Any]]:
    return [{"site_id": site_id, "address": f"{kato} {site_id}", "kato": kato, "places": places}]


async def enroll(svc: RunningService, iin: str, bin_: str, form: str, start: str) -> str:
    r = await svc.client.post(
        "/v1/enrollments",
        json={"iin": iin, "provider_bin": bin_, "site_id": "S1", "form": form, "start_date": start},
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    enrollment_id: str = r.json()["id"]
    return enrollment_id


async def join(svc: RunningService, iin: str, form: str, **extra: Any) -> dict[str, Any]:
    r = await svc.client.post(
        "/v1/waiting", json={"iin": iin, "form": form, **extra}, headers=ADMIN
    )
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"/v1/waiting/{r.json()['id']}"
    body: dict[str, Any] = r.json()
    return body


async def line(svc: RunningService, region: str) -> list[tuple[str, int]]:
    r = await svc.client.get("/v1/waiting", params={"region": region}, headers=ADMIN)
    assert r.status_code == 200, r.text
    return [(i["iin"], i["position"]) for i in r.json()["items"]]


async def request(svc: RunningService, request_id: str) -> dict[str, Any]:
    r = await svc.client.get(f"/v1/waiting/{request_id}", headers=ADMIN)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def end(svc: RunningService, enrollment_id: str, day: str) -> None:
    r = await svc.client.post(
        f"/v1/enrollments/{enrollment_id}/end", json={"end_date": day}, headers=ADMIN
    )
    assert r.status_code == 200, r.text


async def open_offers(svc: RunningService, region: str) -> list[dict[str, Any]]:
    r = await svc.client.get(
        "/v1/offers", params={"region": region, "status": "open"}, headers=ADMIN
    )
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def svc() -> AsyncIterator[RunningService]:
    await reset_service("registry")
    settings = settings_for(
        Settings,
        "registry",
        offer_hold_days=HOLD_DAYS,
        disruption_wait_days=WAIT_DAYS,
        waiting_check_seconds=3600,
    )
    async with running_service(build(settings)) as running:
        yield running


# The line's priority


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def priority(svc: RunningService) -> AsyncIterator[dict[str, Any]]:
    """Kostanay's shelter line: one full site (1 place). Four people ask on their dates; a fifth
    lost her place at a suspended shelter. Expected line: the disrupted one, the child, the
    one of disability group 1, then the others by the date they asked."""
    c = svc.client
    _, full_bin = await provider_with(
        c, ADMIN, region=KOSTANAY, sites=sites(KOSTANAY_KATO, 1), subtypes=SHELTER
    )
    lost_number, lost_bin = await provider_with(
        c, ADMIN, region=KOSTANAY, sites=sites(KOSTANAY_KATO, 5), subtypes=SHELTER, name="Үміт"
    )
    occupant = await register(c, ADMIN, region=KOSTANAY, category="homeless")
    await enroll(svc, occupant["iin"], full_bin, "temporary_stay", "2026-02-01")
    people = {
        "late": await register(c, ADMIN, region=KOSTANAY, category="homeless"),
        "group1": await register(
            c, ADMIN, region=KOSTANAY, category="homeless", disability_group=1
        ),
        "child": await register(
            c,
            ADMIN,
            region=KOSTANAY,
            category="homeless",
            birth=date(2012, 3, 4),
            guardian={"name": "Дана Нұрланова", "phone": "+77020000001"},
        ),
        "early": await register(c, ADMIN, region=KOSTANAY, category="homeless"),
        "lost": await register(c, ADMIN, region=KOSTANAY, category="homeless"),
    }
    await enroll(svc, people["lost"]["iin"], lost_bin, "temporary_stay", "2026-02-01")
    await publish_license(
        license_event(
            "suspended", number=lost_number, bin=lost_bin, seq=2, region=KOSTANAY,
            sites=sites(KOSTANAY_KATO, 5), subtypes=SHELTER, name="Үміт",
            effective_date=date(2026, 3, 20),
        )
    )  # fmt: skip
    await license_applied(c, ADMIN, bin=lost_bin, number=lost_number, seq=2)
    asked = {
        "late": "2026-01-10",
        "group1": "2026-02-01",
        "child": "2026-03-01",
        "early": "2026-01-05",
        "lost": "2026-04-01",
    }
    async with event_probe("registry.waiting.#") as probe:
        joined = {
            who: await join(svc, people[who]["iin"], "temporary_stay", asked_on=asked[who])
            for who in asked
        }
        events = {
            who: await wait_event(
                probe, lambda e, r=joined[who]["id"]: e["subject"] == r and "joined" in e["type"]
            )
            for who in asked
        }
    yield {"people": people, "joined": joined, "events": events}


async def test_the_line_follows_the_stated_priority(
    svc: RunningService, priority: dict[str, Any]
) -> None:
    iin = {who: p["iin"] for who, p in priority["people"].items()}
    assert await line(svc, KOSTANAY) == [
        (iin["lost"], 1),
        (iin["child"], 2),
        (iin["group1"], 3),
        (iin["early"], 4),
        (iin["late"], 5),
    ]
    flags = {
        who: (j["disrupted"], j["child"], j["group_one"]) for who, j in priority["joined"].items()
    }
    assert flags == {
        "late": (False, False, False),
        "group1": (False, False, True),
        "child": (False, True, False),
        "early": (False, False, False),
        "lost": (True, False, False),
    }
    # Each was told the place in line on joining, as the line stood then.
    told = {
        who: (e["data"]["position"], e["data"]["waiting"]) for who, e in priority["events"].items()
    }
    assert told == {
        "late": (1, 1),
        "group1": (1, 2),
        "child": (1, 3),
        "early": (3, 4),
        "lost": (1, 5),
    }
    lost = priority["events"]["lost"]["data"]
    assert (lost["iin"], lost["region"], lost["form"], lost["category"], lost["asked_on"]) == (
        iin["lost"], KOSTANAY, "temporary_stay", "homeless", "2026-04-01",
    )  # fmt: skip
    assert lost["addressee"]["language"] == "kk" and lost["addressee"]["is_guardian"] is False


async def test_the_priority_is_configurable(svc: RunningService, priority: dict[str, Any]) -> None:
    iin = {who: p["iin"] for who, p in priority["people"].items()}
    before = service.waiting_rules()
    service.use_waiting_rules(service.WaitingRules(weights=domain.priority_weights(("group_one",))))
    try:
        got = await line(svc, KOSTANAY)
    finally:
        service.use_waiting_rules(before)
    assert got == [
        (iin["group1"], 1),
        (iin["early"], 2),
        (iin["late"], 3),
        (iin["child"], 4),
        (iin["lost"], 5),
    ]
    with pytest.raises(ValueError, match="at most once"):
        domain.priority_weights(("child", "age"))
    with pytest.raises(ValueError):
        settings_for(Settings, "registry", waiting_priority=("child", "child"))


async def test_joining_refuses_what_a_line_cannot_hold(
    svc: RunningService, priority: dict[str, Any]
) -> None:
    people = priority["people"]
    r = await svc.client.post(
        "/v1/waiting", json={"iin": people["late"]["iin"], "form": "temporary_stay"}, headers=ADMIN
    )
    assert r.status_code == 409, r.text
    assert r.json()["request_id"] == priority["joined"]["late"]["id"]
    r = await svc.client.post(
        "/v1/waiting", json={"iin": people["late"]["iin"], "form": "home"}, headers=ADMIN
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "form"
    tomorrow = (domain.today() + timedelta(days=1)).isoformat()
    r = await svc.client.post(
        "/v1/waiting",
        json={"iin": people["late"]["iin"], "form": "stationary", "asked_on": tomorrow},
        headers=ADMIN,
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "asked_on", r.text
    r = await svc.client.post(
        "/v1/waiting",
        json={
            "iin": people["late"]["iin"],
            "form": "stationary",
            "preferred_bins": ["990140004654"],
        },
        headers=ADMIN,
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "preferred_bins", r.text


async def test_waiting_figures_in_statistics_and_metrics(
    svc: RunningService, priority: dict[str, Any]
) -> None:
    r = await svc.client.get(
        "/v1/statistics", params={"region": KOSTANAY, "as_of": "2026-06-01"}, headers=ADMIN
    )
    assert r.status_code == 200, r.text
    # Days waited on 2026-06-01: 61 (lost), 92 (child), 120 (group 1), 142 (late), 147 (early).
    assert r.json()["waiting"] == {
        "recipients": 5,
        "median_days": 120.0,
        "by_line": [
            {
                "form": "temporary_stay",
                "category": "homeless",
                "recipients": 5,
                "median_days": 120.0,
            }
        ],
    }
    r = await svc.client.get(
        "/v1/statistics", params={"region": KOSTANAY, "as_of": "2026-02-15"}, headers=ADMIN
    )
    # On 2026-02-15 only three had asked: 41, 36 and 14 days before.
    assert r.json()["waiting"]["recipients"] == 3
    assert r.json()["waiting"]["median_days"] == 36.0
    text = (await svc.client.get("/metrics")).text
    labels = f'category="homeless",form="temporary_stay",region="{KOSTANAY}",service="registry"'
    assert f"ssu_waiting_recipients{{{labels}}} 5.0" in text
    median = (domain.today() - date(2026, 2, 1)).days
    assert f"ssu_waiting_median_days{{{labels}}} {float(median)}" in text


# The offer cycle


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def cycle(svc: RunningService) -> dict[str, Any]:
    """Karaganda: one care home of 2 places, both taken; three wait (first, second, third by
    the date they asked)."""
    c = svc.client
    number, bin_ = await provider_with(
        c, ADMIN, region=KARAGANDA, sites=sites(KARAGANDA_KATO, 2), subtypes=CARE, name="Шапағат"
    )
    occupants = [
        await register(c, ADMIN, region=KARAGANDA, category="adult_disability") for _ in range(2)
    ]
    stays = [await enroll(svc, o["iin"], bin_, "stationary", "2026-02-01") for o in occupants]
    people = {
        who: await register(c, ADMIN, region=KARAGANDA, category="adult_disability", language="ru")
        for who in ("first", "second", "third")
    }
    requests = {
        who: await join(svc, people[who]["iin"], "stationary", asked_on=day)
        for who, day in (("first", "2026-03-01"), ("second", "2026-03-02"), ("third", "2026-03-03"))
    }
    return {"number": number, "bin": bin_, "stays": stays, "people": people, "requests": requests}


async def test_a_freed_place_is_offered_accepted_declined_and_lapses(
    svc: RunningService, cycle: dict[str, Any]
) -> None:
    c, people, requests = svc.client, cycle["people"], cycle["requests"]
    today = domain.today()
    assert all(r["offer"] is None for r in requests.values())
    async with event_probe("registry.#") as probe:
        await end(svc, cycle["stays"][0], "2026-04-30")
        made = await wait_event(probe, lambda e: e["type"] == "registry.offer.made.v1")
        assert made["data"] == {
            "offer_id": made["data"]["offer_id"],
            "request_id": requests["first"]["id"],
            "iin": people["first"]["iin"],
            "region": KARAGANDA,
            "form": "stationary",
            "category": "adult_disability",
            "provider_bin": cycle["bin"],
            "provider_name": "Шапағат",
            "license_number": cycle["number"],
            "site_id": "S1",
            "site_address": f"{KARAGANDA_KATO} S1",
            "made_on": today.isoformat(),
            "expires_on": (today + timedelta(days=HOLD_DAYS)).isoformat(),
            "addressee": {
                "name": "Айгерим Сейтқали",
                "email": None,
                "phone": "+77051112233",
                "language": "ru",
                "is_guardian": False,
            },
        }
        first_offer = made["data"]["offer_id"]
        held = (await request(svc, requests["first"]["id"]))["offer"]
        assert held["offer_id"] == first_offer and held["expires_on"] == made["data"]["expires_on"]
        # The held place is taken for everyone else: a direct enrollment finds none free.
        outsider = await register(c, ADMIN, region=KARAGANDA, category="adult_disability")
        r = await c.post(
            "/v1/enrollments",
            json={"iin": outsider["iin"], "provider_bin": cycle["bin"], "site_id": "S1",
                  "form": "stationary", "start_date": "2026-05-01"},
            headers=ADMIN,
        )  # fmt: skip
        assert r.status_code == 409 and r.json()["free_places"] == 0, r.text

        # Accepted: enrolled at the offered site, off the line.
        r = await c.post(
            f"/v1/offers/{first_offer}/accept",
            json={"start_date": today.isoformat()},
            headers=ADMIN,
        )
        assert r.status_code == 200, r.text
        accepted_offer = r.json()
        assert accepted_offer["status"] == "accepted"
        accepted = await wait_event(probe, lambda e: e["type"] == "registry.offer.accepted.v1")
        started = await wait_event(
            probe,
            lambda e: (
                e["type"] == "registry.enrollment.started.v1"
                and e["data"]["iin"] == people["first"]["iin"]
            ),
        )
        assert accepted["data"]["enrollment_id"] == started["data"]["enrollment_id"]
        assert accepted_offer["enrollment_id"] == started["data"]["enrollment_id"]
        assert accepted["data"]["start_date"] == today.isoformat()
        first = await request(svc, requests["first"]["id"])
        assert (first["status"], first["position"], first["enrollment_id"]) == (
            "placed", None, started["data"]["enrollment_id"],
        )  # fmt: skip
        assert await line(svc, KARAGANDA) == [
            (people["second"]["iin"], 1),
            (people["third"]["iin"], 2),
        ]
        r = await c.post(f"/v1/offers/{first_offer}/accept", headers=ADMIN)
        assert r.status_code == 409, r.text

        # Declined: the place passes to the next in line; the decliner keeps her place.
        await end(svc, cycle["stays"][1], "2026-05-31")
        second_made = await wait_event(
            probe,
            lambda e: (
                e["type"] == "registry.offer.made.v1"
                and e["data"]["request_id"] == requests["second"]["id"]
            ),
        )
        second_offer = second_made["data"]["offer_id"]
        r = await c.post(f"/v1/offers/{second_offer}/decline", headers=ADMIN)
        assert r.status_code == 200 and r.json()["status"] == "declined", r.text
        declined = await wait_event(probe, lambda e: e["type"] == "registry.offer.lapsed.v1")
        assert (declined["data"]["reason"], declined["data"]["offer_id"]) == (
            "declined",
            second_offer,
        )
        third_made = await wait_event(
            probe,
            lambda e: (
                e["type"] == "registry.offer.made.v1"
                and e["data"]["request_id"] == requests["third"]["id"]
            ),
        )
        assert await line(svc, KARAGANDA) == [
            (people["second"]["iin"], 1),
            (people["third"]["iin"], 2),
        ]
        assert (await request(svc, requests["second"]["id"]))["offer"] is None

        # Not answered by its last day: the offer lapses. Both left have had this site
        # offered, so the place stays free for the next who asks, who is offered it at once.
        third_offer = third_made["data"]["offer_id"]
        expires = date.fromisoformat(third_made["data"]["expires_on"])
        async with svc.pool.acquire() as conn:
            assert await service.keep_waiting_lines(conn=conn, today=expires) == (0, 0)
            assert await service.keep_waiting_lines(
                conn=conn, today=expires + timedelta(days=1)
            ) == (1, 0)
        lapsed = await wait_event(
            probe,
            lambda e: (
                e["type"] == "registry.offer.lapsed.v1" and e["data"]["offer_id"] == third_offer
            ),
        )
        assert lapsed["data"]["reason"] == "expired"
        assert lapsed["data"]["lapsed_on"] == (expires + timedelta(days=1)).isoformat()
        assert await open_offers(svc, KARAGANDA) == []
        r = await c.post(f"/v1/offers/{third_offer}/accept", headers=ADMIN)
        assert r.status_code == 409, r.text
        newcomer = await register(c, ADMIN, region=KARAGANDA, category="adult_disability")
        joined = await join(svc, newcomer["iin"], "stationary")
        assert joined["position"] == 3 and joined["offer"]["site_id"] == "S1"
    assert [(o["iin"], o["status"]) for o in await open_offers(svc, KARAGANDA)] == [
        (newcomer["iin"], "open")
    ]


# Concurrent frees on two replicas


async def test_concurrent_frees_on_two_replicas_never_offer_a_place_twice(
    svc: RunningService,
) -> None:
    """Aktobe: a home of 6 places, all taken; 9 wait. Six stays end at once, through two
    replicas, while the license is amended to 8 places: exactly 8 offers, to the first 8 in
    line, one each."""
    c = svc.client
    number, bin_ = await provider_with(
        c, ADMIN, region=AKTOBE, sites=sites(AKTOBE_KATO, 6), subtypes=CARE
    )
    stays = []
    for _ in range(6):
        who = await register(c, ADMIN, region=AKTOBE, category="adult_disability")
        stays.append(await enroll(svc, who["iin"], bin_, "stationary", "2026-02-01"))
    waiting = []
    for day in range(1, 10):
        who = await register(c, ADMIN, region=AKTOBE, category="adult_disability")
        await join(svc, who["iin"], "stationary", asked_on=f"2026-03-{day:02d}")
        waiting.append(who["iin"])
    replica_settings = settings_for(
        Settings,
        "registry",
        offer_hold_days=HOLD_DAYS,
        disruption_wait_days=WAIT_DAYS,
        waiting_check_seconds=3600,
    )
    async with running_service(build(replica_settings)) as replica:
        clients = [svc, replica]
        await asyncio.gather(
            *(end(clients[i % 2], stay, "2026-04-30") for i, stay in enumerate(stays)),
            publish_license(
                license_event(
                    "amended", number=number, bin=bin_, seq=2, region=AKTOBE,
                    sites=sites(AKTOBE_KATO, 8), subtypes=CARE,
                )
            ),
        )  # fmt: skip

        async def eight() -> bool:
            return len(await open_offers(svc, AKTOBE)) == 8

        await eventually(eight, timeout=PATIENCE)
        await asyncio.sleep(0.5)
    offers = await open_offers(svc, AKTOBE)
    assert sorted(o["iin"] for o in offers) == sorted(waiting[:8])
    assert len({o["request_id"] for o in offers}) == 8
    r = await c.get("/v1/providers", params={"bin": bin_}, headers=ADMIN)
    site = r.json()["items"][0]["sites"][0]
    assert (site["places"], site["occupied"], site["free_places"]) == (8, 0, 0)
    assert (await line(svc, AKTOBE))[8] == (waiting[8], 9)


# Disruption and revocation flow into the line


async def test_a_disruption_nobody_resolved_and_a_revocation_join_the_line_at_its_top(
    svc: RunningService,
) -> None:
    """Atyrau: home L (2 places, suspended 3 days ago) held two people; home R (1 place,
    revoked today) one; a waiting person asked long before. The one from R joins the line at
    once, at its top; after WAIT_DAYS the two from L join above the early one (from the day
    they lost their place). L reinstated: its two have their places back and leave the line;
    L amended to 4 places: the two still waiting are offered them."""
    c = svc.client
    today = domain.today()
    l_common = {"name": "L", "region": ATYRAU, "sites": sites(ATYRAU_KATO, 2), "subtypes": CARE}
    r_common = {"name": "R", "region": ATYRAU, "sites": sites(ATYRAU_KATO, 1), "subtypes": CARE}
    l_number, l_bin = await provider_with(c, ADMIN, **l_common)
    r_number, r_bin = await provider_with(c, ADMIN, **r_common)
    at_l = [await register(c, ADMIN, region=ATYRAU, category="adult_disability") for _ in range(2)]
    at_r = await register(c, ADMIN, region=ATYRAU, category="adult_disability")
    for person in at_l:
        await enroll(svc, person["iin"], l_bin, "stationary", "2026-02-01")
    await enroll(svc, at_r["iin"], r_bin, "stationary", "2026-02-01")
    early = await register(c, ADMIN, region=ATYRAU, category="adult_disability")
    assert (await join(svc, early["iin"], "stationary", asked_on="2026-01-02"))["offer"] is None
    suspended_on = today - timedelta(days=3)
    async with event_probe("registry.waiting.#") as probe:
        await publish_license(
            license_event("suspended", number=l_number, bin=l_bin, seq=2,
                          effective_date=suspended_on, **l_common)
        )  # fmt: skip
        await license_applied(c, ADMIN, bin=l_bin, number=l_number, seq=2)
        await publish_license(
            license_event("revoked", number=r_number, bin=r_bin, seq=2,
                          effective_date=today, reason="repeated violations", **r_common)
        )  # fmt: skip
        revoked_join = await wait_event(probe, lambda e: e["data"]["iin"] == at_r["iin"])
        assert revoked_join["data"]["disrupted"] is True
        assert revoked_join["data"]["reason"] == "license revoked: repeated violations"
        assert revoked_join["data"]["asked_on"] == today.isoformat()
        assert (revoked_join["data"]["position"], revoked_join["data"]["waiting"]) == (1, 2)
        assert await line(svc, ATYRAU) == [(at_r["iin"], 1), (early["iin"], 2)]
        async with svc.pool.acquire() as conn:
            assert await service.keep_waiting_lines(
                conn=conn, today=today + timedelta(days=WAIT_DAYS - 4)
            ) == (0, 0)
            assert await service.keep_waiting_lines(
                conn=conn, today=today + timedelta(days=WAIT_DAYS - 3)
            ) == (0, 2)
        for person in at_l:
            joined = await wait_event(probe, lambda e, p=person: e["data"]["iin"] == p["iin"])
            assert joined["data"]["asked_on"] == suspended_on.isoformat()
            assert joined["data"]["disrupted"] is True
            assert joined["data"]["reason"] == (
                f"no place taken within {WAIT_DAYS} days of the disruption"
            )
    got = await line(svc, ATYRAU)
    # Lost on the suspension (3 days ago), the two from L are ahead of R's (lost today).
    assert {got[0], got[1]} == {(at_l[0]["iin"], 1), (at_l[1]["iin"], 2)} or {got[0], got[1]} == {
        (at_l[0]["iin"], 2),
        (at_l[1]["iin"], 1),
    }
    assert got[2:] == [(at_r["iin"], 3), (early["iin"], 4)]
    await publish_license(
        license_event("reinstated", number=l_number, bin=l_bin, seq=3,
                      effective_date=today, **l_common)
    )  # fmt: skip
    await license_applied(c, ADMIN, bin=l_bin, number=l_number, seq=3)
    assert await line(svc, ATYRAU) == [(at_r["iin"], 1), (early["iin"], 2)]
    assert await open_offers(svc, ATYRAU) == []
    await publish_license(
        license_event("amended", number=l_number, bin=l_bin, seq=4, effective_date=today,
                      **{**l_common, "sites": sites(ATYRAU_KATO, 4)})
    )  # fmt: skip
    await license_applied(c, ADMIN, bin=l_bin, number=l_number, seq=4)
    offered = {o["iin"]: o["license_number"] for o in await open_offers(svc, ATYRAU)}
    assert offered == {at_r["iin"]: l_number, early["iin"]: l_number}
