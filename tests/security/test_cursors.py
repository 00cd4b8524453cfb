"""Every list of every service refuses a cursor it did not issue with a 422 naming `cursor`.

The lists are found in the OpenAPI documents (every GET `/v1` route with a `cursor` parameter),
so a new list is covered without being named here.
"""

import base64
import json
from typing import Any

import pytest
from harness import RunningService
from test_authz_matrix import concrete, operations

from services import all_services

ADMIN = {"Authorization": "Bearer ssu-dev-admin"}


def _wrap(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


TAMPERED = {
    "beyond bigint": _wrap(10**30),
    "negative": _wrap(-1),
    "a list holding SQL": _wrap(["x' OR 1=1 --"]),
    "a bool": _wrap(True),
    "a float": _wrap(1.5),
    "an object": _wrap({"id": 1}),
    "a list of the wrong shape": _wrap(["2026-01-01", 1, 2]),
    "nested lists": _wrap([[[["deep"]]]]),
    "deeper than the parser goes": base64.urlsafe_b64encode(b"[" * 600).decode(),
    "not base64": "%%%not-base64%%%",
    "not JSON": base64.urlsafe_b64encode(b"\xff\xfe{").decode(),
    "very long": "A" * 60_000,
}


@pytest.fixture(scope="module")
async def services(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    async with all_services(tmp_path_factory.mktemp("keys")) as running:
        yield running


def _lists(svc: RunningService) -> list[str]:
    openapi = svc.client._transport.app.openapi()  # type: ignore[attr-defined]
    return [
        path
        for method, path, op in operations(openapi)
        if method == "GET" and any(p["name"] == "cursor" for p in op.get("parameters", []))
    ]


async def test_every_list_refuses_a_tampered_cursor_with_422(
    services: dict[str, RunningService],
) -> None:
    failures: list[str] = []
    lists: list[str] = []
    for name, svc in services.items():
        for path in _lists(svc):
            lists.append(f"{name} {path}")
            for what, cursor in TAMPERED.items():
                r = await svc.client.get(concrete(path), params={"cursor": cursor}, headers=ADMIN)
                fields = [e.get("field") for e in r.json().get("errors", [])] if r.content else []
                if (
                    r.status_code != 422
                    or r.headers["content-type"] != "application/problem+json"
                    or "query.cursor" not in fields
                ):
                    failures.append(f"{name} GET {path} with {what}: {r.status_code} {fields}")
    assert failures == []
    # the lists of DESIGN §5 and the audit trail of each service are all found
    assert {
        "licensing /v1/licenses",
        "licensing /v1/applications",
        "licensing /v1/decisions",
        "registry /v1/providers",
        "registry /v1/enrollments",
        "registry /v1/disruptions",
        "billing /v1/invoices",
        "notification /v1/deliveries",
        "notification /v1/subscriptions",
        "licensing /v1/audit",
        "registry /v1/audit",
        "billing /v1/audit",
        "notification /v1/audit",
    } <= set(lists)


async def test_a_cursor_the_api_issued_pages_on(services: dict[str, RunningService]) -> None:
    audit = services["billing"].client
    for _ in range(3):
        await audit.put("/v1/tariffs", json={}, headers=ADMIN)  # three refused writes, audited
    first = (await audit.get("/v1/audit", params={"limit": 2}, headers=ADMIN)).json()
    assert len(first["items"]) == 2
    second = await audit.get(
        "/v1/audit", params={"limit": 2, "cursor": first["next_cursor"]}, headers=ADMIN
    )
    assert second.status_code == 200
    assert second.json()["items"][0]["id"] == first["items"][1]["id"] + 1
