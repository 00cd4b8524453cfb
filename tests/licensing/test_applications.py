"""Applications: validation, findings, submission and approval events, the issued license."""

import re
from typing import Any

import pytest
import pytest_asyncio
from harness import ADMIN, EventProbe, RunningService, event_probe
from licensing_world import (
    INSPECTOR,
    OFFICIAL,
    READER,
    almaty_today,
    application,
    core_only_application,
    issue,
    licensing_service,
    submit,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def svc():  # type: ignore[no-untyped-def]
    async with licensing_service() as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def probe():  # type: ignore[no-untyped-def]
    async with event_probe("licensing.#") as p:
        yield p


async def test_submission_answers_201_with_findings_and_publishes_submitted(
    svc: RunningService, probe: EventProbe
) -> None:
    body = application()
    r = await svc.client.post("/v1/applications", json=body, headers=ADMIN)
    assert r.status_code == 201, r.text
    app = r.json()
    assert app["status"] == "submitted"
    assert app["requirement_set"] == "2025.1"
    assert app["passes"] is True and app["unmet_blocking"] == []
    found = {f["requirement_id"]: (f["met"], f["expected"], f["actual"]) for f in app["findings"]}
    assert found == {
        "staff.social_worker.places": (True, "social_worker >= 2.00 FTE", "social_worker 2.00 FTE"),
        "staff.caregiver.places": (True, "caregiver >= 4.00 FTE", "caregiver 4.00 FTE"),
        "staff.nurse.places": (True, "nurse >= 1.00 FTE", "nurse 1.00 FTE"),
        "premises.area.residential": (True, ">= 120.00 m2 (6.00 m2 x 20 places)", "150.00 m2"),
        "premises.step_free": (True, "yes", "yes"),
        "equipment.first_aid_kit": (True, "first_aid_kit present", "present"),
        "equipment.fire_alarm": (True, "fire_alarm present", "present"),
        "equipment.adapted_bathroom": (True, "adapted_bathroom present", "present"),
        "staff.gardener.site": (True, "gardener >= 0.50 FTE", "gardener 0.50 FTE"),
        "staff.janitor.site": (True, "janitor >= 1.00 FTE", "janitor 1.00 FTE"),
        "staff.tractor_driver.site": (
            True,
            "tractor_driver >= 1.00 FTE",
            "tractor_driver 1.00 FTE",
        ),
        "staff.bread_cutter.site": (True, "bread_cutter >= 0.50 FTE", "bread_cutter 0.50 FTE"),
    }
    assert all(f["blocking"] for f in app["findings"])
    site_id = app["sites"][0]["site_id"]

    event = await probe.wait_for(
        lambda e: e["type"] == "licensing.application.submitted.v1" and e["subject"] == app["id"]
    )
    data = event["data"]
    assert data == {
        "application_id": app["id"],
        "bin": body["bin"],
        "provider_name": "Мейірім қарттар үйі",
        "legal_form": "ngo",
        "region": "630000000",
        "contact": {"email": "office@meyirim.kz", "phone": "+77232000000", "language": "kk"},
        "subtypes": [{"form": "stationary", "category": "elderly"}],
        "sites": [
            {
                "site_id": site_id,
                "address": "Өскемен, Абай даңғылы 10",
                "kato": "631010000",
                "places": 20,
            }
        ],
        "requirement_set": "2025.1",
        "findings": app["findings"],
        "submitted_at": data["submitted_at"],
    }
    got = await svc.client.get(f"/v1/applications/{app['id']}", headers=READER)
    assert got.status_code == 200
    assert got.json()["findings"] == app["findings"]


async def test_approval_issues_a_numbered_license_and_publishes_issued(
    svc: RunningService, probe: EventProbe
) -> None:
    body = application(
        region="710000000",
        sites=[{"address": "Астана, Мәңгілік Ел 5", "kato": "711210000", "places": 20}],
    )
    app = await submit(svc, body)
    r = await svc.client.post(f"/v1/applications/{app['id']}/approve", headers=OFFICIAL)
    assert r.status_code == 201, r.text
    lic = r.json()
    year = almaty_today().year
    assert re.fullmatch(rf"SSU-71-{year}-\d{{6}}", lic["number"])
    assert lic["status"] == "active" and lic["seq"] == 1
    assert lic["application_id"] == app["id"]

    event = await probe.wait_for(
        lambda e: e["type"] == "licensing.license.issued.v1" and e["subject"] == lic["number"]
    )
    assert event["data"] == {
        "license_number": lic["number"],
        "bin": body["bin"],
        "provider_name": "Мейірім қарттар үйі",
        "legal_form": "ngo",
        "region": "710000000",
        "contact": body["contact"],
        "subtypes": [{"form": "stationary", "category": "elderly"}],
        "sites": [{**body["sites"][0], "site_id": app["sites"][0]["site_id"]}],
        "status": "active",
        "seq": 1,
        "effective_date": almaty_today().isoformat(),
        "step_free_access": True,
        "application_id": app["id"],
    }

    public = await svc.client.get(f"/v1/licenses/{lic['number']}")
    assert public.status_code == 200
    view = public.json()
    assert view["region_name"] == {"kk": "Астана қаласы", "ru": "город Астана"}
    assert view["subtypes"] == [
        {
            "form": "stationary",
            "category": "elderly",
            "form_name": {"kk": "стационарлық нысан", "ru": "стационарная форма"},
            "category_name": {"kk": "егде жастағы адамдар", "ru": "лица пожилого возраста"},
        }
    ]
    assert "contact" not in view
    again = await svc.client.get(f"/v1/applications/{app['id']}", headers=READER)
    assert again.json()["status"] == "approved"
    assert again.json()["license_number"] == lic["number"]


async def test_license_numbers_follow_a_sequence_per_region_and_year(svc: RunningService) -> None:
    first = await issue(
        svc,
        application(
            region="750000000",
            sites=[{"address": "Алматы, Абай 1", "kato": "751110000", "places": 20}],
        ),
    )
    second = await issue(
        svc,
        application(
            region="750000000",
            sites=[{"address": "Алматы, Абай 2", "kato": "751110000", "places": 20}],
        ),
    )
    year = almaty_today().year
    assert first["number"] == f"SSU-75-{year}-000001"
    assert second["number"] == f"SSU-75-{year}-000002"


async def test_a_decided_application_cannot_be_approved_again(svc: RunningService) -> None:
    lic = await issue(svc)
    r = await svc.client.post(f"/v1/applications/{lic['application_id']}/approve", headers=OFFICIAL)
    assert r.status_code == 409
    assert r.json()["current_status"] == "approved"


async def test_approval_is_refused_with_the_unmet_blocking_findings(
    svc: RunningService,
) -> None:
    app = await submit(svc, core_only_application())
    assert app["passes"] is False
    assert app["unmet_blocking"] == [
        "staff.gardener.site",
        "staff.janitor.site",
        "staff.tractor_driver.site",
        "staff.bread_cutter.site",
    ]
    r = await svc.client.post(f"/v1/applications/{app['id']}/approve", headers=OFFICIAL)
    assert r.status_code == 409
    problem = r.json()
    assert problem["current_status"] == "submitted"
    assert [(f["requirement_id"], f["expected"], f["actual"]) for f in problem["unmet"]] == [
        ("staff.gardener.site", "gardener >= 0.50 FTE", "gardener 0.00 FTE"),
        ("staff.janitor.site", "janitor >= 1.00 FTE", "janitor 0.00 FTE"),
        ("staff.tractor_driver.site", "tractor_driver >= 1.00 FTE", "tractor_driver 0.00 FTE"),
        ("staff.bread_cutter.site", "bread_cutter >= 0.50 FTE", "bread_cutter 0.00 FTE"),
    ]
    assert problem["detail"] == (
        f"application {app['id']} has 4 unmet blocking requirement(s): staff.gardener.site, "
        "staff.janitor.site, staff.tractor_driver.site, staff.bread_cutter.site"
    )


BAD_FIELDS: list[tuple[dict[str, Any], str]] = [
    ({"bin": "940140000386"}, "bin"),
    ({"bin": "94014000038"}, "bin"),
    ({"region": "640000000"}, "region"),
    ({"legal_form": "church"}, "legal_form"),
    ({"provider_name": ""}, "provider_name"),
    ({"contact": {"email": "a@b.kz", "language": "en"}}, "contact.language"),
    ({"contact": {"email": "not-an-email", "language": "kk"}}, "contact.email"),
    ({"contact": {"language": "kk"}}, "contact.email"),
    ({"subtypes": []}, "subtypes"),
    ({"subtypes": [{"form": "boarding", "category": "elderly"}]}, "subtypes.0.form"),
    ({"subtypes": [{"form": "home", "category": "pets"}]}, "subtypes.0.category"),
    (
        {"subtypes": [{"form": "home", "category": "elderly"}] * 2},
        "subtypes.1",
    ),
    ({"sites": []}, "sites"),
    ({"sites": [{"address": "x", "kato": "63101000", "places": 5}]}, "sites.0.kato"),
    ({"sites": [{"address": "x", "kato": "991010000", "places": 5}]}, "sites.0.kato"),
    ({"sites": [{"address": "x", "kato": "631010000"}]}, "sites.0.places"),
    ({"sites": [{"address": "x", "kato": "631010000", "places": 0}]}, "sites.0.places"),
    ({"sites": [{"address": "", "kato": "631010000", "places": 5}]}, "sites.0.address"),
    ({"staffing": [{"role": "astronaut", "fte": "1.00"}]}, "staffing.0.role"),
    ({"staffing": [{"role": "nurse", "fte": "0"}]}, "staffing.0.fte"),
    ({"staffing": [{"role": "nurse", "fte": "1.001"}]}, "staffing.0.fte"),
    ({"equipment": ["first_aid_kit", "teleporter"]}, "equipment.1"),
    ({"premises": {"area_m2": "-1", "step_free_access": True}}, "premises.area_m2"),
    ({"premises": {"area_m2": "10"}}, "premises.step_free_access"),
    ({"colour": "blue"}, "colour"),
]


@pytest.mark.parametrize(("change", "field"), BAD_FIELDS)
async def test_bad_fields_are_422_problems_naming_the_field(
    svc: RunningService, change: dict[str, Any], field: str
) -> None:
    r = await svc.client.post("/v1/applications", json=application(**change), headers=ADMIN)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert field in [e["field"] for e in r.json()["errors"]]


async def test_home_care_needs_no_places(svc: RunningService) -> None:
    app = await submit(
        svc,
        application(
            subtypes=[{"form": "home", "category": "elderly"}],
            sites=[{"address": "Өскемен, офис", "kato": "631010000"}],
            staffing=[{"role": "social_worker", "fte": "1.00"}],
            equipment=["first_aid_kit"],
        ),
    )
    assert [(f["requirement_id"], f["met"]) for f in app["findings"]] == [
        ("staff.social_worker.home", True),
        ("equipment.first_aid_kit", True),
    ]


async def test_writes_need_a_key_with_the_write_scope(svc: RunningService) -> None:
    r = await svc.client.post("/v1/applications", json=application())
    assert r.status_code == 401
    r = await svc.client.post("/v1/applications", json=application(), headers=READER)
    assert r.status_code == 403
    lic = await issue(svc)
    for path in ("suspend", "reinstate", "revoke"):
        r = await svc.client.post(f"/v1/licenses/{lic['number']}/{path}", json={"reason": "x"})
        assert r.status_code == 401


async def test_unknown_application_and_license_are_404(svc: RunningService) -> None:
    r = await svc.client.get("/v1/applications/not-a-uuid", headers=READER)
    assert r.status_code == 404
    r = await svc.client.get(
        "/v1/applications/00000000-0000-0000-0000-000000000000", headers=READER
    )
    assert r.status_code == 404
    assert (await svc.client.get("/v1/licenses/SSU-63-2026-999999")).status_code == 404


async def test_rejection_keeps_the_reason_and_publishes_the_unmet_findings(
    svc: RunningService, probe: EventProbe
) -> None:
    body = core_only_application(premises={"area_m2": "100.00", "step_free_access": False})
    app = await submit(svc, body)
    r = await svc.client.post(
        f"/v1/applications/{app['id']}/reject",
        json={"reason": "premises too small"},
        headers=OFFICIAL,
    )
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["decision_reason"], r.json()["decided_by"]) == (
        "rejected",
        "premises too small",
        "dev-admin/decider-0001",
    )
    event = await probe.wait_for(
        lambda e: e["type"] == "licensing.application.rejected.v1" and e["subject"] == app["id"]
    )
    data = event["data"]
    assert (data["reason"], data["inspector"], data["bin"], data["contact"]) == (
        "premises too small",
        "dev-admin/decider-0001",
        body["bin"],
        body["contact"],
    )
    assert [(f["requirement_id"], f["expected"], f["actual"]) for f in data["findings"]] == [
        ("premises.area.residential", ">= 120.00 m2 (6.00 m2 x 20 places)", "100.00 m2"),
        ("premises.step_free", "yes", "no"),
        ("staff.gardener.site", "gardener >= 0.50 FTE", "gardener 0.00 FTE"),
        ("staff.janitor.site", "janitor >= 1.00 FTE", "janitor 0.00 FTE"),
        ("staff.tractor_driver.site", "tractor_driver >= 1.00 FTE", "tractor_driver 0.00 FTE"),
        ("staff.bread_cutter.site", "bread_cutter >= 0.50 FTE", "bread_cutter 0.00 FTE"),
    ]
    r = await svc.client.post(
        f"/v1/applications/{app['id']}/reject", json={"reason": "again"}, headers=OFFICIAL
    )
    assert (r.status_code, r.json()["current_status"]) == (409, "rejected")
    r = await svc.client.post(f"/v1/applications/{app['id']}/approve", headers=OFFICIAL)
    assert (r.status_code, r.json()["current_status"]) == (409, "rejected")


async def test_rejection_needs_a_reason(svc: RunningService) -> None:
    app = await submit(svc, application())
    r = await svc.client.post(f"/v1/applications/{app['id']}/reject", json={}, headers=OFFICIAL)
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["reason"]


async def test_inspection_findings_override_the_declared_values(svc: RunningService) -> None:
    app = await submit(svc, application())
    r = await svc.client.post(
        f"/v1/applications/{app['id']}/inspections",
        json={
            "inspected_on": almaty_today().isoformat(),
            "findings": [
                {
                    "requirement_id": "equipment.fire_alarm",
                    "met": False,
                    "actual": "alarm disconnected",
                },
                {"requirement_id": "staff.nurse.places", "met": True, "actual": "nurse 1.00 FTE"},
            ],
            "photos": ["s3://inspections/2026/alarm.jpg"],
            "notes": "visited unannounced",
        },
        headers=INSPECTOR,
    )
    assert r.status_code == 201, r.text
    inspection = r.json()["inspection"]
    assert (inspection["inspector"], inspection["photos"]) == (
        "dev-admin/inspector-0002",
        ["s3://inspections/2026/alarm.jpg"],
    )
    after = r.json()["application"]
    assert after["findings_source"] == "inspection"
    assert after["unmet_blocking"] == ["equipment.fire_alarm"]
    r = await svc.client.post(f"/v1/applications/{app['id']}/approve", headers=OFFICIAL)
    assert r.status_code == 409
    assert [(f["requirement_id"], f["expected"], f["actual"]) for f in r.json()["unmet"]] == [
        ("equipment.fire_alarm", "fire_alarm present", "alarm disconnected")
    ]
    got = (await svc.client.get(f"/v1/applications/{app['id']}", headers=READER)).json()
    assert [i["id"] for i in got["inspections"]] == [inspection["id"]]
    # A second visit finds the alarm repaired: the latest inspection counts.
    r = await svc.client.post(
        f"/v1/applications/{app['id']}/inspections",
        json={
            "inspected_on": almaty_today().isoformat(),
            "findings": [
                {"requirement_id": "equipment.fire_alarm", "met": True, "actual": "repaired"}
            ],
        },
        headers=INSPECTOR,
    )
    assert r.json()["application"]["passes"] is True
    r = await svc.client.post(f"/v1/applications/{app['id']}/approve", headers=OFFICIAL)
    assert r.status_code == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"inspected_on": "2999-01-01"}, "inspected_on"),
        ({}, "inspected_on"),
        (
            {
                "inspected_on": almaty_today().isoformat(),
                "findings": [{"requirement_id": "no.such", "met": True, "actual": "x"}],
            },
            "findings.0.requirement_id",
        ),
        (
            {
                "inspected_on": almaty_today().isoformat(),
                "findings": [{"requirement_id": "premises.step_free", "actual": "x"}],
            },
            "findings.0.met",
        ),
    ],
)
async def test_bad_inspections_are_422_naming_the_field(
    svc: RunningService, body: dict[str, Any], field: str
) -> None:
    app = await submit(svc, application())
    r = await svc.client.post(
        f"/v1/applications/{app['id']}/inspections", json=body, headers=INSPECTOR
    )
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == [field]


async def test_applications_and_licenses_are_listed_with_filters_and_pages(
    svc: RunningService,
) -> None:
    region = "590000000"
    site = [{"address": "Петропавл, Жамбыл 1", "kato": "591010000", "places": 20}]
    apps = [await submit(svc, application(region=region, sites=site)) for _ in range(3)]
    await svc.client.post(f"/v1/applications/{apps[0]['id']}/approve", headers=OFFICIAL)
    await svc.client.post(f"/v1/applications/{apps[1]['id']}/approve", headers=OFFICIAL)

    r = await svc.client.get(
        "/v1/applications", params={"region": region, "status": "submitted"}, headers=READER
    )
    assert [a["id"] for a in r.json()["items"]] == [apps[2]["id"]]
    r = await svc.client.get(
        "/v1/applications", params={"region": region, "limit": 2}, headers=READER
    )
    page = r.json()
    assert [a["id"] for a in page["items"]] == [apps[0]["id"], apps[1]["id"]]
    r = await svc.client.get(
        "/v1/applications",
        params={"region": region, "limit": 2, "cursor": page["next_cursor"]},
        headers=READER,
    )
    assert [a["id"] for a in r.json()["items"]] == [apps[2]["id"]]
    assert (await svc.client.get("/v1/applications")).status_code == 401

    r = await svc.client.get("/v1/licenses", params={"region": region, "limit": 1})
    assert r.status_code == 200
    first = r.json()
    year = almaty_today().year
    assert [i["number"] for i in first["items"]] == [f"SSU-59-{year}-000001"]
    r = await svc.client.get(
        "/v1/licenses", params={"region": region, "limit": 1, "cursor": first["next_cursor"]}
    )
    assert [i["number"] for i in r.json()["items"]] == [f"SSU-59-{year}-000002"]
    r = await svc.client.get("/v1/licenses", params={"bin": apps[1]["bin"]})
    assert [i["number"] for i in r.json()["items"]] == [f"SSU-59-{year}-000002"]
    r = await svc.client.get("/v1/licenses", params={"region": region, "status": "revoked"})
    assert r.json()["items"] == []
    r = await svc.client.get("/v1/licenses", params={"region": "123"})
    assert (r.status_code, r.json()["errors"][0]["field"]) == (422, "query.region")
    r = await svc.client.get("/v1/licenses", params={"cursor": "%%%"})
    assert (r.status_code, r.json()["errors"][0]["field"]) == (422, "query.cursor")
