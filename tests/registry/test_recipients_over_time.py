"""Recipients over time: search by name, changes and their history, de-registration, and the
date and category rules of registration."""

import base64
import json
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import pytest
import pytest_asyncio
from harness import ADMIN, RunningService, event_probe, reset_service, running_service, settings_for
from registry_world import (
    ASTANA,
    EAST,
    EAST_KATO,
    new_iin,
    provider_with,
    recipient_body,
    register,
    wait_event,
)
from ssu_registry import domain, store
from ssu_registry.main import build
from ssu_registry.settings import Settings

EAST_KEY = {"Authorization": "Bearer ssu-dev-east-kz"}
READER = {"Authorization": "Bearer ssu-dev-reader"}
OFFICIAL = "a.nurlanova"

# An elderly woman well past pension age (the default elderly recipient of registry_world is 46).
ELDER_BIRTH = date(1950, 3, 14)

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def svc() -> AsyncIterator[RunningService]:
    await reset_service("registry")
    async with running_service(build(settings_for(Settings, "registry"))) as running:
        yield running


def aged(years: int) -> date:
    """A birth date making someone exactly `years` old today (their birthday was yesterday)."""
    day = domain.today() - timedelta(days=1)
    if (day.month, day.day) == (2, 29):
        day -= timedelta(days=1)
    return day.replace(year=day.year - years)


def _wrap(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


async def register_elder(svc: RunningService, **extra: Any) -> dict[str, Any]:
    return await register(svc.client, ADMIN, birth=ELDER_BIRTH, sex="female", **extra)


# 1. Search by name


async def test_a_name_is_found_case_space_and_yo_insensitively(svc: RunningService) -> None:
    tag = uuid.uuid4().hex[:8]
    east = await register_elder(svc, full_name=f"Ёлкина  Айгерим {tag.upper()}", region=EAST)
    astana = await register_elder(svc, full_name=f"ЕЛКИНА айгерим {tag}", region=ASTANA)
    await register_elder(svc, full_name=f"Ёлкина Айгерім {tag}", region=EAST)  # і is not и

    for query in (f"елкина айгерим {tag}", f"  ЁЛКИНА   АЙГЕРИМ {tag.upper()} "):
        r = await svc.client.get("/v1/recipients", params={"name": query}, headers=ADMIN)
        assert r.status_code == 200, r.text
        got = r.json()
        assert {i["iin"] for i in got["items"]} == {east["iin"], astana["iin"]}
        assert got["next_cursor"] is None
    # the name is returned as registered, not in its normalised form
    names = {
        i["iin"]: i["full_name"]
        for i in (
            await svc.client.get(
                "/v1/recipients", params={"name": f"елкина айгерим {tag}"}, headers=ADMIN
            )
        ).json()["items"]
    }
    assert names == {
        east["iin"]: f"Ёлкина  Айгерим {tag.upper()}",
        astana["iin"]: f"ЕЛКИНА айгерим {tag}",
    }
    # NFKC: a й written as и + combining breve is the same letter
    decomposed = f"Елкина Аи\u0306герим {tag}"
    r = await svc.client.get("/v1/recipients", params={"name": decomposed}, headers=ADMIN)
    assert {i["iin"] for i in r.json()["items"]} == {east["iin"], astana["iin"]}
    # a prefix of the name is not a match: the search is exact
    r = await svc.client.get("/v1/recipients", params={"name": "елкина айгерим"}, headers=ADMIN)
    assert r.status_code == 200
    assert not {east["iin"], astana["iin"]} & {i["iin"] for i in r.json()["items"]}


async def test_a_regional_key_finds_only_its_region(svc: RunningService) -> None:
    tag = uuid.uuid4().hex[:8]
    name = f"Серік Болат {tag}"
    east = await register_elder(svc, full_name=name, region=EAST)
    astana = await register_elder(svc, full_name=name, region=ASTANA)

    r = await svc.client.get("/v1/recipients", params={"name": name}, headers=EAST_KEY)
    assert r.status_code == 200, r.text
    assert [i["iin"] for i in r.json()["items"]] == [east["iin"]]
    assert astana["iin"] not in r.text
    r = await svc.client.get(
        "/v1/recipients", params={"name": name, "region": EAST}, headers=EAST_KEY
    )
    assert [i["iin"] for i in r.json()["items"]] == [east["iin"]]
    r = await svc.client.get(
        "/v1/recipients", params={"name": name, "region": ASTANA}, headers=EAST_KEY
    )
    assert r.status_code == 404
    # an unrestricted key can ask for one region
    r = await svc.client.get(
        "/v1/recipients", params={"name": name, "region": ASTANA}, headers=ADMIN
    )
    assert [i["iin"] for i in r.json()["items"]] == [astana["iin"]]


async def test_listed_contacts_need_the_read_contacts_scope(svc: RunningService) -> None:
    tag = uuid.uuid4().hex[:8]
    name = f"Қасымова Гүлнар {tag}"
    guardian_iin = new_iin(date(1985, 3, 3), "female")
    body = recipient_body(
        birth=ELDER_BIRTH,
        full_name=name,
        phone="+77015550101",
        email="gulnar@example.kz",
        guardian={
            "name": "Қасымов Ерлан",
            "phone": "+77015550102",
            "email": "erlan@example.kz",
            "iin": guardian_iin,
        },
    )
    assert (await svc.client.post("/v1/recipients", json=body, headers=ADMIN)).status_code == 201

    for key in (READER, EAST_KEY):
        r = await svc.client.get("/v1/recipients", params={"name": name}, headers=key)
        assert r.status_code == 200, r.text
        [item] = r.json()["items"]
        assert (item["phone"], item["email"]) == (None, None)
        assert item["guardian"] == {
            "name": "Қасымов Ерлан",
            "phone": None,
            "email": None,
            "iin": None,
        }
        for secret in ("+77015550101", "gulnar@", "+77015550102", "erlan@", guardian_iin):
            assert secret not in r.text
    r = await svc.client.get("/v1/recipients", params={"name": name}, headers=ADMIN)
    [item] = r.json()["items"]
    assert (item["phone"], item["email"]) == ("+77015550101", "gulnar@example.kz")
    assert item["guardian"] == {
        "name": "Қасымов Ерлан",
        "phone": "+77015550102",
        "email": "erlan@example.kz",
        "iin": guardian_iin,
    }
    assert item["status"] == "registered"
    assert item["deregistered_on"] is None and item["deregistration_reason"] is None


async def test_pages_follow_the_cursor_and_filters_apply(svc: RunningService) -> None:
    tag = uuid.uuid4().hex[:8]
    name = f"Омарова Дана {tag}"
    iins = set()
    for _ in range(3):
        iins.add((await register_elder(svc, full_name=name))["iin"])
    other = await register_elder(svc, full_name=name, category="homeless")

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"name": name, "category": "elderly", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        r = await svc.client.get("/v1/recipients", params=params, headers=ADMIN)
        assert r.status_code == 200, r.text
        page = r.json()
        pages += 1
        assert len(page["items"]) <= 2
        seen += [i["iin"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert pages < 5
    assert pages == 2
    assert len(seen) == 3 and set(seen) == iins
    assert other["iin"] not in seen

    r = await svc.client.get(
        "/v1/recipients", params={"name": name, "category": "homeless"}, headers=ADMIN
    )
    assert [i["iin"] for i in r.json()["items"]] == [other["iin"]]
    r = await svc.client.get(
        "/v1/recipients", params={"name": name, "status": "deregistered"}, headers=ADMIN
    )
    assert r.status_code == 200 and r.json() == {"items": [], "next_cursor": None}
    r = await svc.client.get(
        "/v1/recipients", params={"name": name, "status": "registered"}, headers=ADMIN
    )
    assert {i["iin"] for i in r.json()["items"]} == iins | {other["iin"]}


@pytest.mark.parametrize(
    "cursor",
    [
        _wrap("zz"),
        _wrap("0" * 63),
        _wrap(["0" * 64]),
        _wrap(12345),
        "%%%not-base64%%%",
        base64.urlsafe_b64encode(b"\xff\xfe{").decode(),
    ],
)
async def test_a_tampered_cursor_is_422(svc: RunningService, cursor: str) -> None:
    r = await svc.client.get("/v1/recipients", params={"cursor": cursor}, headers=ADMIN)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in r.json()["errors"]] == ["query.cursor"]


async def test_listing_needs_registry_read(svc: RunningService) -> None:
    assert (await svc.client.get("/v1/recipients")).status_code == 401
    r = await svc.client.get("/v1/recipients", headers={"Authorization": "Bearer ssu-dev-approver"})
    assert r.status_code == 403


async def test_every_listed_person_and_only_they_leave_a_read_record(
    svc: RunningService,
) -> None:
    tag = uuid.uuid4().hex[:8]
    name = f"Жақсылықов Нұрлан {tag}"
    iins = {(await register_elder(svc, full_name=name))["iin"] for _ in range(2)}
    headers = {**ADMIN, "X-SSU-Official": OFFICIAL}
    r = await svc.client.get("/v1/recipients", params={"name": name, "limit": 1}, headers=headers)
    assert r.status_code == 200, r.text
    [shown] = [i["iin"] for i in r.json()["items"]]
    assert r.json()["next_cursor"] is not None
    rows = await svc.pool.fetch(
        "SELECT aggregate_id, client, official FROM audit_records"
        " WHERE action = 'recipient.read' AND reason = 'recipient list'"
        " AND aggregate_type = 'recipient' AND aggregate_id = ANY($1::text[])",
        [store.iin_index(i).hex() for i in iins],
    )
    # the person on the page is recorded; the one fetched only to know a next page exists is not
    assert [(r["aggregate_id"], r["client"], r["official"]) for r in rows] == [
        (store.iin_index(shown).hex(), "dev-admin", OFFICIAL)
    ]
    # the name searched for is nowhere in the audit trail
    assert not await svc.pool.fetchval(
        "SELECT count(*) FROM audit_records WHERE reason LIKE $1 OR aggregate_id LIKE $1",
        f"%{tag}%",
    )


# 2. Changes and their history


async def test_a_change_is_kept_in_the_history_and_published(svc: RunningService) -> None:
    recipient = await register_elder(svc, phone="+77051112233")
    iin = recipient["iin"]
    headers = {**ADMIN, "X-SSU-Official": OFFICIAL}
    async with event_probe("registry.recipient.updated.v1") as probe:
        r = await svc.client.patch(
            f"/v1/recipients/{iin}",
            json={"phone": "+77059998877", "email": "elder@example.kz"},
            headers=headers,
        )
        assert r.status_code == 200, r.text
        got = r.json()
        assert (got["phone"], got["email"]) == ("+77059998877", "elder@example.kz")
        assert got["category"] == "elderly"
        event = await wait_event(probe, lambda e: e["subject"] == iin)
    assert event["type"] == "registry.recipient.updated.v1"
    assert event["source"] == "/ssu/registry"
    assert event["data"] == {
        "iin": iin,
        "full_name": "Айгерим Сейтқали",
        "birth_date": ELDER_BIRTH.isoformat(),
        "category": "elderly",
        "region": EAST,
        "disability_group": None,
        "language": "kk",
        "phone": "+77059998877",
        "email": "elder@example.kz",
        "guardian": None,
        "changed": ["email", "phone"],
        "version": 2,
    }

    # a second change, by the client alone, replacing the category and adding a guardian
    async with event_probe("registry.recipient.updated.v1") as probe:
        r = await svc.client.patch(
            f"/v1/recipients/{iin}",
            json={
                "category": "adult_disability",
                "disability_group": 1,
                "guardian": {"name": "Сейтқали Мұрат", "phone": "+77017654321"},
            },
            headers=ADMIN,
        )
        assert r.status_code == 200, r.text
        event = await wait_event(probe, lambda e: e["subject"] == iin)
    assert event["data"]["changed"] == [
        "category",
        "disability_group",
        "guardian_name",
        "guardian_phone",
    ]
    assert event["data"]["version"] == 3
    assert event["data"]["category"] == "adult_disability"
    assert event["data"]["disability_group"] == 1
    assert event["data"]["guardian"] == {
        "name": "Сейтқали Мұрат",
        "phone": "+77017654321",
        "email": None,
        "iin": None,
    }

    r = await svc.client.get(f"/v1/recipients/{iin}/history", headers=ADMIN)
    assert r.status_code == 200, r.text
    history = r.json()
    assert history["iin"] == iin
    items = history["items"]
    assert [{k: v for k, v in i.items() if k != "changed_at"} for i in items] == [
        {
            "version": 2,
            "action": "updated",
            "fields": ["email", "phone"],
            "changes": {
                "email": {"from": None, "to": "elder@example.kz"},
                "phone": {"from": "+77051112233", "to": "+77059998877"},
            },
            "actor": f"dev-admin/{OFFICIAL}",
        },
        {
            "version": 3,
            "action": "updated",
            "fields": ["category", "disability_group", "guardian_name", "guardian_phone"],
            "changes": {
                "category": {"from": "elderly", "to": "adult_disability"},
                "disability_group": {"from": None, "to": 1},
                "guardian_name": {"from": None, "to": "Сейтқали Мұрат"},
                "guardian_phone": {"from": None, "to": "+77017654321"},
            },
            "actor": "dev-admin",
        },
    ]
    assert items[0]["changed_at"] <= items[1]["changed_at"]

    # without registry:read-contacts the contact values are hidden, the rest is shown
    r = await svc.client.get(f"/v1/recipients/{iin}/history", headers=READER)
    assert r.status_code == 200, r.text
    hidden = r.json()["items"]
    assert hidden[0]["changes"] == {
        "email": {"from": None, "to": None},
        "phone": {"from": None, "to": None},
    }
    assert hidden[1]["changes"] == {
        "category": {"from": "elderly", "to": "adult_disability"},
        "disability_group": {"from": None, "to": 1},
        "guardian_name": {"from": None, "to": "Сейтқали Мұрат"},
        "guardian_phone": {"from": None, "to": None},
    }
    for secret in ("+77051112233", "+77059998877", "elder@", "+77017654321"):
        assert secret not in r.text

    # the record reads back as changed
    again = (await svc.client.get(f"/v1/recipients/{iin}", headers=ADMIN)).json()
    assert again["category"] == "adult_disability"
    assert again["phone"] == "+77059998877"
    assert again["guardian"]["name"] == "Сейтқали Мұрат"


async def test_a_change_to_nothing_new_is_not_a_version(svc: RunningService) -> None:
    recipient = await register_elder(svc, phone="+77051112233")
    iin = recipient["iin"]
    r = await svc.client.patch(
        f"/v1/recipients/{iin}", json={"phone": "+77051112233"}, headers=ADMIN
    )
    assert r.status_code == 200, r.text
    r = await svc.client.patch(f"/v1/recipients/{iin}", json={}, headers=ADMIN)
    assert r.status_code == 200, r.text
    history = (await svc.client.get(f"/v1/recipients/{iin}/history", headers=ADMIN)).json()
    assert history == {"iin": iin, "items": []}
    outbox = await svc.pool.fetchval(
        "SELECT count(*) FROM outbox WHERE subject = $1 AND event_type = $2",
        iin,
        "registry.recipient.updated.v1",
    )
    assert outbox == 0


async def test_a_null_clears_and_the_guardian_goes_whole(svc: RunningService) -> None:
    birth = date(2014, 6, 1)
    recipient = await register(
        svc.client,
        ADMIN,
        birth=birth,
        sex="male",
        category="child_disability",
        email="kid@example.kz",
        guardian={"name": "Ержан Ахметов", "phone": "+77019998877", "email": "e@example.kz"},
    )
    iin = recipient["iin"]
    r = await svc.client.patch(
        f"/v1/recipients/{iin}", json={"email": None, "guardian": None}, headers=ADMIN
    )
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["email"] is None and got["guardian"] is None
    assert got["phone"] == "+77051112233"  # left out, so kept
    [entry] = (await svc.client.get(f"/v1/recipients/{iin}/history", headers=ADMIN)).json()["items"]
    assert entry["fields"] == ["email", "guardian_email", "guardian_name", "guardian_phone"]
    assert entry["changes"]["guardian_name"] == {"from": "Ержан Ахметов", "to": None}


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"category": None}, "category"),
        ({"category": "child_disability"}, "category"),  # the recipient is 76
        ({"category": "tourist"}, "category"),
        ({"disability_group": 4}, "disability_group"),
        ({"guardian": {"phone": "+77010000000"}}, "guardian.name"),
        ({"full_name": "Басқа адам"}, "full_name"),
        ({"guardian": {"name": "   ", "phone": "+77010000000"}}, "guardian.name"),
    ],
)
async def test_a_wrong_change_is_422(
    svc: RunningService, patch: dict[str, Any], field: str
) -> None:
    iin = (await register_elder(svc))["iin"]
    r = await svc.client.patch(f"/v1/recipients/{iin}", json=patch, headers=ADMIN)
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == [field]
    history = (await svc.client.get(f"/v1/recipients/{iin}/history", headers=ADMIN)).json()
    assert history["items"] == []


async def test_changes_need_write_and_the_region(svc: RunningService) -> None:
    astana = (await register_elder(svc, region=ASTANA))["iin"]
    east = (await register_elder(svc, region=EAST))["iin"]
    r = await svc.client.patch(
        f"/v1/recipients/{east}", json={"phone": "+77010000001"}, headers=READER
    )
    assert r.status_code == 403
    r = await svc.client.patch(
        f"/v1/recipients/{astana}", json={"phone": "+77010000001"}, headers=EAST_KEY
    )
    assert r.status_code == 404
    assert (
        await svc.client.get(f"/v1/recipients/{astana}/history", headers=EAST_KEY)
    ).status_code == 404
    r = await svc.client.patch(
        f"/v1/recipients/{east}", json={"phone": "+77010000001"}, headers=EAST_KEY
    )
    assert r.status_code == 200, r.text
    # the regional key has no registry:read-contacts: the answer hides the phone it just set
    assert r.json()["phone"] is None
    [entry] = (await svc.client.get(f"/v1/recipients/{east}/history", headers=ADMIN)).json()[
        "items"
    ]
    assert entry["actor"] == "dev-east-kz"
    unknown = new_iin()
    assert (
        await svc.client.patch(f"/v1/recipients/{unknown}", json={"phone": "+7701"}, headers=ADMIN)
    ).status_code == 404
    assert (
        await svc.client.get(f"/v1/recipients/{unknown}/history", headers=ADMIN)
    ).status_code == 404


# 3. De-registration


async def test_deregistration_ends_enrollments_and_refuses_new_ones(svc: RunningService) -> None:
    _, bin_ = await provider_with(
        svc.client,
        ADMIN,
        sites=[{"site_id": "S1", "address": "Өскемен, 1", "kato": EAST_KATO, "places": 5}],
        subtypes=[("stationary", "elderly"), ("home", "elderly")],
    )
    iin = (await register_elder(svc))["iin"]
    enrollment_ids = []
    for form in ("stationary", "home"):
        r = await svc.client.post(
            "/v1/enrollments",
            json={
                "iin": iin,
                "provider_bin": bin_,
                "site_id": "S1",
                "form": form,
                "start_date": "2026-02-02",
            },
            headers=ADMIN,
        )
        assert r.status_code == 201, r.text
        enrollment_ids.append(r.json()["id"])

    day = "2026-11-01"
    async with event_probe("registry.#") as probe:
        r = await svc.client.post(
            f"/v1/recipients/{iin}/deregister",
            json={"reason": "died", "date": day},
            headers={**ADMIN, "X-SSU-Official": OFFICIAL},
        )
        assert r.status_code == 200, r.text
        got = r.json()
        deregistered = await wait_event(
            probe,
            lambda e: e["type"] == "registry.recipient.deregistered.v1" and e["subject"] == iin,
        )
        ended = [
            await wait_event(
                probe,
                lambda e, i=i: e["type"] == "registry.enrollment.ended.v1" and e["subject"] == i,
            )
            for i in enrollment_ids
        ]
    assert (got["status"], got["deregistered_on"], got["deregistration_reason"]) == (
        "deregistered",
        day,
        "died",
    )
    assert deregistered["source"] == "/ssu/registry"
    assert deregistered["data"] == {
        "iin": iin,
        "region": EAST,
        "category": "elderly",
        "reason": "died",
        "deregistered_on": day,
        "version": 2,
    }
    for event, enrollment_id, form in zip(
        ended, enrollment_ids, ("stationary", "home"), strict=True
    ):
        data = event["data"]
        assert data["enrollment_id"] == enrollment_id
        assert data["iin"] == iin
        assert data["provider_bin"] == bin_
        assert data["form"] == form
        assert data["reason"] == "died"
        assert data["end_date"] == day
    for enrollment_id in enrollment_ids:
        e = (await svc.client.get(f"/v1/enrollments/{enrollment_id}", headers=ADMIN)).json()
        assert (e["status"], e["end_date"], e["end_reason"]) == ("ended", day, "died")

    # the record shows it
    again = (await svc.client.get(f"/v1/recipients/{iin}", headers=ADMIN)).json()
    assert (again["status"], again["deregistered_on"], again["deregistration_reason"]) == (
        "deregistered",
        day,
        "died",
    )
    r = await svc.client.get(
        "/v1/recipients",
        params={"name": "Айгерим Сейтқали", "status": "deregistered"},
        headers=ADMIN,
    )
    assert iin in {i["iin"] for i in r.json()["items"]}
    [entry] = (await svc.client.get(f"/v1/recipients/{iin}/history", headers=ADMIN)).json()["items"]
    assert {k: v for k, v in entry.items() if k != "changed_at"} == {
        "version": 2,
        "action": "deregistered",
        "fields": ["deregistered_on", "deregistration_reason", "status"],
        "changes": {
            "status": {"from": "registered", "to": "deregistered"},
            "deregistered_on": {"from": None, "to": day},
            "deregistration_reason": {"from": None, "to": "died"},
        },
        "actor": f"dev-admin/{OFFICIAL}",
    }

    # enrolling them again, changing them or de-registering them again is a conflict
    r = await svc.client.post(
        "/v1/enrollments",
        json={"iin": iin, "provider_bin": bin_, "site_id": "S1", "form": "stationary"},
        headers=ADMIN,
    )
    assert r.status_code == 409, r.text
    assert r.json()["errors"][0]["field"] == "iin"
    assert r.json()["current_status"] == "deregistered"
    r = await svc.client.patch(
        f"/v1/recipients/{iin}", json={"phone": "+77010000002"}, headers=ADMIN
    )
    assert r.status_code == 409
    r = await svc.client.post(
        f"/v1/recipients/{iin}/deregister", json={"reason": "moved"}, headers=ADMIN
    )
    assert r.status_code == 409


async def test_deregistration_without_a_date_is_today(svc: RunningService) -> None:
    iin = (await register_elder(svc))["iin"]
    r = await svc.client.post(
        f"/v1/recipients/{iin}/deregister", json={"reason": "moved"}, headers=ADMIN
    )
    assert r.status_code == 200, r.text
    assert (r.json()["deregistered_on"], r.json()["deregistration_reason"]) == (
        domain.today().isoformat(),
        "moved",
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"reason": "died", "date": "FUTURE"}, "date"),
        ({"reason": "bored", "date": "2026-11-01"}, "reason"),
        ({"date": "2026-11-01"}, "reason"),
    ],
)
async def test_a_wrong_deregistration_is_422(
    svc: RunningService, body: dict[str, Any], field: str
) -> None:
    iin = (await register_elder(svc))["iin"]
    if body.get("date") == "FUTURE":
        body = {**body, "date": (domain.today() + timedelta(days=1)).isoformat()}
    r = await svc.client.post(f"/v1/recipients/{iin}/deregister", json=body, headers=ADMIN)
    assert r.status_code == 422, r.text
    fields = [e["field"] for e in r.json()["errors"]]
    assert fields[0] == field or fields[0].endswith(f".{field}"), fields
    again = (await svc.client.get(f"/v1/recipients/{iin}", headers=ADMIN)).json()
    assert again["status"] == "registered"


async def test_deregistration_needs_write_and_the_region(svc: RunningService) -> None:
    astana = (await register_elder(svc, region=ASTANA))["iin"]
    r = await svc.client.post(
        f"/v1/recipients/{astana}/deregister", json={"reason": "moved"}, headers=READER
    )
    assert r.status_code == 403
    r = await svc.client.post(
        f"/v1/recipients/{astana}/deregister", json={"reason": "moved"}, headers=EAST_KEY
    )
    assert r.status_code == 404
    r = await svc.client.post(
        f"/v1/recipients/{new_iin()}/deregister", json={"reason": "moved"}, headers=ADMIN
    )
    assert r.status_code == 404


# 4. Date and category rules at registration


async def test_a_birth_date_in_the_future_is_422(svc: RunningService) -> None:
    birth = domain.today() + timedelta(days=2)
    body = recipient_body(new_iin(birth, "male"), birth=birth, category="child_disability")
    r = await svc.client.post("/v1/recipients", json=body, headers=ADMIN)
    assert r.status_code == 422, r.text
    errors = r.json()["errors"]
    assert [e["field"] for e in errors] == ["birth_date"]
    assert f"is after today ({domain.today().isoformat()})" in errors[0]["message"]


async def test_born_today_is_a_child(svc: RunningService) -> None:
    birth = domain.today()
    body = recipient_body(new_iin(birth, "female"), birth=birth, category="child_disability")
    r = await svc.client.post("/v1/recipients", json=body, headers=ADMIN)
    assert r.status_code == 201, r.text


async def test_a_birth_date_not_the_iins_is_422(svc: RunningService) -> None:
    iin = new_iin(ELDER_BIRTH, "female")
    body = recipient_body(iin, birth=ELDER_BIRTH + timedelta(days=1))
    r = await svc.client.post("/v1/recipients", json=body, headers=ADMIN)
    assert r.status_code == 422, r.text
    errors = r.json()["errors"]
    assert [e["field"] for e in errors] == ["birth_date"]
    assert "does not agree with the IIN" in errors[0]["message"]


CHILD_ONLY = "child_disability is for recipients under 18"


@pytest.mark.parametrize(
    ("age", "sex", "category", "status", "message"),
    [
        (18, "male", "child_disability", 422, f"{CHILD_ONLY}; the recipient is 18"),
        (40, "female", "child_disability", 422, f"{CHILD_ONLY}; the recipient is 40"),
        (17, "female", "child_disability", 201, None),
        (50, "female", "elderly", 422, "elderly is from pension age 61; the recipient is 50"),
        (60, "female", "elderly", 422, "elderly is from pension age 61; the recipient is 60"),
        (61, "female", "elderly", 201, None),
        (62, "male", "elderly", 422, "elderly is from pension age 63; the recipient is 62"),
        (63, "male", "elderly", 201, None),
        (50, "female", "adult_disability", 201, None),
    ],
)
async def test_the_category_must_fit_the_age(
    svc: RunningService, age: int, sex: str, category: str, status: int, message: str | None
) -> None:
    birth = aged(age)
    body = recipient_body(new_iin(birth, sex), birth=birth, sex=sex, category=category)
    r = await svc.client.post("/v1/recipients", json=body, headers=ADMIN)
    assert r.status_code == status, r.text
    if message is not None:
        errors = r.json()["errors"]
        assert [e["field"] for e in errors] == ["category"]
        # the message may carry the field's name in front ("category: ..."); see the report
        assert errors[0]["message"].endswith(message), errors[0]["message"]
