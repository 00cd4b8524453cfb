"""The authorization matrix, generated from every service's OpenAPI document.

For every `/v1` route: it declares a scope (or is marked public); without a key it is 401; with
a key lacking the scope it is 403; public routes answer without a key.
"""

import re
from typing import Any

import pytest
from harness import RunningService

from services import NO_SCOPES_KEY, all_services

PATH_VALUES = {
    "iin": "791028302728",
    "bin": "940140000385",
    "number": "SSU-63-2026-000001",
    "region": "630000000",
    "period": "2026-01",
    "version": "2025.1",
}
UUID = "00000000-0000-4000-8000-000000000000"


def concrete(path: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        return PATH_VALUES.get(name, UUID)

    return re.sub(r"\{([^}/]+?)(?::path)?\}", value, path)


def operations(app_openapi: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, ops in app_openapi["paths"].items()
        if path.startswith("/v1/")
        for method, op in ops.items()
    ]


def declared_scopes(op: dict[str, Any]) -> list[str]:
    return [scope for req in op.get("security", []) for scopes in req.values() for scope in scopes]


@pytest.fixture(scope="module")
async def services(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    async with all_services(tmp_path_factory.mktemp("keys")) as running:
        yield running


async def test_every_route_declares_a_scope_or_is_public(
    services: dict[str, RunningService],
) -> None:
    undeclared = [
        f"{name}: {method} {path}"
        for name, svc in services.items()
        for method, path, op in operations(svc.client._transport.app.openapi())  # type: ignore[attr-defined]
        if not declared_scopes(op) and not op.get("x-ssu-public")
    ]
    assert undeclared == []


async def test_matrix(services: dict[str, RunningService]) -> None:
    failures: list[str] = []
    checked = 0
    for name, svc in services.items():
        openapi = svc.client._transport.app.openapi()  # type: ignore[attr-defined]
        for method, path, op in operations(openapi):
            url = concrete(path)
            public = bool(op.get("x-ssu-public"))
            anonymous = await svc.client.request(method, url)
            if public:
                if anonymous.status_code in (401, 403):
                    failures.append(f"{name} {method} {path}: public but {anonymous.status_code}")
                checked += 1
                continue
            if anonymous.status_code != 401:
                failures.append(f"{name} {method} {path}: no key gave {anonymous.status_code}")
            elif anonymous.headers["content-type"] != "application/problem+json":
                failures.append(f"{name} {method} {path}: 401 is not problem details")
            unscoped = await svc.client.request(
                method, url, headers={"Authorization": f"Bearer {NO_SCOPES_KEY}"}
            )
            if unscoped.status_code != 403:
                failures.append(f"{name} {method} {path}: no scope gave {unscoped.status_code}")
            checked += 1
    print(f"authorization matrix: {checked} routes checked")
    assert failures == []
    assert checked >= 40


async def test_public_registry_refuses_writes_without_key(
    services: dict[str, RunningService],
) -> None:
    lic = services["licensing"].client
    assert (await lic.get("/v1/licenses")).status_code == 200
    r = await lic.post("/v1/licenses/SSU-63-2026-000001/suspend", json={"reason": "x"})
    assert r.status_code == 401


def test_paths_are_concrete() -> None:
    assert concrete("/v1/recipients/{iin}") == "/v1/recipients/791028302728"
    assert concrete("/v1/payment-registers/{region}/{period}.csv") == (
        "/v1/payment-registers/630000000/2026-01.csv"
    )
    assert concrete("/v1/runs/{id}/approve") == f"/v1/runs/{UUID}/approve"
