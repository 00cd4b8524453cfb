"""Region-restricted keys, OpenAPI, and the domain gauges."""

from pathlib import Path

import pytest
import pytest_asyncio
import yaml
from harness import ADMIN, ROOT, RunningService
from licensing_world import (
    SHELTER_ADDRESS,
    application,
    issue,
    licensing_service,
    shelter_application,
    submit,
)
from ssu_common import hash_key

pytestmark = pytest.mark.asyncio(loop_scope="session")

EAST = {"Authorization": "Bearer test-east-licensing", "X-SSU-Official": "east-official-01"}


def keys_file(directory: Path) -> Path:
    """The development keys plus an East Kazakhstan licensing inspector's key."""
    keys = yaml.safe_load((ROOT / "deploy" / "api-keys.dev.yaml").read_text(encoding="utf-8"))
    keys["clients"].append(
        {
            "client": "east-kz-inspector",
            "key_sha256": hash_key("test-east-licensing"),
            "scopes": [
                "licensing:read",
                "licensing:apply",
                "licensing:inspect",
                "licensing:decide",
                "licensing:norms",
            ],
            "region": "630000000",
        }
    )
    path = directory / "keys.yaml"
    path.write_text(yaml.safe_dump(keys), encoding="utf-8")
    return path


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def svc(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    path = keys_file(tmp_path_factory.mktemp("keys"))
    async with licensing_service(api_keys_file=path) as running:
        yield running


async def test_a_regional_key_sees_and_changes_only_its_region(svc: RunningService) -> None:
    astana = application(
        region="710000000", sites=[{"address": "Астана", "kato": "711210000", "places": 20}]
    )
    other = await submit(svc, astana)
    mine = await submit(svc, application())
    r = await svc.client.get(f"/v1/applications/{other['id']}", headers=EAST)
    assert r.status_code == 404
    r = await svc.client.post(f"/v1/applications/{other['id']}/approve", headers=EAST)
    assert r.status_code == 404
    r = await svc.client.get("/v1/applications", headers=EAST)
    assert {a["region"] for a in r.json()["items"]} == {"630000000"}
    r = await svc.client.post("/v1/applications", json=astana, headers=EAST)
    assert (r.status_code, r.json()["errors"][0]["field"]) == (403, "region")
    r = await svc.client.post(f"/v1/applications/{mine['id']}/approve", headers=EAST)
    assert r.status_code == 201
    lic = await issue(svc, astana)
    r = await svc.client.post(
        f"/v1/licenses/{lic['number']}/suspend", json={"reason": "x"}, headers=EAST
    )
    assert r.status_code == 404
    # The public registry still shows it to anyone.
    assert (await svc.client.get(f"/v1/licenses/{lic['number']}")).status_code == 200


async def test_openapi_and_gauges(svc: RunningService) -> None:
    r = await svc.client.get("/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    for path in (
        "/v1/applications",
        "/v1/applications/{application_id}/inspections",
        "/v1/applications/{application_id}/approve",
        "/v1/applications/{application_id}/reject",
        "/v1/licenses",
        "/v1/licenses/{number}/suspend",
        "/v1/licenses/{number}/sites",
        "/v1/requirement-sets",
        "/v1/requirement-sets/{version}/impact",
        "/v1/decisions",
    ):
        assert path in paths
    await issue(svc)
    metrics = (await svc.client.get("/metrics", headers=ADMIN)).text
    assert 'ssu_licenses{region="630000000",service="licensing",status="active"}' in metrics


async def test_a_regional_key_cannot_change_the_national_requirement_sets(
    svc: RunningService,
) -> None:
    r = await svc.client.post(
        "/v1/requirement-sets/2026.1/activate", json={"effective_from": "2030-01-01"}, headers=EAST
    )
    assert r.status_code == 403


async def test_the_public_registry_shows_a_shelters_district_never_its_address(
    svc: RunningService,
) -> None:
    shelter = await issue(svc, shelter_application())
    home = await issue(svc, application())
    number, site_id = shelter["number"], shelter["sites"][0]["site_id"]
    district_only = {
        "site_id": site_id,
        "places": 12,
        "region": "630000000",
        "region_name": {"kk": "Шығыс Қазақстан облысы", "ru": "Восточно-Казахстанская область"},
        "district": "631000000",
        "kato": None,
        "address": None,
    }
    # no key, a key without licensing:read: the public view, from the one license and the list
    for headers in ({}, {"Authorization": "Bearer ssu-dev-east-kz"}):
        r = await svc.client.get(f"/v1/licenses/{number}", headers=headers)
        assert r.status_code == 200
        assert r.json()["sites"] == [district_only]
        r = await svc.client.get("/v1/licenses", params={"bin": shelter["bin"]}, headers=headers)
        assert SHELTER_ADDRESS not in r.text and "631010000" not in r.text
        # an ordinary home's address is public
        r = await svc.client.get(f"/v1/licenses/{home['number']}", headers=headers)
        assert r.json()["sites"][0]["address"] == "Өскемен, Абай даңғылы 10"
    # licensing:read: the address, in the license itself; a list holds summaries, no sites
    r = await svc.client.get("/v1/licenses", params={"bin": shelter["bin"]}, headers=ADMIN)
    (summary,) = r.json()["items"]
    assert "sites" not in summary and SHELTER_ADDRESS not in r.text
    assert {k: summary[k] for k in ("number", "places", "site_count", "href")} == {
        "number": number,
        "places": 12,
        "site_count": 1,
        "href": f"/v1/licenses/{number}",
    }
    r = await svc.client.get(f"/v1/licenses/{number}", headers=ADMIN)
    assert r.json()["sites"] == [{**district_only, "kato": "631010000", "address": SHELTER_ADDRESS}]
    # a key that is not known is refused rather than answered as the public
    r = await svc.client.get(f"/v1/licenses/{number}", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401


async def test_a_misspelt_filter_is_refused_naming_it_not_ignored(svc: RunningService) -> None:
    body = application()
    lic = await issue(svc, body)
    # Ignored, "regoin" would answer every region's licenses as if filtered.
    r = await svc.client.get("/v1/licenses", params={"regoin": "710000000", "bin": body["bin"]})
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    errors = r.json()["errors"]
    assert [(e["field"], e["type"]) for e in errors] == [("query.regoin", "unknown_parameter")]
    assert "region" in errors[0]["message"]
    r = await svc.client.get("/v1/applications", params={"staus": "draft"}, headers=ADMIN)
    assert [e["field"] for e in r.json()["errors"]] == ["query.staus"]
    # The declared names still filter.
    r = await svc.client.get(
        "/v1/licenses",
        params={"bin": body["bin"], "region": "630000000", "status": "active", "limit": 5},
    )
    assert r.status_code == 200
    assert [item["number"] for item in r.json()["items"]] == [lic["number"]]
