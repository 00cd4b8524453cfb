"""Roles as scopes, the official behind each decision, and the dates a decision may carry."""

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from harness import ADMIN, ROOT, RunningService
from licensing_world import (
    INSPECTOR,
    OFFICIAL,
    almaty_today,
    application,
    licensing_service,
    submit,
)
from ssu_common import hash_key

pytestmark = pytest.mark.asyncio(loop_scope="session")

PROVIDER_BIN = "940140000385"  # the BIN of ssu-dev-provider (deploy/api-keys.dev.yaml)
PROVIDER = {"Authorization": "Bearer ssu-dev-provider"}
INSPECTOR_ONLY = {"Authorization": "Bearer test-inspector", "X-SSU-Official": "insp-77"}
DECIDER = {"Authorization": "Bearer test-decider", "X-SSU-Official": "head-01"}
DECIDER_ANONYMOUS = {"Authorization": "Bearer test-decider"}


def keys_file(directory: Path) -> Path:
    """The development keys plus an inspector's system and a licensing department's."""
    keys = yaml.safe_load((ROOT / "deploy" / "api-keys.dev.yaml").read_text(encoding="utf-8"))
    keys["clients"] += [
        {
            "client": "test-inspector",
            "key_sha256": hash_key("test-inspector"),
            "scopes": ["licensing:read", "licensing:inspect"],
        },
        {
            "client": "test-decider",
            "key_sha256": hash_key("test-decider"),
            "scopes": ["licensing:read", "licensing:decide", "audit:read"],
        },
    ]
    path = directory / "keys.yaml"
    path.write_text(yaml.safe_dump(keys), encoding="utf-8")
    return path


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def svc(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    path = keys_file(tmp_path_factory.mktemp("keys"))
    async with licensing_service(api_keys_file=path) as running:
        yield running


def problem(r: Any) -> tuple[int, list[str], str]:
    body = r.json()
    return r.status_code, [e["field"] for e in body.get("errors", [])], body["detail"]


async def inspect(svc: RunningService, app_id: str, headers: dict[str, str], on: str) -> Any:
    return await svc.client.post(
        f"/v1/applications/{app_id}/inspections",
        json={"inspected_on": on, "findings": []},
        headers=headers,
    )


async def test_a_provider_applies_for_its_own_bin_only(svc: RunningService) -> None:
    r = await svc.client.post(
        "/v1/applications", json=application(bin=PROVIDER_BIN), headers=PROVIDER
    )
    assert (r.status_code, r.json()["bin"], r.json()["submitted_on"]) == (
        201,
        PROVIDER_BIN,
        almaty_today().isoformat(),
    )
    own = r.json()
    other = application()
    r = await svc.client.post("/v1/applications", json=other, headers=PROVIDER)
    assert problem(r) == (403, ["bin"], "bin: this key applies only for BIN 940140000385")
    # A provider's system files today: it cannot date its application back.
    earlier = str(almaty_today() - timedelta(days=1))
    r = await svc.client.post(
        "/v1/applications",
        json=application(bin=PROVIDER_BIN, submitted_on=earlier),
        headers=PROVIDER,
    )
    assert problem(r) == (
        422,
        ["submitted_on"],
        "submitted_on: a provider's own system files an application on the day it sends it",
    )
    # Nor does it decide on, inspect, or read its own application through that key.
    for path, body in (
        ("approve", None),
        ("reject", {"reason": "x"}),
        ("inspections", {"inspected_on": str(almaty_today())}),
    ):
        r = await svc.client.post(
            f"/v1/applications/{own['id']}/{path}", json=body, headers=PROVIDER
        )
        assert r.status_code == 403, path


async def test_each_role_holds_only_its_own_scope(svc: RunningService) -> None:
    app = await submit(svc, application())
    r = await svc.client.post(f"/v1/applications/{app['id']}/approve", headers=INSPECTOR_ONLY)
    assert (r.status_code, r.json()["required_scopes"]) == (403, ["licensing:decide"])
    r = await svc.client.post("/v1/applications", json=application(), headers=INSPECTOR_ONLY)
    assert (r.status_code, r.json()["required_scopes"]) == (403, ["licensing:apply"])
    r = await inspect(svc, app["id"], DECIDER, str(almaty_today()))
    assert (r.status_code, r.json()["required_scopes"]) == (403, ["licensing:inspect"])
    r = await svc.client.post(
        "/v1/requirement-sets/2026.1/activate",
        json={"effective_from": str(almaty_today() + timedelta(days=30))},
        headers=DECIDER,
    )
    assert (r.status_code, r.json()["required_scopes"]) == (403, ["licensing:norms"])
    r = await svc.client.post("/v1/requirement-sets/2026.1/impact", headers=DECIDER)
    assert (r.status_code, r.json()["required_scopes"]) == (403, ["licensing:norms"])


async def test_a_decision_names_its_official(svc: RunningService) -> None:
    app = await submit(svc, application())
    r = await svc.client.post(f"/v1/applications/{app['id']}/approve", headers=DECIDER_ANONYMOUS)
    assert problem(r) == (
        422,
        ["header.X-SSU-Official"],
        "header.X-SSU-Official: a decision must name the official who makes it",
    )
    r = await inspect(svc, app["id"], {"Authorization": "Bearer test-inspector"}, "2026-01-01")
    assert problem(r)[:2] == (422, ["header.X-SSU-Official"])

    r = await svc.client.post(f"/v1/applications/{app['id']}/approve", headers=DECIDER)
    assert (r.status_code, r.json()["decided_by"]) == (201, "test-decider/head-01")
    number = r.json()["number"]
    r = await svc.client.get(f"/v1/applications/{app['id']}", headers=ADMIN)
    assert (r.json()["status"], r.json()["decided_by"]) == ("approved", "test-decider/head-01")
    for action, body in (("suspend", {"reason": "fire safety"}), ("revoke", {"reason": "repeat"})):
        r = await svc.client.post(
            f"/v1/licenses/{number}/{action}", json=body, headers=DECIDER_ANONYMOUS
        )
        assert problem(r)[:2] == (422, ["header.X-SSU-Official"]), action
        r = await svc.client.post(f"/v1/licenses/{number}/{action}", json=body, headers=DECIDER)
        assert (r.status_code, r.json()["decided_by"]) == (200, "test-decider/head-01"), action

    r = await svc.client.get(
        "/v1/decisions", params={"subject": f"license:{number}"}, headers=ADMIN
    )
    assert [(d["actor"], d["action"]) for d in r.json()["items"]] == [
        ("test-decider/head-01", "license.issued"),
        ("test-decider/head-01", "license.suspended"),
        ("test-decider/head-01", "license.revoked"),
    ]
    r = await svc.client.get(
        "/v1/audit", params={"client": "test-decider", "limit": 1000}, headers=DECIDER
    )
    assert [
        (a["client"], a["official"], a["aggregate_type"], a["aggregate_id"], a["action"])
        for a in r.json()["items"]
        if a["action"].startswith(("license.", "application."))
    ] == [
        ("test-decider", "head-01", "application", app["id"], "license.issued"),
        ("test-decider", "head-01", "license", number, "license.issued"),
        ("test-decider", "head-01", "license", number, "license.suspended"),
        ("test-decider", "head-01", "license", number, "license.revoked"),
    ]


async def test_the_official_who_inspected_does_not_approve(svc: RunningService) -> None:
    app = await submit(svc, application())
    today = str(almaty_today())
    r = await inspect(svc, app["id"], INSPECTOR_ONLY, today)
    assert (r.status_code, r.json()["inspection"]["inspector"]) == (201, "test-inspector/insp-77")
    # The same official through the department's system (another client) is still one person.
    same = {**DECIDER, "X-SSU-Official": "insp-77"}
    r = await svc.client.post(f"/v1/applications/{app['id']}/approve", headers=same)
    assert (r.status_code, r.json()["inspector"]) == (403, "test-inspector/insp-77")
    assert r.json()["detail"] == (
        f"test-decider/insp-77 inspected application {app['id']} on {today};"
        " another official approves it"
    )
    r = await svc.client.post(f"/v1/applications/{app['id']}/approve", headers=DECIDER)
    assert (r.status_code, r.json()["decided_by"]) == (201, "test-decider/head-01")


async def test_inspection_dates_follow_the_application(svc: RunningService) -> None:
    today = almaty_today()
    filed = today - timedelta(days=10)
    app = await submit(svc, application(submitted_on=str(filed)))
    assert app["submitted_on"] == str(filed)
    r = await inspect(svc, app["id"], INSPECTOR, str(filed - timedelta(days=1)))
    assert problem(r) == (
        422,
        ["inspected_on"],
        f"inspected_on: must not be before the application was submitted ({filed})",
    )
    r = await inspect(svc, app["id"], INSPECTOR, str(today + timedelta(days=1)))
    assert problem(r) == (
        422,
        ["inspected_on"],
        f"inspected_on: must not be after today ({today}): it is recorded once it happened",
    )
    r = await inspect(svc, app["id"], INSPECTOR, str(filed))
    assert r.status_code == 201


async def test_a_license_is_issued_between_filing_or_inspection_and_today(
    svc: RunningService,
) -> None:
    today = almaty_today()
    filed, inspected = today - timedelta(days=20), today - timedelta(days=12)
    app = await submit(svc, application(submitted_on=str(filed)))

    async def approve_on(day: Any) -> Any:
        return await svc.client.post(
            f"/v1/applications/{app['id']}/approve",
            json={"effective_date": str(day)},
            headers=OFFICIAL,
        )

    r = await approve_on(filed - timedelta(days=1))
    assert problem(r) == (
        422,
        ["effective_date"],
        f"effective_date: must not be before the application was submitted ({filed})",
    )
    r = await inspect(svc, app["id"], INSPECTOR, str(inspected))
    assert r.status_code == 201
    r = await approve_on(inspected - timedelta(days=1))
    assert problem(r) == (
        422,
        ["effective_date"],
        f"effective_date: must not be before the inspection it rests on ({inspected})",
    )
    r = await approve_on(today + timedelta(days=1))
    assert problem(r) == (
        422,
        ["effective_date"],
        f"effective_date: must not be after today ({today})",
    )
    r = await approve_on(inspected)
    assert (r.status_code, r.json()["issued_on"], r.json()["status_since"]) == (
        201,
        str(inspected),
        str(inspected),
    )
    number = r.json()["number"]
    # Suspension, reinstatement and revocation: not before the issue date, not after today.
    r = await svc.client.post(
        f"/v1/licenses/{number}/suspend",
        json={"reason": "x", "effective_date": str(inspected - timedelta(days=1))},
        headers=OFFICIAL,
    )
    assert problem(r) == (
        422,
        ["effective_date"],
        f"effective_date: must not be before the license's last change ({inspected})",
    )
    r = await svc.client.post(
        f"/v1/licenses/{number}/revoke",
        json={"reason": "x", "effective_date": str(today + timedelta(days=1))},
        headers=OFFICIAL,
    )
    assert problem(r) == (
        422,
        ["effective_date"],
        f"effective_date: must not be after today ({today})",
    )


async def test_filing_and_norm_dates(svc: RunningService) -> None:
    today = almaty_today()
    r = await svc.client.post(
        "/v1/applications",
        json=application(submitted_on=str(today + timedelta(days=1))),
        headers=ADMIN,
    )
    assert problem(r) == (
        422,
        ["submitted_on"],
        f"submitted_on: must not be after today ({today})",
    )
    r = await svc.client.post(
        "/v1/requirement-sets/2026.1/activate",
        json={"effective_from": str(today - timedelta(days=1))},
        headers=ADMIN,
    )
    assert problem(r) == (
        422,
        ["effective_from"],
        f"effective_from: must not be before today ({today}): norms are not put in force"
        " retroactively",
    )
