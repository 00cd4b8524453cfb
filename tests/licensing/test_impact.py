"""Impact simulation: licensees and pending applications under a draft set and the set in force,
with recipients counted from registry enrollment events."""

from datetime import date
from typing import Any

import pytest
import pytest_asyncio
from harness import ADMIN, RunningService, eventually, publish_raw, read_dlq
from licensing_world import (
    OFFICIAL,
    READER,
    application,
    core_only_application,
    issue,
    licensing_service,
    submit,
)
from ssu_contracts import (
    Addressee,
    EnrollmentEndedV1,
    EnrollmentStartedV1,
    make_event,
    make_iin,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

SITE_20 = [{"address": "Өскемен, Абай 10", "kato": "631010000", "places": 20}]
SITE_10 = [{"address": "Семей, Абай 3", "kato": "632010000", "places": 10}]
SITE_15 = [{"address": "Өскемен, Ленин 2", "kato": "631010000", "places": 15}]


async def publish(event: EnrollmentStartedV1 | EnrollmentEndedV1) -> None:
    envelope = make_event(event, source="/ssu/registry", subject=event.enrollment_id)
    await publish_raw(envelope.to_bytes(), routing_key=envelope.type, message_id=envelope.id)


def started(n: int, lic: dict[str, Any]) -> EnrollmentStartedV1:
    iin = make_iin(date(1950, 1, 1), "female", n)
    return EnrollmentStartedV1(
        enrollment_id=f"enr-{lic['number']}-{n}",
        iin=iin,
        provider_bin=lic["bin"],
        license_number=lic["number"],
        site_id=lic["sites"][0]["site_id"],
        region=lic["region"],
        form="stationary",
        category="elderly",
        start_date=date(2026, 1, 5),
        addressee=Addressee(name="Айгүл", language="kk"),
    )


def ended(n: int, lic: dict[str, Any]) -> EnrollmentEndedV1:
    s = started(n, lic)
    return EnrollmentEndedV1(
        enrollment_id=s.enrollment_id,
        iin=s.iin,
        provider_bin=s.provider_bin,
        region=s.region,
        form=s.form,
        category=s.category,
        end_date=date(2026, 2, 1),
        reason="moved",
    )


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world():  # type: ignore[no-untyped-def]
    async with licensing_service() as svc:
        a = await issue(svc, application(sites=SITE_20))
        b = await issue(svc, application(sites=SITE_10))
        r = await svc.client.post(
            f"/v1/licenses/{b['number']}/suspend", json={"reason": "repairs"}, headers=OFFICIAL
        )
        assert r.status_code == 200
        revoked = await issue(svc, application(sites=SITE_10))
        r = await svc.client.post(
            f"/v1/licenses/{revoked['number']}/revoke", json={"reason": "x"}, headers=OFFICIAL
        )
        assert r.status_code == 200
        p1 = await submit(svc, core_only_application(sites=SITE_15))
        no_nurse = [s for s in application()["staffing"] if s["role"] != "nurse"]
        p2 = await submit(svc, application(sites=SITE_20, staffing=no_nurse))
        for n in range(3):
            await publish(started(n, a))
        await publish(started(0, b))
        await publish(started(1, revoked))
        await publish(ended(2, a))
        await publish(ended(2, a))  # a redelivery counts once

        async def counted() -> bool:
            rows = await svc.pool.fetch("SELECT * FROM enrollments")
            return len(rows) == 5 and sum(r["active"] for r in rows) == 4

        await eventually(counted)
        yield svc, {"a": a, "b": b, "p1": p1, "p2": p2}


async def impact(svc: RunningService, version: str) -> dict[str, Any]:
    r = await svc.client.post(f"/v1/requirement-sets/{version}/impact", headers=ADMIN)
    assert r.status_code == 200, r.text
    return dict(r.json())


def outcomes(report: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    return {
        row["key"]: (
            row["passes_in_force"],
            row["passes_simulated"],
            row["places"],
            row["recipients"],
        )
        for row in report["licensees"] + report["applications"]
    }


async def test_the_2026_1_draft_lets_pending_small_centres_pass(world: Any) -> None:
    svc, w = world
    report = await impact(svc, "2026.1")
    assert (report["version"], report["in_force"]) == ("2026.1", "2025.1")
    assert outcomes(report) == {
        w["a"]["number"]: (True, True, 20, 2),
        w["b"]["number"]: (True, True, 10, 1),
        w["p1"]["id"]: (False, True, 15, 0),
        w["p2"]["id"]: (False, False, 20, 0),
    }
    p1 = next(r for r in report["applications"] if r["key"] == w["p1"]["id"])
    assert p1["unmet_blocking_in_force"] == [
        "staff.gardener.site",
        "staff.janitor.site",
        "staff.tractor_driver.site",
        "staff.bread_cutter.site",
    ]
    assert p1["unmet_blocking_simulated"] == []
    assert report["totals"] == {
        "in_force": {
            "providers_passing": 2,
            "providers_failing": 2,
            "places_passing": 30,
            "places_failing": 35,
            "recipients_passing": 3,
            "recipients_failing": 0,
        },
        "simulated": {
            "providers_passing": 3,
            "providers_failing": 1,
            "places_passing": 45,
            "places_failing": 20,
            "recipients_passing": 3,
            "recipients_failing": 0,
        },
    }
    assert report["change"] == {
        "newly_passing": [w["p1"]["id"]],
        "newly_failing": [],
        "places_gained": 15,
        "places_lost": 0,
        "recipients_gained": 0,
        "recipients_lost": 0,
        "providers": 1,
        "places": 15,
        "recipients": 0,
    }


async def test_a_stricter_draft_shows_the_licensees_and_recipients_it_would_lose(
    world: Any,
) -> None:
    svc, w = world
    strict = {
        "version": "2026.strict",
        "title": "sensory room everywhere",
        "non_core_blocking": True,
        "requirements": [
            {
                "id": "equipment.sensory_room",
                "kind": "equipment",
                "core": True,
                "code": "sensory_room",
                "title_kk": "сенсорлық бөлме",
                "title_ru": "сенсорная комната",
            }
        ],
    }
    r = await svc.client.post("/v1/requirement-sets", json=strict, headers=ADMIN)
    assert r.status_code == 201, r.text
    report = await impact(svc, "2026.strict")
    assert outcomes(report) == {
        w["a"]["number"]: (True, False, 20, 2),
        w["b"]["number"]: (True, False, 10, 1),
        w["p1"]["id"]: (False, False, 15, 0),
        w["p2"]["id"]: (False, False, 20, 0),
    }
    change = report["change"]
    assert change["newly_failing"] == [w["a"]["number"], w["b"]["number"]]
    assert (change["providers"], change["places"], change["recipients"]) == (-2, -30, -3)


async def test_impact_needs_a_known_version_and_a_key(world: Any) -> None:
    svc, _ = world
    r = await svc.client.post("/v1/requirement-sets/0.0/impact", headers=ADMIN)
    assert r.status_code == 404
    r = await svc.client.post("/v1/requirement-sets/2026.1/impact")
    assert r.status_code == 401
    # Simulating norms is the norm-setter's work (licensing:norms), not a reader's.
    r = await svc.client.post("/v1/requirement-sets/2026.1/impact", headers=READER)
    assert (r.status_code, r.json()["required_scopes"]) == (403, ["licensing:norms"])


async def test_an_invalid_enrollment_event_is_dead_lettered(world: Any) -> None:
    body = b'{"specversion": "1.0", "id": "x", "type": "registry.enrollment.started.v1"}'
    await publish_raw(body, routing_key="registry.enrollment.started.v1")
    [dead] = await read_dlq("licensing", expect=1)
    assert dead.headers["x-ssu-dead-letter-reason"].startswith("invalid message")


async def test_impact_can_be_limited_to_a_region(world: Any) -> None:
    svc, _ = world
    r = await svc.client.post(
        "/v1/requirement-sets/2026.1/impact", params={"region": "710000000"}, headers=ADMIN
    )
    assert (r.json()["licensees"], r.json()["applications"]) == ([], [])
    r = await svc.client.post(
        "/v1/requirement-sets/2026.1/impact", params={"region": "630000000"}, headers=ADMIN
    )
    assert len(r.json()["licensees"]) == 2
