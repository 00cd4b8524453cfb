"""Licensing's integration contract (issue 14): every answer documented with its schema, each
refusal a problem type of its own with its detail in kk, ru or en, and the one transition
function leaving the same trail as the copies it replaced."""

from datetime import timedelta
from html import escape
from typing import Any

import pytest
import pytest_asyncio
from harness import ADMIN, RunningService
from licensing_world import (
    almaty_today,
    application,
    core_only_application,
    issue,
    licensing_service,
    submit,
)
from pydantic import BaseModel
from ssu_licensing import api, domain
from ssu_licensing.main import build

live = pytest.mark.asyncio(loop_scope="session")

# The common kit's operations (health, metrics, the audit trail, key rotation, the problem
# pages) are documented by the kit, not by licensing.
KIT = {
    "GET /health/live",
    "GET /health/ready",
    "GET /metrics",
    "GET /v1/audit",
    "POST /v1/keys/rotation",
    "GET /problems",
    "GET /problems/{slug}",
}
# Every licensing operation and the schema its success answers.
ANSWERS = {
    "POST /v1/applications": ("201", "Application"),
    "GET /v1/applications": ("200", "ApplicationPage"),
    "GET /v1/applications/{application_id}": ("200", "ApplicationWithInspections"),
    "POST /v1/applications/{application_id}/inspections": ("201", "InspectionRecorded"),
    "POST /v1/applications/{application_id}/approve": ("201", "LicenseDecision"),
    "POST /v1/applications/{application_id}/reject": ("200", "Application"),
    "GET /v1/licenses": ("200", "LicensePage"),
    "GET /v1/licenses/{number}": ("200", None),
    "POST /v1/licenses/{number}/suspend": ("200", "LicenseDecision"),
    "POST /v1/licenses/{number}/reinstate": ("200", "LicenseDecision"),
    "POST /v1/licenses/{number}/revoke": ("200", "LicenseDecision"),
    "POST /v1/licenses/{number}/sites": ("201", "Amendment"),
    "POST /v1/licenses/{number}/staffing": ("200", "Amendment"),
    "GET /v1/requirement-sets": ("200", "RequirementSetList"),
    "POST /v1/requirement-sets": ("201", "RequirementSetView"),
    "GET /v1/requirement-sets/{version}": ("200", "RequirementSetView"),
    "POST /v1/requirement-sets/{version}/activate": ("200", "RequirementSetView"),
    "POST /v1/requirement-sets/{version}/impact": ("200", "Impact"),
    "GET /v1/decisions": ("200", "DecisionPage"),
}


def _openapi() -> dict[str, Any]:
    document: dict[str, Any] = build().create_app().openapi()
    return document


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = components[schema["$ref"].removeprefix("#/components/schemas/")]
    return schema


def _has_properties(schema: dict[str, Any], components: dict[str, Any]) -> bool:
    """An object schema with properties, or a union of such (the public or the full license)."""
    schema = _resolve(schema, components)
    if "properties" in schema:
        return True
    union = schema.get("anyOf") or schema.get("oneOf") or []
    return bool(union) and all(_has_properties(s, components) for s in union)


def test_every_operation_documents_its_success_answer_with_a_schema() -> None:
    document = _openapi()
    components = document["components"]["schemas"]
    seen: dict[str, tuple[str, str | None]] = {}
    undocumented = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            label = f"{method.upper()} {path}"
            if label in KIT:
                continue
            [(status, response)] = [
                (s, r) for s, r in operation["responses"].items() if s.startswith("2")
            ]
            schema = response["content"]["application/json"]["schema"]
            ref = schema.get("$ref", "").removeprefix("#/components/schemas/") or None
            seen[label] = (status, ref)
            if not _has_properties(schema, components):
                undocumented.append(label)
    assert seen == ANSWERS
    assert undocumented == []
    # A model's members carry their own schemas: a client reads the findings, not "object".
    application = components["Application"]["properties"]
    assert application["findings"]["items"] == {"$ref": "#/components/schemas/Finding"}
    assert application["submitted_at"] == {
        "type": "string",
        "format": "date-time",
        "title": "Submitted At",
    }
    assert components["Application"]["examples"][0]["status"] == "submitted"
    assert sorted(components["LicenseDecision"]["required"]) == sorted(
        [
            *components["PublicLicense"]["required"],
            "application_id",
            "contact",
            "decided_by",
        ]
    )


@pytest.mark.parametrize(
    "model",
    [
        api.Application,
        api.LicenseDecision,
        api.Amendment,
        api.RequirementSetView,
        api.Impact,
        api.Decision,
    ],
)
def test_each_example_is_an_answer_of_its_schema(model: type[BaseModel]) -> None:
    """An example a client's reader trusts is one the service could answer, byte for byte."""
    [example] = model.model_json_schema(mode="serialization")["examples"]
    assert model.model_validate(example).model_dump(mode="json") == example


def test_each_operation_declares_the_refusals_it_answers() -> None:
    paths = _openapi()["paths"]

    def kinds(path: str, method: str = "post") -> dict[str, list[str]]:
        return {
            status: sorted(response["content"]["application/problem+json"]["examples"])
            for status, response in paths[path][method]["responses"].items()
            if status in {"403", "409"}
        }

    assert kinds("/v1/licenses/{number}/suspend") == {
        "403": ["forbidden"],
        "409": ["license-not-suspendable"],
    }
    assert kinds("/v1/licenses/{number}/reinstate")["409"] == ["license-not-reinstatable"]
    assert kinds("/v1/licenses/{number}/revoke")["409"] == ["license-not-revocable"]
    for path in ("/v1/licenses/{number}/sites", "/v1/licenses/{number}/staffing"):
        assert kinds(path)["409"] == ["license-not-amendable", "no-requirement-set-in-force"]
    assert kinds("/v1/applications/{application_id}/approve") == {
        "403": ["forbidden", "inspector-does-not-approve"],
        "409": [
            "application-decided",
            "application-unmet-requirements",
            "no-requirement-set-in-force",
        ],
    }
    assert kinds("/v1/applications/{application_id}/reject")["409"] == [
        "application-decided",
        "no-requirement-set-in-force",
    ]
    assert kinds("/v1/requirement-sets") == {
        "403": ["forbidden", "norms-are-national"],
        "409": ["requirement-set-exists"],
    }


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def svc():  # type: ignore[no-untyped-def]
    async with licensing_service() as running:
        yield running


DECIDER = {**ADMIN, "X-SSU-Official": "contract-head-01"}


@live
async def test_a_license_refusal_has_its_type_and_reads_in_kazakh(svc: RunningService) -> None:
    number = (await issue(svc))["number"]
    r = await svc.client.post(
        f"/v1/licenses/{number}/revoke", json={"reason": "x"}, headers=DECIDER
    )
    assert r.status_code == 200, r.text
    r = await svc.client.post(
        f"/v1/licenses/{number}/suspend",
        json={"reason": "x"},
        headers={**DECIDER, "Accept-Language": "kk, ru;q=0.5"},
    )
    assert (r.status_code, r.headers["content-type"], r.headers["content-language"]) == (
        409,
        "application/problem+json",
        "kk",
    )
    assert r.json() == {
        "type": "/problems/license-not-suspendable",
        "title": "Лицензияны тоқтата тұруға болмайды",
        "status": 409,
        "detail": f"{number} лицензиясы: кері қайтарып алынды; оны тоқтата тұруға болмайды",
        "instance": f"/v1/licenses/{number}/suspend",
        "current_status": "revoked",
    }
    page = await svc.client.get("/problems/license-not-suspendable")
    assert page.status_code == 200
    assert escape(domain.LICENSE_NOT_SUSPENDABLE.explanation.kk) in page.text


@live
async def test_a_license_refusal_reads_in_russian_and_english(svc: RunningService) -> None:
    number = (await issue(svc))["number"]
    r = await svc.client.post(
        f"/v1/licenses/{number}/reinstate", headers={**DECIDER, "Accept-Language": "ru-KZ"}
    )
    assert (r.status_code, r.json()["type"], r.json()["title"], r.json()["detail"]) == (
        409,
        "/problems/license-not-reinstatable",
        "Лицензию нельзя восстановить",
        f"лицензия {number}: действует; её нельзя восстановить",
    )
    r = await svc.client.post(f"/v1/licenses/{number}/reinstate", headers=DECIDER)
    assert (r.json()["title"], r.json()["detail"], r.json()["current_status"]) == (
        "License cannot be reinstated",
        f"license {number} is active; it cannot be reinstated",
        "active",
    )


@live
async def test_application_refusals_have_their_types_and_read_in_kazakh(
    svc: RunningService,
) -> None:
    kk = {**DECIDER, "Accept-Language": "kk"}
    failing = await submit(svc, core_only_application())
    r = await svc.client.post(f"/v1/applications/{failing['id']}/approve", headers=kk)
    body = r.json()
    assert (r.status_code, body["type"], body["title"], body["current_status"]) == (
        409,
        "/problems/application-unmet-requirements",
        "Міндетті талаптар орындалмаған",
        "submitted",
    )
    assert body["detail"] == (
        f"{failing['id']} өтінішінде орындалмаған міндетті талаптар (4): staff.gardener.site, "
        "staff.janitor.site, staff.tractor_driver.site, staff.bread_cutter.site"
    )
    assert [u["requirement_id"] for u in body["unmet"]] == [
        "staff.gardener.site",
        "staff.janitor.site",
        "staff.tractor_driver.site",
        "staff.bread_cutter.site",
    ]
    r = await svc.client.post(
        f"/v1/applications/{failing['id']}/reject", json={"reason": "staff"}, headers=DECIDER
    )
    assert r.status_code == 200, r.text
    r = await svc.client.post(f"/v1/applications/{failing['id']}/approve", headers=kk)
    assert (r.status_code, r.json()["type"], r.json()["detail"], r.json()["current_status"]) == (
        409,
        "/problems/application-decided",
        f"{failing['id']} өтініші қабылданбады; ол бойынша шешім қабылданған",
        "rejected",
    )
    r = await svc.client.post(
        "/v1/requirement-sets/2025.1/impact", headers={**ADMIN, "Accept-Language": "kk"}
    )
    assert r.status_code == 200, r.text
    r = await svc.client.get("/v1/applications/no-such", headers={**ADMIN, "Accept-Language": "kk"})
    assert (r.status_code, r.json()["type"], r.json()["detail"]) == (
        404,
        "/problems/not-found",
        "no-such өтініші жоқ",
    )
    r = await svc.client.get(
        "/v1/requirement-sets/no-such", headers={**ADMIN, "Accept-Language": "kk"}
    )
    assert (r.status_code, r.json()["type"], r.json()["title"], r.json()["detail"]) == (
        404,
        "/problems/not-found",
        "Табылмады",
        "no-such талаптар жиыны жоқ",
    )


@live
async def test_each_status_change_leaves_the_trail_it_always_left(svc: RunningService) -> None:
    """One transition function over domain.STATUS_CHANGES: the same decisions and audit
    records as the three functions it replaced."""
    lic = await issue(svc, application())
    number = lic["number"]
    today = almaty_today()
    until = today + timedelta(days=10)
    answers = []
    for action, body in (
        ("suspend", {"reason": "fire alarm", "until": str(until)}),
        ("reinstate", None),
        ("revoke", {"reason": "repeated breaches"}),
    ):
        r = await svc.client.post(f"/v1/licenses/{number}/{action}", json=body, headers=DECIDER)
        assert r.status_code == 200, r.text
        answers.append((r.json()["status"], r.json()["seq"], r.json()["decided_by"]))
    assert answers == [
        ("suspended", 2, "dev-admin/contract-head-01"),
        ("active", 3, "dev-admin/contract-head-01"),
        ("revoked", 4, "dev-admin/contract-head-01"),
    ]
    r = await svc.client.get(
        "/v1/decisions", params={"subject": f"license:{number}"}, headers=ADMIN
    )
    day = today.isoformat()
    issued_on = lic["status_since"]
    assert [(d["action"], d["before"], d["after"], d["detail"]) for d in r.json()["items"][1:]] == [
        (
            "license.suspended",
            {
                "status": "active",
                "seq": 1,
                "status_since": issued_on,
                "status_reason": None,
                "suspended_until": None,
            },
            {
                "status": "suspended",
                "seq": 2,
                "status_since": day,
                "status_reason": "fire alarm",
                "suspended_until": until.isoformat(),
            },
            None,
        ),
        (
            "license.reinstated",
            {
                "status": "suspended",
                "seq": 2,
                "status_since": day,
                "status_reason": "fire alarm",
                "suspended_until": until.isoformat(),
            },
            {
                "status": "active",
                "seq": 3,
                "status_since": day,
                "status_reason": None,
                "suspended_until": None,
            },
            None,
        ),
        (
            "license.revoked",
            {
                "status": "active",
                "seq": 3,
                "status_since": day,
                "status_reason": None,
                "suspended_until": None,
            },
            {
                "status": "revoked",
                "seq": 4,
                "status_since": day,
                "status_reason": "repeated breaches",
                "suspended_until": None,
            },
            None,
        ),
    ]
    r = await svc.client.get(
        "/v1/audit", params={"client": "dev-admin", "limit": 1000}, headers=ADMIN
    )
    assert r.status_code == 200, r.text
    assert [
        (a["aggregate_type"], a["aggregate_id"], a["action"], a["reason"])
        for a in r.json()["items"]
        if a["aggregate_id"] == number
    ] == [
        ("license", number, "license.issued", f"application {lic['application_id']} approved"),
        ("license", number, "license.suspended", "fire alarm"),
        ("license", number, "license.reinstated", None),
        ("license", number, "license.revoked", "repeated breaches"),
    ]


@live
async def test_a_rejection_is_recorded_as_it_always_was(svc: RunningService) -> None:
    app = await submit(svc, application())
    r = await svc.client.post(
        f"/v1/applications/{app['id']}/reject", json={"reason": "incomplete"}, headers=DECIDER
    )
    assert (r.status_code, r.json()["status"], r.json()["decision_reason"]) == (
        200,
        "rejected",
        "incomplete",
    )
    r = await svc.client.get(
        "/v1/decisions", params={"subject": f"application:{app['id']}"}, headers=ADMIN
    )
    [rejected] = r.json()["items"]
    assert (rejected["actor"], rejected["action"], rejected["before"], rejected["after"]) == (
        "dev-admin/contract-head-01",
        "application.rejected",
        {"status": "submitted"},
        {"status": "rejected", "reason": "incomplete"},
    )
    assert rejected["detail"]["requirement_set"] == "2025.1"
