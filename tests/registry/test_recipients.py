"""Recipients: validation, idempotent registration, conflicts, the registered event, regions."""

from collections.abc import AsyncIterator
from datetime import date

import pytest
import pytest_asyncio
from harness import ADMIN, RunningService, event_probe, reset_service, running_service, settings_for
from registry_world import ASTANA, EAST, new_iin, recipient_body, wait_event
from ssu_registry.main import build
from ssu_registry.settings import Settings

EAST_KEY = {"Authorization": "Bearer ssu-dev-east-kz"}
READER = {"Authorization": "Bearer ssu-dev-reader"}

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def svc() -> AsyncIterator[RunningService]:
    await reset_service("registry")
    async with running_service(build(settings_for(Settings, "registry"))) as running:
        yield running


async def test_registers_a_recipient_and_publishes_the_event(svc: RunningService) -> None:
    birth = date(2015, 2, 3)
    iin = new_iin(birth, "male")
    body = recipient_body(
        iin,
        birth=birth,
        category="child_disability",
        disability_group=2,
        language="ru",
        phone=None,
        guardian={"name": "Сейтқали Мұрат", "phone": "+77017654321", "email": "m@example.kz"},
    )
    async with event_probe("registry.recipient.#") as probe:
        r = await svc.client.post("/v1/recipients", json=body, headers=ADMIN)
        assert r.status_code == 201, r.text
        got = r.json()
        assert {k: v for k, v in got.items() if k != "registered_at"} == {
            "iin": iin,
            "full_name": "Айгерим Сейтқали",
            "birth_date": "2015-02-03",
            "category": "child_disability",
            "region": EAST,
            "disability_group": 2,
            "language": "ru",
            "phone": None,
            "email": None,
            "guardian": {
                "name": "Сейтқали Мұрат",
                "phone": "+77017654321",
                "email": "m@example.kz",
                "iin": None,
            },
            "status": "registered",
            "deregistered_on": None,
            "deregistration_reason": None,
        }
        event = await wait_event(probe, lambda e: e["subject"] == iin)
    assert event["type"] == "registry.recipient.registered.v1"
    assert event["source"] == "/ssu/registry"
    assert event["data"] == {
        "iin": iin,
        "full_name": "Айгерим Сейтқали",
        "birth_date": "2015-02-03",
        "category": "child_disability",
        "region": EAST,
        "disability_group": 2,
        "language": "ru",
        "phone": None,
        "email": None,
        "guardian": {
            "name": "Сейтқали Мұрат",
            "phone": "+77017654321",
            "email": "m@example.kz",
            "iin": None,
        },
    }
    # read back with registry:read-contacts (without it, see the test below)
    again = await svc.client.get(f"/v1/recipients/{iin}", headers=ADMIN)
    assert again.status_code == 200 and again.json() == got


async def test_reposting_is_idempotent_and_a_different_recipient_conflicts(
    svc: RunningService,
) -> None:
    body = recipient_body()
    first = await svc.client.post("/v1/recipients", json=body, headers=ADMIN)
    second = await svc.client.post("/v1/recipients", json=body, headers=ADMIN)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json() == second.json()
    outbox = await svc.pool.fetchval(
        "SELECT count(*) FROM outbox WHERE subject = $1 AND event_type = $2",
        body["iin"],
        "registry.recipient.registered.v1",
    )
    assert outbox == 1
    changed = {**body, "full_name": "Басқа адам", "category": "homeless"}
    r = await svc.client.post("/v1/recipients", json=changed, headers=ADMIN)
    assert r.status_code == 409
    problem = r.json()
    assert r.headers["content-type"] == "application/problem+json"
    assert problem["detail"] == (
        "a recipient with this IIN is already registered with different full_name, category"
    )
    assert problem["errors"][0]["field"] == "iin"


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"iin": "791028302729"}, "iin", "wrong check digit"),
        ({"iin": "79102830272"}, "iin", "exactly 12 digits"),
        ({"birth_date": "1980-05-18"}, "birth_date", "does not agree with the IIN"),
        ({"region": "630000001"}, "region", "is not a region KATO code"),
        ({"region": "990000000"}, "region", "is not a region KATO code"),
        ({"category": "tourist"}, "category", "Input should be"),
        ({"disability_group": 4}, "disability_group", "less than or equal to 3"),
        ({"language": "en"}, "language", "Input should be 'kk' or 'ru'"),
        ({"full_name": ""}, "full_name", "at least 1 character"),
    ],
)
async def test_every_field_is_validated(
    svc: RunningService, change: dict[str, object], field: str, message: str
) -> None:
    body = {**recipient_body(), **change}
    r = await svc.client.post("/v1/recipients", json=body, headers=ADMIN)
    assert r.status_code == 422, r.text
    errors = r.json()["errors"]
    assert [e["field"] for e in errors] == [field]
    assert message in errors[0]["message"]


async def test_unknown_recipient_is_404(svc: RunningService) -> None:
    r = await svc.client.get(f"/v1/recipients/{new_iin()}", headers=ADMIN)
    assert r.status_code == 404
    assert r.json()["status"] == 404


async def test_scopes_are_required(svc: RunningService) -> None:
    r = await svc.client.post("/v1/recipients", json=recipient_body(), headers=READER)
    assert r.status_code == 403
    assert (await svc.client.post("/v1/recipients", json=recipient_body())).status_code == 401


async def test_a_regional_key_sees_and_changes_only_its_region(svc: RunningService) -> None:
    east = recipient_body(region=EAST)
    astana = recipient_body(region=ASTANA)
    assert (await svc.client.post("/v1/recipients", json=east, headers=EAST_KEY)).status_code == 201
    r = await svc.client.post("/v1/recipients", json=astana, headers=EAST_KEY)
    assert r.status_code == 404
    assert (await svc.client.post("/v1/recipients", json=astana, headers=ADMIN)).status_code == 201
    assert (
        await svc.client.get(f"/v1/recipients/{astana['iin']}", headers=EAST_KEY)
    ).status_code == 404
    assert (
        await svc.client.get(f"/v1/recipients/{east['iin']}", headers=EAST_KEY)
    ).status_code == 200
    # Re-posting an Astana recipient through the East key does not reveal that it exists.
    moved = {**astana, "region": EAST}
    r = await svc.client.post("/v1/recipients", json=moved, headers=EAST_KEY)
    assert r.status_code == 404


async def test_phones_emails_and_guardians_need_the_read_contacts_scope(
    svc: RunningService,
) -> None:
    birth = date(2014, 6, 1)
    iin = new_iin(birth, "female")
    guardian_iin = new_iin(date(1985, 3, 3), "female")
    body = recipient_body(
        iin,
        birth=birth,
        category="child_disability",
        phone="+77015550011",
        email="child@example.kz",
        guardian={
            "name": "Айгүл Сәрсенова",
            "phone": "+77015550022",
            "email": "aigul@example.kz",
            "iin": guardian_iin,
        },
    )
    assert (await svc.client.post("/v1/recipients", json=body, headers=ADMIN)).status_code == 201
    for key in (READER, EAST_KEY):  # registry:read without registry:read-contacts
        r = await svc.client.get(f"/v1/recipients/{iin}", headers=key)
        assert r.status_code == 200
        got = r.json()
        assert (got["phone"], got["email"]) == (None, None)
        assert got["guardian"] == {
            "name": "Айгүл Сәрсенова",
            "phone": None,
            "email": None,
            "iin": None,
        }
        for secret in ("+77015550011", "child@example.kz", "+77015550022", "aigul@", guardian_iin):
            assert secret not in r.text
    r = await svc.client.get(f"/v1/recipients/{iin}", headers=ADMIN)  # has registry:read-contacts
    assert (r.json()["phone"], r.json()["email"]) == ("+77015550011", "child@example.kz")
    assert r.json()["guardian"] == {
        "name": "Айгүл Сәрсенова",
        "phone": "+77015550022",
        "email": "aigul@example.kz",
        "iin": guardian_iin,
    }
