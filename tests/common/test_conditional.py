"""ETag, If-None-Match, Cache-Control and If-Match (issue 14), through a real service
(licensing) on its real database: a public read revalidates to a 304, a state change with a
stale tag is a 412 and changes nothing, one with the current tag goes through."""

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from harness import RunningService

sys.path.insert(0, str(Path(__file__).parents[1] / "licensing"))
from licensing_world import ADMIN, OFFICIAL, application, issue, licensing_service

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def svc() -> AsyncIterator[RunningService]:
    async with licensing_service() as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def license_(svc: RunningService) -> dict[str, Any]:
    return await issue(svc)


async def test_a_public_read_carries_a_tag_and_revalidates(
    svc: RunningService, license_: dict[str, Any]
) -> None:
    c = svc.client
    first = await c.get(f"/v1/licenses/{license_['number']}")
    assert first.status_code == 200, first.text
    tag = first.headers["etag"]
    assert first.headers["cache-control"] == "public, max-age=60"
    again = await c.get(f"/v1/licenses/{license_['number']}", headers={"If-None-Match": tag})
    assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", tag)
    other = await c.get(f"/v1/licenses/{license_['number']}", headers={"If-None-Match": '"x"'})
    assert other.status_code == 200 and other.json() == first.json()
    # What a key reads may hold more than the public sees: only the client may keep it.
    keyed = await c.get(f"/v1/licenses/{license_['number']}", headers=OFFICIAL)
    assert keyed.headers["cache-control"] == "private, no-cache"
    listed = await c.get("/v1/licenses", params={"limit": 5})
    assert listed.headers["etag"] and listed.headers["cache-control"] == "public, max-age=60"
    missing = await c.get("/v1/licenses/KZ-NONE")
    assert missing.status_code == 404 and "etag" not in missing.headers


async def test_a_change_with_a_stale_tag_is_refused_and_changes_nothing(
    svc: RunningService, license_: dict[str, Any]
) -> None:
    c = svc.client
    number = license_["number"]
    read = await c.get(f"/v1/licenses/{number}", headers=OFFICIAL)
    tag = read.headers["etag"]
    # Another inspector suspends it meanwhile (no precondition).
    r = await c.post(
        f"/v1/licenses/{number}/suspend", json={"reason": "пожарная безопасность"}, headers=OFFICIAL
    )
    assert r.status_code == 200, r.text
    # The first acts on what they saw: refused, the license stays as the other left it.
    r = await c.post(
        f"/v1/licenses/{number}/revoke",
        json={"reason": "нарушения"},
        headers={**OFFICIAL, "If-Match": tag},
    )
    assert r.status_code == 412, r.text
    now = await c.get(f"/v1/licenses/{number}", headers=OFFICIAL)
    assert r.json()["current_etag"] == now.headers["etag"] != tag
    assert r.json()["errors"][0]["field"] == "header.if-match"
    assert now.json()["status"] == "suspended"
    # With the current tag the change goes through.
    r = await c.post(
        f"/v1/licenses/{number}/reinstate",
        json={},
        headers={**OFFICIAL, "If-Match": now.headers["etag"]},
    )
    assert r.status_code == 200, r.text
    assert (await c.get(f"/v1/licenses/{number}")).json()["status"] == "active"
    # A resource that does not exist has no tag to match.
    r = await c.post(
        "/v1/licenses/KZ-NONE/suspend", json={"reason": "x"}, headers={**OFFICIAL, "If-Match": "*"}
    )
    assert r.status_code == 412, r.text


async def test_the_openapi_document_names_the_validators(svc: RunningService) -> None:
    doc = (await svc.client.get("/openapi.json")).json()
    get = doc["paths"]["/v1/licenses/{number}"]["get"]
    assert "If-None-Match" in [p["name"] for p in get["parameters"]]
    assert "ETag" in get["responses"]["200"]["headers"]
    post = doc["paths"]["/v1/licenses/{number}/suspend"]["post"]
    assert {"If-Match", "Idempotency-Key"} <= {p["name"] for p in post["parameters"]}
    assert "412" in post["responses"]


async def test_a_creation_names_where_it_is_read(svc: RunningService) -> None:
    c = svc.client
    r = await c.post("/v1/applications", json=application(), headers=ADMIN)
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"/v1/applications/{r.json()['id']}"
    assert (await c.get(r.headers["location"], headers=ADMIN)).json()["id"] == r.json()["id"]
    r = await c.post(f"{r.headers['location']}/approve", headers=OFFICIAL)
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"/v1/licenses/{r.json()['number']}"
    assert (await c.get(r.headers["location"])).json()["status"] == "active"
    doc = (await c.get("/openapi.json")).json()
    assert "Location" in doc["paths"]["/v1/applications"]["post"]["responses"]["201"]["headers"]
