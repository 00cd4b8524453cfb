"""The license lifecycle: suspend, reinstate, revoke, new sites; events in seq order; decisions."""

from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
from harness import EventProbe, RunningService, event_probe, eventually
from licensing_world import OFFICIAL, READER, almaty_today, application, issue, licensing_service

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def svc():  # type: ignore[no-untyped-def]
    async with licensing_service() as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def probe():  # type: ignore[no-untyped-def]
    async with event_probe("licensing.license.#") as p:
        yield p


async def post(svc: RunningService, number: str, action: str, body: Any = None) -> Any:
    return await svc.client.post(f"/v1/licenses/{number}/{action}", json=body, headers=OFFICIAL)


async def events_of(probe: EventProbe, number: str, count: int) -> list[dict[str, Any]]:
    def mine() -> list[dict[str, Any]]:
        return [e for e in probe.received if e["subject"] == number]

    async def enough() -> bool:
        await probe.pull()
        return len(mine()) >= count

    await eventually(enough)
    return mine()


async def test_every_transition_publishes_its_event_with_increasing_seq(
    svc: RunningService, probe: EventProbe
) -> None:
    lic = await issue(svc)
    number = lic["number"]
    today = almaty_today()
    until = today + timedelta(days=30)

    r = await post(svc, number, "suspend", {"reason": "fire safety breach", "until": str(until)})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["seq"], r.json()["suspended_until"]) == (
        "suspended",
        2,
        until.isoformat(),
    )
    r = await post(svc, number, "reinstate")
    assert (r.status_code, r.json()["status"], r.json()["seq"]) == (200, "active", 3)
    r = await post(
        svc, number, "sites", {"address": "Өскемен, Гагарин 7", "kato": "631010000", "places": 8}
    )
    assert r.status_code == 201, r.text
    new_site = r.json()["sites"][1]
    assert (new_site["address"], new_site["places"], r.json()["seq"]) == (
        "Өскемен, Гагарин 7",
        8,
        4,
    )
    r = await post(svc, number, "suspend", {"reason": "staff shortage"})
    assert (r.json()["status"], r.json()["seq"], r.json()["suspended_until"]) == (
        "suspended",
        5,
        None,
    )
    r = await post(svc, number, "revoke", {"reason": "repeated breaches"})
    assert (r.status_code, r.json()["status"], r.json()["seq"]) == (200, "revoked", 6)

    events = await events_of(probe, number, 6)
    assert [(e["type"], e["data"]["seq"], e["data"]["status"]) for e in events] == [
        ("licensing.license.issued.v1", 1, "active"),
        ("licensing.license.suspended.v1", 2, "suspended"),
        ("licensing.license.reinstated.v1", 3, "active"),
        ("licensing.license.amended.v1", 4, "active"),
        ("licensing.license.suspended.v1", 5, "suspended"),
        ("licensing.license.revoked.v1", 6, "revoked"),
    ]
    assert all(e["data"]["effective_date"] == today.isoformat() for e in events)
    suspended = events[1]["data"]
    assert (suspended["reason"], suspended["until"]) == ("fire safety breach", until.isoformat())
    assert (events[4]["data"]["reason"], events[4]["data"]["until"]) == ("staff shortage", None)
    amended = events[3]["data"]
    assert amended["change"] == f"site added: {new_site['site_id']}"
    assert amended["sites"][1] == {
        "site_id": new_site["site_id"],
        "address": "Өскемен, Гагарин 7",
        "kato": "631010000",
        "places": 8,
    }
    assert events[5]["data"]["reason"] == "repeated breaches"
    public = (await svc.client.get(f"/v1/licenses/{number}")).json()
    assert (public["status"], public["status_reason"], public["seq"]) == (
        "revoked",
        "repeated breaches",
        6,
    )
    assert public["status_name"] == {"kk": "кері қайтарып алынды", "ru": "отозвана"}


@pytest.mark.parametrize(
    ("setup", "action", "body", "status"),
    [
        ([], "reinstate", None, "active"),
        (["suspend"], "suspend", {"reason": "again"}, "suspended"),
        (["revoke"], "suspend", {"reason": "x"}, "revoked"),
        (["revoke"], "reinstate", None, "revoked"),
        (["revoke"], "revoke", {"reason": "x"}, "revoked"),
        (["revoke"], "sites", {"address": "a", "kato": "631010000", "places": 1}, "revoked"),
        (["suspend", "revoke"], "reinstate", None, "revoked"),
    ],
)
async def test_forbidden_transitions_are_409_with_the_current_status(
    svc: RunningService, setup: list[str], action: str, body: Any, status: str
) -> None:
    number = (await issue(svc))["number"]
    for step in setup:
        r = await post(svc, number, step, {"reason": "setup"})
        assert r.status_code == 200, r.text
    r = await post(svc, number, action, body)
    assert r.status_code == 409
    problem = r.json()
    assert problem["current_status"] == status
    assert problem["detail"].startswith(f"license {number} is {status}; it cannot be ")
    assert (await svc.client.get(f"/v1/licenses/{number}")).json()["seq"] == 1 + len(setup)


@pytest.mark.parametrize(
    ("action", "body", "field"),
    [
        ("suspend", {}, "reason"),
        ("suspend", {"reason": ""}, "reason"),
        ("suspend", {"reason": "x", "until": "2020-01-01"}, "until"),
        ("suspend", {"reason": "x", "until": "tomorrow"}, "until"),
        ("revoke", {}, "reason"),
        ("sites", {"address": "a", "kato": "631010000"}, "places"),
        ("sites", {"address": "a", "kato": "001010000", "places": 3}, "kato"),
        ("sites", {"address": "a", "kato": "6310", "places": 3}, "kato"),
        ("sites", {"kato": "631010000", "places": 3}, "address"),
    ],
)
async def test_bad_lifecycle_fields_are_422_naming_the_field(
    svc: RunningService, action: str, body: Any, field: str
) -> None:
    number = (await issue(svc))["number"]
    r = await post(svc, number, action, body)
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == [field]


async def test_changing_an_unknown_license_is_404(svc: RunningService) -> None:
    r = await post(svc, "SSU-63-2026-999999", "suspend", {"reason": "x"})
    assert r.status_code == 404


async def test_a_suspension_ends_by_itself_on_its_end_date(
    svc: RunningService, probe: EventProbe
) -> None:
    number = (await issue(svc))["number"]
    today = almaty_today()
    r = await post(
        svc, number, "suspend", {"reason": "repairs", "until": str(today + timedelta(3))}
    )
    assert r.status_code == 200
    # Three days pass: the end date is today now.
    await svc.pool.execute(
        "UPDATE licenses SET suspended_until = $2 WHERE number = $1", number, today
    )

    async def active() -> bool:
        return (await svc.client.get(f"/v1/licenses/{number}")).json()["status"] == "active"

    await eventually(active)
    events = await events_of(probe, number, 3)
    assert [(e["type"], e["data"]["seq"]) for e in events] == [
        ("licensing.license.issued.v1", 1),
        ("licensing.license.suspended.v1", 2),
        ("licensing.license.reinstated.v1", 3),
    ]
    assert events[2]["data"]["effective_date"] == today.isoformat()
    trail = await svc.client.get(
        "/v1/decisions", params={"subject": f"license:{number}"}, headers=READER
    )
    last = trail.json()["items"][-1]
    assert (last["actor"], last["action"]) == ("system:suspension-timer", "license.reinstated")
    assert (last["before"]["status"], last["after"]["status"], last["after"]["seq"]) == (
        "suspended",
        "active",
        3,
    )


async def test_decisions_are_kept_with_who_what_when_before_and_after(
    svc: RunningService,
) -> None:
    lic = await issue(svc, application())
    number = lic["number"]
    await post(svc, number, "suspend", {"reason": "inspection pending"})
    r = await svc.client.get(
        "/v1/decisions", params={"subject": f"license:{number}"}, headers=READER
    )
    assert r.status_code == 200
    items = r.json()["items"]
    assert [(i["actor"], i["action"]) for i in items] == [
        ("dev-admin/decider-0001", "license.issued"),
        ("dev-admin/decider-0001", "license.suspended"),
    ]
    assert items[1]["before"]["status"] == "active"
    assert items[1]["after"]["status"] == "suspended"
    assert items[1]["after"]["status_reason"] == "inspection pending"
    assert items[1]["at"]
    r = await svc.client.get(
        "/v1/decisions",
        params={"subject": f"application:{lic['application_id']}"},
        headers=READER,
    )
    [approved] = r.json()["items"]
    assert (approved["actor"], approved["action"], approved["after"]) == (
        "dev-admin/decider-0001",
        "application.approved",
        {"status": "approved", "license_number": number},
    )
    assert (await svc.client.get("/v1/decisions")).status_code == 401
