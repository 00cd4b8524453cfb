"""The authorization matrix, generated from every service's OpenAPI document.

For every `/v1` route: it declares a scope (or is marked public); without a key it is 401; with
a key lacking the scope it is 403; public routes answer without a key.
"""

import re
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from billing_world import attend, bank_details, enroll, licensed_provider, new_iin, tariff
from harness import ADMIN, RunningService, run_to_end

from services import ABAI, ABAI_APPROVER_KEY, NO_SCOPES_KEY, OTHER_REGION_KEY, all_services

PATH_VALUES = {
    "iin": "791028302728",
    "bin": "940140000385",
    "number": "SSU-63-2026-000001",
    "region": "630000000",
    "period": "2026-01",
    "version": "2025.1",
    "day": "2026-01-05",
}
UUID = "00000000-0000-4000-8000-000000000000"
EAST = "630000000"
ABAI_KEY = {"Authorization": f"Bearer {OTHER_REGION_KEY}"}
ABAI_APPROVER = {"Authorization": f"Bearer {ABAI_APPROVER_KEY}"}


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


# Licensing's roles (issue 13): who applies, inspects, decides and sets the norms.
LICENSING_SCOPES = {
    ("POST", "/v1/applications"): ["licensing:apply"],
    ("GET", "/v1/applications"): ["licensing:read"],
    ("GET", "/v1/applications/{application_id}"): ["licensing:read"],
    ("POST", "/v1/applications/{application_id}/inspections"): ["licensing:inspect"],
    ("POST", "/v1/applications/{application_id}/approve"): ["licensing:decide"],
    ("POST", "/v1/applications/{application_id}/reject"): ["licensing:decide"],
    ("GET", "/v1/licenses"): [],
    ("GET", "/v1/licenses/{number}"): [],
    ("POST", "/v1/licenses/{number}/staffing"): ["licensing:decide"],
    ("POST", "/v1/licenses/{number}/suspend"): ["licensing:decide"],
    ("POST", "/v1/licenses/{number}/reinstate"): ["licensing:decide"],
    ("POST", "/v1/licenses/{number}/revoke"): ["licensing:decide"],
    ("POST", "/v1/licenses/{number}/sites"): ["licensing:decide"],
    ("GET", "/v1/requirement-sets"): ["licensing:read"],
    ("GET", "/v1/requirement-sets/{version}"): ["licensing:read"],
    ("POST", "/v1/requirement-sets"): ["licensing:norms"],
    ("POST", "/v1/requirement-sets/{version}/activate"): ["licensing:norms"],
    ("POST", "/v1/requirement-sets/{version}/impact"): ["licensing:norms"],
    ("GET", "/v1/decisions"): ["licensing:read"],
    ("GET", "/v1/audit"): ["audit:read"],
}


async def test_licensing_routes_declare_their_roles(services: dict[str, RunningService]) -> None:
    openapi = services["licensing"].client._transport.app.openapi()  # type: ignore[attr-defined]
    declared = {(method, path): declared_scopes(op) for method, path, op in operations(openapi)}
    assert {k: v for k, v in declared.items() if k[1] != "/v1/keys/rotation"} == LICENSING_SCOPES
    assert not any("licensing:write" in scopes for scopes in declared.values())


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


async def test_billing_honours_the_region_of_the_key(services: dict[str, RunningService]) -> None:
    """A regional key records, runs, approves and reads only its region's billing; another
    region's objects are 404 (or 403 where it asks to act for another region)."""
    billing = services["billing"]
    http = billing.client
    today = datetime.now(ZoneInfo("Asia/Almaty")).date()
    first = (today.replace(day=1) - timedelta(days=1)).replace(day=1)  # last month
    period, year = f"{first:%Y-%m}", first.year
    abai_bin, abai_lic, _ = await licensed_provider(billing, region=ABAI, year=year)
    east_bin, east_lic, east_contract = await licensed_provider(billing, region=EAST, year=year)
    for region in (ABAI, EAST):
        await tariff(
            billing,
            region=region,
            form="stationary",
            rate="2000.00",
            unit="day",
            effective_from=date(year, 1, 1),
        )
    abai_e = await enroll(billing, abai_bin, abai_lic, first, region=ABAI)
    east_iin = new_iin()
    east_e = await enroll(billing, east_bin, east_lic, first, region=EAST, iin=east_iin)
    await attend(billing, east_bin, period, {east_e: [1, 2]})

    def day(n: int) -> str:
        return first.replace(day=n).isoformat()

    # attendance: another region's enrollment is not found, by id or by IIN
    r = await http.post(
        "/v1/attendance",
        headers=ABAI_KEY,
        json={
            "provider_bin": east_bin,
            "month": period,
            "enrollments": [
                {"enrollment_id": east_e, "dates": [day(3)]},
                {"iin": east_iin, "dates": [day(4)]},
            ],
        },
    )
    assert (r.status_code, r.json()["accepted"]) == (200, 0)
    assert [e["reason"] for e in r.json()["rejected"]] == [
        "unknown enrollment of this provider",
        "no enrollment of this IIN at this provider on this date",
    ]
    r = await http.post(
        "/v1/attendance/import",
        headers={**ABAI_KEY, "Content-Type": "text/csv"},
        content=f"iin,provider_bin,date\n{east_iin},{east_bin},{day(5)}\n".encode(),
    )
    assert (r.status_code, r.json()["accepted"]) == (200, 0)
    r = await http.post(
        "/v1/attendance",
        headers=ABAI_KEY,
        json={
            "provider_bin": abai_bin,
            "month": period,
            "enrollments": [{"enrollment_id": abai_e, "dates": [day(1), day(2), day(3)]}],
        },
    )
    assert (r.status_code, r.json()["accepted"]) == (200, 3)
    east_days = await billing.pool.fetchval(
        "SELECT count(*) FROM attendance WHERE enrollment_id = $1", east_e
    )
    assert east_days == 2

    # tariffs and contracts of another region
    r = await http.put(
        "/v1/tariffs",
        headers=ABAI_KEY,
        json={
            "region": EAST,
            "form": "home",
            "category": "*",
            "effective_from": f"{year}-01-01",
            "rate": "2000.00",
            "unit": "day",
            "act_reference": "forged",
        },
    )
    assert r.status_code == 404
    r = await http.post(
        "/v1/contracts",
        headers=ABAI_KEY,
        json={
            "number": "C-forged",
            "provider_bin": east_bin,
            "region": EAST,
            "year": year,
            "budget": "1.00",
            "bank_details": bank_details(east_bin),
        },
    )
    assert r.status_code == 404
    r = await http.get("/v1/tariffs", headers=ABAI_KEY, params={"region": EAST})
    assert r.status_code == 404

    # runs: its own region only, never national
    r = await http.post("/v1/runs", headers=ABAI_KEY, json={"period": period, "region": EAST})
    assert r.status_code == 403
    abai_run = await run_to_end(http.request, "/v1/runs", headers=ABAI_KEY, json={"period": period})
    assert (abai_run["region"], abai_run["invoices"], abai_run["total"]) == (ABAI, 1, "6000.00")
    national = await run_to_end(http.request, "/v1/runs", headers=ADMIN, json={"period": period})
    assert (national["region"], national["invoices"], national["total"]) == (None, 1, "4000.00")

    r = await http.get(f"/v1/runs/{national['id']}", headers=ABAI_KEY)
    assert r.status_code == 404
    for key in (ABAI_KEY, ABAI_APPROVER):
        r = await http.post(f"/v1/runs/{national['id']}/approve", headers=key)
        assert r.status_code == 404
    r = await http.post(f"/v1/runs/{abai_run['id']}/approve", headers=ABAI_KEY)
    assert r.status_code == 403  # four eyes
    r = await http.post(f"/v1/runs/{abai_run['id']}/approve", headers=ABAI_APPROVER)
    assert (r.status_code, r.json()["approved_by"]) == (200, "test-abai-approver")

    # invoices, budgets, payment registers of another region
    r = await http.get("/v1/invoices", headers=ABAI_KEY, params={"period": period})
    assert [(i["provider_bin"], i["status"]) for i in r.json()["items"]] == [(abai_bin, "approved")]
    r = await http.get("/v1/invoices", headers=ADMIN, params={"provider": east_bin})
    [east_invoice] = r.json()["items"]
    assert east_invoice["status"] == "issued"  # Abai's approval did not touch it
    r = await http.get(f"/v1/invoices/{east_invoice['id']}", headers=ABAI_KEY)
    assert r.status_code == 404
    r = await http.get("/v1/budgets", headers=ABAI_KEY, params={"year": year})
    assert {c["region"] for c in r.json()["contracts"]} == {ABAI}
    assert [t["region"] for t in r.json()["regions"]] == [ABAI]
    r = await http.get(f"/v1/payment-registers/{EAST}/{period}.csv", headers=ABAI_KEY)
    assert r.status_code == 404
    r = await http.post(
        f"/v1/payment-registers/{EAST}/{period}/reconciliation",
        headers={**ABAI_KEY, "Content-Type": "text/csv"},
        content=f"invoice_number,amount_paid,status,date\n{east_contract}/{period},1.00,paid,"
        f"{today}\n".encode(),
    )
    assert r.status_code == 404


TREASURY_ROUTES = {
    ("GET", "/v1/payment-registers/{region}/{period}.csv"),
    ("POST", "/v1/payment-registers/{region}/{period}/reconciliation"),
    ("POST", "/v1/invoices/{invoice_id}/correction"),
    ("GET", "/v1/reconciliation-report"),
}


async def test_the_treasury_routes_need_billing_treasury(
    services: dict[str, RunningService],
) -> None:
    """The payment register, reconciliation, corrections and the report are the treasury's:
    `billing:treasury` alone; an approver's key (billing:read, billing:approve) is refused."""
    billing = services["billing"]
    openapi = billing.client._transport.app.openapi()  # type: ignore[attr-defined]
    declared = {
        (method, path): declared_scopes(op)
        for method, path, op in operations(openapi)
        if (method, path) in TREASURY_ROUTES
    }
    assert declared == {key: ["billing:treasury"] for key in TREASURY_ROUTES}
    approver = {"Authorization": "Bearer ssu-dev-approver"}
    for method, path in sorted(TREASURY_ROUTES):
        params = {"year": 2026} if path == "/v1/reconciliation-report" else {}
        r = await billing.client.request(method, concrete(path), headers=approver, params=params)
        assert r.status_code == 403, (method, path, r.status_code)
