"""Region-restricted keys, OpenAPI, and the domain gauges."""

from pathlib import Path

import pytest
import pytest_asyncio
import yaml
from harness import ADMIN, ROOT, RunningService
from licensing_world import application, issue, licensing_service, submit
from ssu_common import hash_key

pytestmark = pytest.mark.asyncio(loop_scope="session")

EAST = {"Authorization": "Bearer test-east-licensing"}


def keys_file(directory: Path) -> Path:
    """The development keys plus an East Kazakhstan licensing inspector's key."""
    keys = yaml.safe_load((ROOT / "deploy" / "api-keys.dev.yaml").read_text(encoding="utf-8"))
    keys["clients"].append(
        {
            "client": "east-kz-inspector",
            "key_sha256": hash_key("test-east-licensing"),
            "scopes": ["licensing:read", "licensing:write"],
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
