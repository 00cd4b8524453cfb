"""Continuity of care: suspension disrupts with alternatives, reinstatement resumes,
revocation ends; transfers close disruptions; stale licensing events change nothing."""

import asyncio
from collections.abc import AsyncIterator
from datetime import date
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

KARAGANDA = "350000000"
KARAGANDA_KATO = "351010000"
PAVLODAR_KATO = "551010000"
PHONE = "+77011234567"
ELDERLY = ("stationary", "elderly")
ADULT = ("stationary", "adult_disability")

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def svc() -> AsyncIterator[RunningService]:
    await reset_service("registry")
    async with running_service(build(settings_for(Settings, "registry"))) as running:
        yield running


def site(places: int, kato: str = KARAGANDA_KATO, site_id: str = "S1") -> list[dict[str, Any]]:
    return [
        {"site_id": site_id, "address": f"Қарағанды, {site_id}", "kato": kato, "places": places}
    ]


async def karaganda_provider(
    svc: RunningService, name: str, places: int, subtypes: list[tuple[str, str]], **kw: Any
) -> tuple[str, str]:
    kw.setdefault("sites", site(places))
    return await provider_with(
        svc.client, ADMIN, name=name, region=KARAGANDA, subtypes=subtypes, **kw
    )


def alternative(bin_number: tuple[str, str], name: str, free: int) -> dict[str, Any]:
    number, bin_ = bin_number
    return {
        "bin": bin_,
        "name": name,
        "site_id": "S1",
        "address": "Қарағанды, S1",
        "free_places": free,
        "license_number": number,
        "phone": PHONE,
    }


async def test_suspension_reinstatement_transfer_and_revocation(svc: RunningService) -> None:
    # The provider that will be suspended, and three people it serves.
    number, bin_ = await karaganda_provider(svc, "Шапағат", 5, [ELDERLY, ADULT])
    sites = site(5)
    elder = await register(svc.client, ADMIN, region=KARAGANDA, birth=date(1950, 1, 2))
    lonely = await register(
        svc.client,
        ADMIN,
        region=KARAGANDA,
        birth=date(1948, 6, 7),
        phone=None,
        guardian={"name": "Дана Нұрланова", "email": "dana@example.kz"},
        language="ru",
    )
    adult = await register(svc.client, ADMIN, region=KARAGANDA, category="adult_disability")
    enrollments: dict[str, str] = {}
    for person in (elder, lonely, adult):
        r = await svc.client.post(
            "/v1/enrollments",
            json={
                "iin": person["iin"],
                "provider_bin": bin_,
                "site_id": "S1",
                "form": "stationary",
                "start_date": "2026-01-15",
            },
            headers=ADMIN,
        )
        assert r.status_code == 201, r.text
        enrollments[person["iin"]] = r.json()["id"]

    # Candidates for the elderly: three win by free places, the rest are excluded.
    bakyt = await karaganda_provider(svc, "Бақыт", 7, [ELDERLY])
    ak_niet = await karaganda_provider(svc, "Ақ ниет", 3, [ELDERLY])
    zhanuya = await karaganda_provider(svc, "Жанұя", 5, [ELDERLY])
    await karaganda_provider(svc, "Дәрмен", 1, [ELDERLY])  # fourth by free places
    await karaganda_provider(svc, "Толық", 0, [ELDERLY])  # no free place
    await karaganda_provider(svc, "Павлодар үйі", 50, [ELDERLY], sites=site(50, PAVLODAR_KATO))
    await karaganda_provider(svc, "Күндізгі", 20, [("semi_stationary", "elderly")])
    stopped_number, stopped_bin = await karaganda_provider(svc, "Тоқтатылған", 30, [ELDERLY])
    await publish_license(
        license_event(
            "suspended",
            number=stopped_number,
            bin=stopped_bin,
            seq=2,
            region=KARAGANDA,
            sites=site(30),
            subtypes=[ELDERLY],
        )
    )
    await license_applied(svc.client, ADMIN, bin=stopped_bin, number=stopped_number, seq=2)
    # The only candidate for adults with disabilities.
    umit = await karaganda_provider(svc, "Үміт", 2, [ADULT])

    async with event_probe("registry.enrollment.#") as probe:
        await publish_license(
            license_event(
                "suspended",
                number=number,
                bin=bin_,
                seq=2,
                name="Шапағат",
                region=KARAGANDA,
                sites=sites,
                subtypes=[ELDERLY, ADULT],
                effective_date=date(2026, 3, 1),
                reason="staffing below the norm",
            )
        )
        for iin in enrollments:
            await wait_event(
                probe,
                lambda e, iin=iin: (
                    e["type"] == "registry.enrollment.disrupted.v1" and e["data"]["iin"] == iin
                ),
            )
        disrupted = {e["data"]["iin"]: e for e in probe.of_type("registry.enrollment.disrupted.v1")}
        assert len(probe.of_type("registry.enrollment.disrupted.v1")) == 3

        elderly_alternatives = [
            alternative(bakyt, "Бақыт", 7),
            alternative(zhanuya, "Жанұя", 5),
            alternative(ak_niet, "Ақ ниет", 3),
        ]
        assert disrupted[elder["iin"]]["subject"] == enrollments[elder["iin"]]
        assert disrupted[elder["iin"]]["data"] == {
            "enrollment_id": enrollments[elder["iin"]],
            "iin": elder["iin"],
            "provider_bin": bin_,
            "provider_name": "Шапағат",
            "license_number": number,
            "region": KARAGANDA,
            "form": "stationary",
            "category": "elderly",
            "disrupted_on": "2026-03-01",
            "reason": "staffing below the norm",
            "alternatives": elderly_alternatives,
            "seq": 2,  # started 1, disrupted 2
            "addressee": {
                "name": "Айгерим Сейтқали",
                "email": None,
                "phone": "+77051112233",
                "language": "kk",
                "is_guardian": False,
            },
        }
        assert disrupted[lonely["iin"]]["data"]["alternatives"] == elderly_alternatives
        assert disrupted[lonely["iin"]]["data"]["addressee"] == {
            "name": "Дана Нұрланова",
            "email": "dana@example.kz",
            "phone": None,
            "language": "ru",
            "is_guardian": True,
        }
        assert disrupted[adult["iin"]]["data"]["alternatives"] == [alternative(umit, "Үміт", 2)]

        # The regional department sees every disrupted recipient.
        r = await svc.client.get("/v1/disruptions", params={"region": KARAGANDA}, headers=ADMIN)
        items = r.json()["items"]
        assert sorted(i["iin"] for i in items) == sorted(enrollments)
        days = (domain.today() - date(2026, 3, 1)).days
        first = next(i for i in items if i["iin"] == elder["iin"])
        assert first["days_disrupted"] == days
        assert first["alternatives"] == elderly_alternatives
        assert first["provider_name"] == "Шапағат" and first["reason"] == "staffing below the norm"
        assert first["addressee"]["phone"] == "+77051112233"
        # a key without registry:read-contacts sees whom to call, not the number
        r = await svc.client.get(
            "/v1/disruptions",
            params={"region": KARAGANDA},
            headers={"Authorization": "Bearer ssu-dev-reader"},
        )
        by_iin = {i["iin"]: i["addressee"] for i in r.json()["items"]}
        assert by_iin[lonely["iin"]] == {
            "name": "Дана Нұрланова",
            "email": None,
            "phone": None,
            "language": "ru",
            "is_guardian": True,
        }
        assert "dana@example.kz" not in r.text and "+77051112233" not in r.text

        # A transfer is an ordinary enrollment that closes the disruption.
        r = await svc.client.post(
            "/v1/enrollments",
            json={
                "iin": adult["iin"],
                "provider_bin": umit[1],
                "site_id": "S1",
                "form": "stationary",
                "start_date": "2026-03-05",
            },
            headers=ADMIN,
        )
        assert r.status_code == 201, r.text
        ended = await wait_event(
            probe,
            lambda e: (
                e["type"] == "registry.enrollment.ended.v1"
                and e["subject"] == enrollments[adult["iin"]]
            ),
        )
        assert ended["data"]["end_date"] == "2026-03-04"
        assert ended["data"]["reason"] == "transferred"
        r = await svc.client.get("/v1/disruptions", params={"region": KARAGANDA}, headers=ADMIN)
        assert sorted(i["iin"] for i in r.json()["items"]) == sorted([elder["iin"], lonely["iin"]])

        # Reinstatement resumes the two still disrupted.
        await publish_license(
            license_event(
                "reinstated",
                number=number,
                bin=bin_,
                seq=3,
                name="Шапағат",
                region=KARAGANDA,
                sites=sites,
                subtypes=[ELDERLY, ADULT],
                effective_date=date(2026, 3, 15),
            )
        )
        for iin in (elder["iin"], lonely["iin"]):
            resumed = await wait_event(
                probe,
                lambda e, iin=iin: (
                    e["type"] == "registry.enrollment.resumed.v1" and e["data"]["iin"] == iin
                ),
            )
            assert resumed["data"]["resumed_on"] == "2026-03-15"
            assert resumed["data"]["enrollment_id"] == enrollments[iin]
            assert resumed["data"]["seq"] == 3
        assert len(probe.of_type("registry.enrollment.resumed.v1")) == 2
        r = await svc.client.get("/v1/disruptions", params={"region": KARAGANDA}, headers=ADMIN)
        assert r.json()["items"] == []

        # A stale suspension (seq 2 again, a new event id) changes nothing.
        await publish_license(
            license_event(
                "suspended",
                number=number,
                bin=bin_,
                seq=2,
                region=KARAGANDA,
                sites=sites,
                subtypes=[ELDERLY, ADULT],
            )
        )
        # Revocation ends every open enrollment the day before it takes effect.
        await publish_license(
            license_event(
                "revoked",
                number=number,
                bin=bin_,
                seq=4,
                name="Шапағат",
                region=KARAGANDA,
                sites=sites,
                subtypes=[ELDERLY, ADULT],
                effective_date=date(2026, 4, 1),
                reason="repeated violations",
            )
        )
        for iin in (elder["iin"], lonely["iin"]):
            end = await wait_event(
                probe,
                lambda e, iin=iin: (
                    e["type"] == "registry.enrollment.ended.v1" and e["subject"] == enrollments[iin]
                ),
            )
            assert end["data"] == {
                "enrollment_id": enrollments[iin],
                "iin": iin,
                "provider_bin": bin_,
                "region": KARAGANDA,
                "form": "stationary",
                "category": "elderly",
                "end_date": "2026-03-31",
                "reason": "license revoked: repeated violations",
                "seq": 4,
            }
        await probe.pull(wait=0.5)
        assert len(probe.of_type("registry.enrollment.disrupted.v1")) == 3

    r = await svc.client.get(
        "/v1/enrollments", params={"provider": number, "status": "active"}, headers=ADMIN
    )
    assert r.json()["items"] == []


async def test_disruption_of_a_provider_with_nobody_enrolled_publishes_nothing(
    svc: RunningService,
) -> None:
    number, bin_ = await karaganda_provider(svc, "Бос", 4, [ELDERLY])
    async with event_probe("registry.enrollment.#") as probe:
        await publish_license(
            license_event(
                "suspended",
                number=number,
                bin=bin_,
                seq=2,
                region=KARAGANDA,
                sites=site(4),
                subtypes=[ELDERLY],
            )
        )
        await license_applied(svc.client, ADMIN, bin=bin_, number=number, seq=2)
        await probe.pull(wait=0.5)
        assert probe.received == []


async def test_a_duplicate_suspension_disrupts_once(svc: RunningService) -> None:
    number, bin_ = await karaganda_provider(svc, "Екі рет", 4, [ELDERLY])
    person = await register(svc.client, ADMIN, region=KARAGANDA)
    r = await svc.client.post(
        "/v1/enrollments",
        json={"iin": person["iin"], "provider_bin": bin_, "site_id": "S1", "form": "stationary"},
        headers=ADMIN,
    )
    assert r.status_code == 201
    event = license_event(
        "suspended",
        number=number,
        bin=bin_,
        seq=2,
        region=KARAGANDA,
        sites=site(4),
        subtypes=[ELDERLY],
    )
    async with event_probe("registry.enrollment.disrupted.#") as probe:
        event_id = await publish_license(event)
        await publish_license(event, event_id=event_id)
        await wait_event(probe, lambda e: e["data"]["iin"] == person["iin"])

        async def outbox_count() -> int:
            return await svc.pool.fetchval(
                "SELECT count(*) FROM outbox WHERE event_type = $1 AND subject = $2",
                "registry.enrollment.disrupted.v1",
                r.json()["id"],
            )

        # A later event is consumed after the duplicate: by then the duplicate was handled.
        await publish_license(
            license_event(
                "amended",
                number=number,
                bin=bin_,
                seq=3,
                region=KARAGANDA,
                sites=site(4),
                subtypes=[ELDERLY],
                status="suspended",
            )
        )
        await license_applied(svc.client, ADMIN, bin=bin_, number=number, seq=3)
        assert await eventually(outbox_count, timeout=30) == 1
        await probe.pull(wait=0.5)
        assert len(probe.received) == 1


async def test_a_suspension_known_only_from_a_later_snapshot_still_disrupts(
    svc: RunningService,
) -> None:
    number, bin_ = await karaganda_provider(svc, "Кеш", 4, [ELDERLY])
    person = await register(svc.client, ADMIN, region=KARAGANDA)
    r = await svc.client.post(
        "/v1/enrollments",
        json={"iin": person["iin"], "provider_bin": bin_, "site_id": "S1", "form": "stationary"},
        headers=ADMIN,
    )
    assert r.status_code == 201
    async with event_probe("registry.enrollment.#") as probe:
        # seq 3 (an amendment while suspended) overtakes the suspension (seq 2).
        await publish_license(
            license_event(
                "amended",
                number=number,
                bin=bin_,
                seq=3,
                region=KARAGANDA,
                sites=site(4),
                subtypes=[ELDERLY],
                status="suspended",
                effective_date=date(2026, 5, 2),
            )
        )
        await publish_license(
            license_event(
                "suspended",
                number=number,
                bin=bin_,
                seq=2,
                region=KARAGANDA,
                sites=site(4),
                subtypes=[ELDERLY],
                effective_date=date(2026, 5, 1),
            )
        )
        event = await wait_event(probe, lambda e: e["subject"] == r.json()["id"])
        assert event["type"] == "registry.enrollment.disrupted.v1"
        assert event["data"]["reason"] == "license suspended"
        # Licensing repeats the snapshot as active: the disrupted enrollment resumes.
        await publish_license(
            license_event(
                "amended",
                number=number,
                bin=bin_,
                seq=4,
                region=KARAGANDA,
                sites=site(4),
                subtypes=[ELDERLY],
                effective_date=date(2026, 5, 9),
            )
        )
        resumed = await wait_event(
            probe,
            lambda e: (
                e["type"] == "registry.enrollment.resumed.v1" and e["subject"] == r.json()["id"]
            ),
        )
        assert resumed["data"]["resumed_on"] == "2026-05-09"
        await probe.pull(wait=0.5)
        assert len(probe.of_type("registry.enrollment.disrupted.v1")) == 1


async def test_no_enrollment_slips_past_a_concurrent_suspension(svc: RunningService) -> None:
    number, bin_ = await karaganda_provider(svc, "Жарыс", 40, [ELDERLY])
    people = [await register(svc.client, ADMIN, region=KARAGANDA) for _ in range(20)]

    async def enroll(person: dict[str, Any]) -> int:
        r = await svc.client.post(
            "/v1/enrollments",
            json={
                "iin": person["iin"],
                "provider_bin": bin_,
                "site_id": "S1",
                "form": "stationary",
            },
            headers=ADMIN,
        )
        return r.status_code

    suspension = publish_license(
        license_event(
            "suspended",
            number=number,
            bin=bin_,
            seq=2,
            region=KARAGANDA,
            sites=site(40),
            subtypes=[ELDERLY],
        )
    )
    codes = await asyncio.gather(
        *(enroll(p) for p in people[:10]), suspension, *(enroll(p) for p in people[10:])
    )
    await license_applied(svc.client, ADMIN, bin=bin_, number=number, seq=2)
    statuses = await svc.pool.fetch(
        "SELECT status, count(*) FROM enrollments WHERE license_number = $1 GROUP BY status",
        number,
    )
    started = sum(1 for c in codes if c == 201)
    assert {r["status"]: r["count"] for r in statuses} == (
        {"disrupted": started} if started else {}
    )
    assert all(c in (201, 409) for c in codes if isinstance(c, int))
