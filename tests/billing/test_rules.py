"""Billing's rules an office expects (issue 13): roles, timed suspensions, the budget order,
amended budgets; exact amounts computed by hand beside each test."""

import random
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal

import pytest_asyncio
from billing_world import (
    APPROVER,
    amounts,
    attend,
    enroll,
    feed,
    invoice_of,
    issued,
    licensed_provider,
    reinstated,
    revoked,
    run,
    suspended,
    tariff,
)
from harness import (
    ADMIN,
    RunningService,
    reset_service,
    run_to_end,
    running_service,
    settings_for,
)
from ssu_billing import domain
from ssu_billing.main import build
from ssu_billing.settings import Settings
from ssu_contracts import LicenseSuspendedV1

PROVIDER = {"Authorization": "Bearer ssu-dev-provider"}
PROVIDER_BIN = "940140000385"
EAST = {"Authorization": "Bearer ssu-dev-east-kz"}
READER = {"Authorization": "Bearer ssu-dev-reader"}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def svc() -> AsyncIterator[RunningService]:
    await reset_service("billing")
    async with running_service(build(settings_for(Settings, "billing"))) as running:  # type: ignore[arg-type]
        yield running


def _official(key: dict[str, str], official: str) -> dict[str, str]:
    return {**key, "X-SSU-Official": official}


async def test_a_providers_key_reports_its_own_bin_only(svc: RunningService) -> None:
    region, year = "150000000", 2025
    await feed(svc, issued(PROVIDER_BIN, "LIC-OWN", date(year, 1, 1), region=region))
    other_bin, other_lic, _ = await licensed_provider(svc, region=region, year=year)
    own = await enroll(svc, PROVIDER_BIN, "LIC-OWN", date(year, 1, 1), region=region)
    other = await enroll(svc, other_bin, other_lic, date(year, 1, 1), region=region)

    def body(bin_: str, eid: str) -> dict[str, object]:
        return {
            "provider_bin": bin_,
            "month": f"{year}-01",
            "enrollments": [{"enrollment_id": eid, "dates": [f"{year}-01-02"]}],
        }

    r = await svc.client.post(
        "/v1/attendance",
        headers={**PROVIDER, "Accept-Language": "ru"},
        json=body(other_bin, other),
    )
    assert r.status_code == 403
    assert r.json()["type"] == "/problems/not-the-keys-bin"
    assert r.json()["detail"].endswith(f"передаёт посещаемость только по БИН {PROVIDER_BIN}")
    assert r.json()["errors"] == [
        {"field": "provider_bin", "message": f"not the key's BIN {PROVIDER_BIN}"}
    ]
    r = await svc.client.post("/v1/attendance", headers=PROVIDER, json=body(PROVIDER_BIN, own))
    assert (r.status_code, r.json()) == (
        200,
        {"accepted": 1, "already_recorded": [], "rejected": []},
    )

    csv_body = f"iin,provider_bin,date\n791028302728,{PROVIDER_BIN},{year}-01-03\n"
    csv_body += f"791028302728,{other_bin},{year}-01-03\n"
    r = await svc.client.post(
        "/v1/attendance/import",
        headers={**PROVIDER, "Content-Type": "text/csv"},
        content=csv_body.encode(),
    )
    assert r.status_code == 403
    assert r.json()["errors"] == [
        {"field": "provider_bin", "line": 3, "message": "not the key's BIN"}
    ]
    # a regional operator's key reads billing but does not report, run or approve
    r = await svc.client.post("/v1/attendance", headers=EAST, json=body(other_bin, other))
    assert (r.status_code, r.json()["required_scopes"]) == (403, ["billing:report"])
    r = await svc.client.post("/v1/runs", headers=APPROVER, json={"period": f"{year}-01"})
    assert (r.status_code, r.json()["required_scopes"]) == (403, ["billing:run"])
    r = await svc.client.post("/v1/runs", headers=PROVIDER, json={"period": f"{year}-01"})
    assert r.status_code == 403


async def test_four_eyes_compares_officials_and_records_them(svc: RunningService) -> None:
    region, year = "190000000", 2025
    await licensed_provider(svc, region=region, year=year)
    started = await run_to_end(
        svc.client.request,
        "/v1/runs",
        headers=_official(ADMIN, "inspector-17"),
        json={"period": f"{year}-01", "region": region},
    )
    assert started["started_by"] == "dev-admin/inspector-17"
    # the same official through another client system is still one pair of eyes
    r = await svc.client.post(
        f"/v1/runs/{started['id']}/approve", headers=_official(APPROVER, "inspector-17")
    )
    assert r.status_code == 403
    assert r.json()["started_by"] == "dev-admin/inspector-17"
    # another official of the very client that started it is a second pair
    r = await svc.client.post(
        f"/v1/runs/{started['id']}/approve", headers=_official(ADMIN, "accountant-3")
    )
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["approved_by"]) == ("approved", "dev-admin/accountant-3")


async def test_a_timed_suspension_ends_at_until_without_the_reinstatement(
    svc: RunningService,
) -> None:
    region, year = "620000000", 2025
    a_bin, a_lic, _ = await licensed_provider(svc, region=region, year=year)
    b_bin, b_lic, _ = await licensed_provider(svc, region=region, year=year)
    for form, rate, unit in (("stationary", "4000.00", "day"), ("home", "62000.00", "month")):
        await tariff(
            svc, region=region, form=form, rate=rate, unit=unit, effective_from=date(year, 1, 1)
        )
    a_day = await enroll(svc, a_bin, a_lic, date(year, 2, 1), region=region)
    a_month = await enroll(svc, a_bin, a_lic, date(year, 2, 1), form="home", region=region)
    b_day = await enroll(svc, b_bin, b_lic, date(year, 2, 1), region=region)
    # A: suspended on the 10th until the 20th (active again on the 20th); no reinstatement yet
    timed = suspended(a_bin, a_lic, date(year, 3, 10), seq=2, region=region)
    await feed(svc, LicenseSuspendedV1(**{**timed.model_dump(), "until": date(year, 3, 20)}))
    # B: suspended on the 10th until the 20th, but revoked on the 15th
    b_timed = suspended(b_bin, b_lic, date(year, 3, 10), seq=2, region=region)
    await feed(svc, LicenseSuspendedV1(**{**b_timed.model_dump(), "until": date(year, 3, 20)}))
    await feed(svc, revoked(b_bin, b_lic, date(year, 3, 15), seq=3, region=region))
    active = await svc.pool.fetchval(
        "SELECT active::text FROM licenses WHERE license_number = $1", a_lic
    )
    assert active == f"{{[{year}-01-01,{year}-03-10),[{year}-03-20,)}}"
    await attend(svc, a_bin, f"{year}-03", {a_day: [5, 9, 10, 15, 19, 20, 25], a_month: [25]})
    await attend(svc, b_bin, f"{year}-03", {b_day: [5, 9, 10, 20]})

    await run(svc, f"{year}-03", region=region)

    a = await invoice_of(svc, a_bin, f"{year}-03")
    # 5, 9, 20, 25 paid: 4 × 4000.00 = 16000.00; eligible 1..9 and 20..31 = 21 days:
    # 62000.00 × 21/31 = 42000.00
    assert amounts(a) == {a_day: "16000.00", a_month: "42000.00"}
    assert a["total"] == "58000.00"
    b = await invoice_of(svc, b_bin, f"{year}-03")
    # revoked inside the suspension: never active again; 5 and 9 paid = 8000.00
    assert amounts(b) == {b_day: "8000.00"}

    # the timer's reinstatement arrives late and changes nothing
    await feed(svc, reinstated(a_bin, a_lic, date(year, 3, 20), seq=3, region=region))
    active = await svc.pool.fetchval(
        "SELECT active::text FROM licenses WHERE license_number = $1", a_lic
    )
    assert active == f"{{[{year}-01-01,{year}-03-10),[{year}-03-20,)}}"
    await run(svc, f"{year}-04", region=region)
    april = await invoice_of(svc, a_bin, f"{year}-04")
    assert [(li["kind"], li["month"]) for li in april["items"]] == [
        ("regular", f"{year}-04"),
        ("regular", f"{year}-04"),
    ]


async def test_lines_over_budget_and_later_lines_that_fit(svc: RunningService) -> None:
    region, year = "270000000", 2025
    bin_, lic, contract = await licensed_provider(svc, region=region, year=year, budget="250000.00")
    await tariff(
        svc,
        region=region,
        form="stationary",
        rate="10000.00",
        unit="day",
        effective_from=date(year, 1, 1),
    )
    # budget order: start date, then enrollment id
    third = await enroll(svc, bin_, lic, date(year, 1, 3), region=region)
    small = await enroll(svc, bin_, lic, date(year, 1, 4), region=region)
    first, second = sorted(
        [await enroll(svc, bin_, lic, date(year, 1, 1), region=region) for _ in range(2)]
    )
    ten_days = list(range(5, 15))
    await attend(
        svc,
        bin_,
        f"{year}-01",
        {first: ten_days, second: ten_days, third: ten_days, small: [5, 6, 7]},
    )

    await run(svc, f"{year}-01", region=region)

    january = await invoice_of(svc, bin_, f"{year}-01")
    # 100000 (100000), 100000 (200000), 100000 would be 300000 > 250000: over budget,
    # 30000 (230000) still fits: billed
    assert [
        (li["line_no"], li["enrollment_id"], li["amount"], li["status"]) for li in january["items"]
    ] == [
        (1, first, "100000.00", "billed"),
        (2, second, "100000.00", "billed"),
        (3, third, "100000.00", "over_budget"),
        (4, small, "30000.00", "billed"),
    ]
    assert (january["total"], january["over_budget"]) == ("230000.00", "100000.00")

    # the akimat grows the budget by 100,000.00: the line over budget is released next month
    r = await svc.client.post(
        f"/v1/contracts/{contract}/budget-amendments",
        headers=_official(ADMIN, "akimat-econ-5"),
        json={"budget": "330000.00", "act_number": "№ 12-п", "act_date": f"{year}-02-01"},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert [{k: v for k, v in a.items() if k != "amended_at"} for a in body["amendments"]] == [
        {
            "previous_budget": "250000.00",
            "budget": "330000.00",
            "act_number": "№ 12-п",
            "act_date": f"{year}-02-01",
            "amended_by": "dev-admin/akimat-econ-5",
        }
    ]
    assert body["budget"] == "330000.00"
    await attend(svc, bin_, f"{year}-02", {small: [3, 4, 5]})
    await run(svc, f"{year}-02", region=region)

    february = await invoice_of(svc, bin_, f"{year}-02")
    # January's 100000 first (230000 + 100000 = 330000: fits), then February's lines:
    # 0, 0, 0 and 30000 (360000 > 330000: over budget)
    assert [
        (li["kind"], li["month"], li["enrollment_id"], li["amount"], li["status"])
        for li in february["items"]
    ] == [
        ("release", f"{year}-01", third, "100000.00", "billed"),
        ("regular", f"{year}-02", first, "0.00", "billed"),
        ("regular", f"{year}-02", second, "0.00", "billed"),
        ("regular", f"{year}-02", third, "0.00", "billed"),
        ("regular", f"{year}-02", small, "30000.00", "over_budget"),
    ]
    assert (february["total"], february["over_budget"]) == ("100000.00", "30000.00")

    r = await svc.client.get("/v1/budgets", headers=ADMIN, params={"year": year})
    assert [c for c in r.json()["contracts"] if c["contract_number"] == contract] == [
        {
            "contract_number": contract,
            "provider_bin": bin_,
            "provider_name": f"Центр {bin_}",
            "region": region,
            "year": year,
            "budget": "330000.00",
            "invoiced": "330000.00",
            "over_budget": "30000.00",
            "remaining": "0.00",
            "held": "0.00",
            "paid": "0.00",
        }
    ]
    # without a further amendment nothing is released again
    await run(svc, f"{year}-03", region=region)
    march = await invoice_of(svc, bin_, f"{year}-03")
    assert [li["kind"] for li in march["items"]] == ["regular"] * 4
    assert (march["total"], march["over_budget"]) == ("0.00", "0.00")


async def test_a_budget_amendment_needs_a_past_act_a_contract_and_billing_write(
    svc: RunningService,
) -> None:
    region, year = "310000000", 2025
    _, _, contract = await licensed_provider(svc, region=region, year=year, budget="1000.00")
    url = f"/v1/contracts/{contract}/budget-amendments"
    act = {"act_number": "1", "act_date": "2099-01-01", "budget": "2000.00"}
    r = await svc.client.post(url, headers=ADMIN, json=act)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "act_date"
    r = await svc.client.post(
        "/v1/contracts/NOPE/budget-amendments",
        headers=ADMIN,
        json={**act, "act_date": f"{year}-02-01"},
    )
    assert r.status_code == 404
    r = await svc.client.post(url, headers=EAST, json={**act, "act_date": f"{year}-02-01"})
    assert r.status_code == 403


async def test_a_tariff_change_is_a_new_version_and_issued_lines_keep_theirs(
    svc: RunningService,
) -> None:
    region, year = "330000000", 2025
    bin_, lic, _ = await licensed_provider(svc, region=region, year=year)
    body = {
        "region": region,
        "form": "stationary",
        "category": "*",
        "effective_from": f"{year}-01-01",
        "rate": "3000.00",
        "unit": "day",
        "act_reference": "akimat decree 1",
    }
    r = await svc.client.put("/v1/tariffs", headers=_official(ADMIN, "econ-1"), json=body)
    assert (r.status_code, r.json()["version"], r.json()["created_by"]) == (
        201,
        1,
        "dev-admin/econ-1",
    )
    first_id = r.json()["id"]
    r = await svc.client.put("/v1/tariffs", headers=ADMIN, json=body)  # the same again
    assert (r.status_code, r.json()["id"], r.json()["version"]) == (200, first_id, 1)
    e = await enroll(svc, bin_, lic, date(year, 1, 1), region=region)
    await attend(svc, bin_, f"{year}-01", {e: [2, 3]})
    await run(svc, f"{year}-01", region=region)

    # the akimat raises the rate from January: version 2, the January line keeps version 1
    changed = {**body, "rate": "3500.00", "act_reference": "akimat decree 2"}
    r = await svc.client.put("/v1/tariffs", headers=_official(ADMIN, "econ-2"), json=changed)
    assert (r.status_code, r.json()["version"], r.json()["rate"]) == (200, 2, "3500.00")
    assert r.json()["id"] != first_id
    january = await invoice_of(svc, bin_, f"{year}-01")
    [line] = january["items"]
    assert (line["amount"], line["attended_days"]) == ("6000.00", 2)
    assert [
        (t["tariff_id"], t["rate"], t["version"], t["act_reference"]) for t in line["tariffs"]
    ] == [(first_id, "3000.00", 1, "akimat decree 1")]
    r = await svc.client.get("/v1/tariffs", headers=ADMIN, params={"region": region})
    [current] = r.json()["items"]
    assert (current["version"], current["rate"], current["created_by"]) == (
        2,
        "3500.00",
        "dev-admin/econ-2",
    )
    assert [
        (v["id"], v["version"], v["rate"], v["act_reference"], v["created_by"])
        for v in current["history"]
    ] == [(first_id, 1, "3000.00", "akimat decree 1", "dev-admin/econ-1")]

    # February: 1 date at 3500.00, and January adjusted by 2 × 500.00 under version 2
    await attend(svc, bin_, f"{year}-02", {e: [4]})
    await run(svc, f"{year}-02", region=region)
    february = await invoice_of(svc, bin_, f"{year}-02")
    assert [
        (li["kind"], li["month"], li["amount"], [t["version"] for t in li["tariffs"]])
        for li in february["items"]
    ] == [("adjustment", f"{year}-01", "1000.00", [2]), ("regular", f"{year}-02", "3500.00", [2])]

    # the tariff ends from 10 March: dates from then are not billed (and are reported)
    ended = {**changed, "ended_from": f"{year}-03-10", "act_reference": "akimat decree 3"}
    r = await svc.client.put("/v1/tariffs", headers=ADMIN, json=ended)
    assert (r.status_code, r.json()["version"], r.json()["ended_from"]) == (
        200,
        3,
        f"{year}-03-10",
    )
    r = await svc.client.put(
        "/v1/tariffs", headers=ADMIN, json={**ended, "ended_from": f"{year}-01-01"}
    )
    assert (r.status_code, r.json()["errors"][0]["field"]) == (422, "ended_from")
    await attend(svc, bin_, f"{year}-03", {e: [9, 10, 11]})
    march = await run(svc, f"{year}-03", region=region)
    assert march["unbilled_dates"] == 22  # eligible 10..31 without a tariff
    march_invoice = await invoice_of(svc, bin_, f"{year}-03")
    assert [(li["kind"], li["amount"]) for li in march_invoice["items"]] == [("regular", "3500.00")]


async def test_months_are_billed_in_order_per_region(svc: RunningService) -> None:
    region, year = "350000000", 2025
    await licensed_provider(svc, region=region, year=year)
    await run(svc, f"{year}-02", region=region)  # the region's first month of the year
    for period, message in (
        (f"{year}-04", f"region {region} has not been billed for {year}-03"),
        (f"{year}-01", f"region {region} was billed for {year}-02"),
    ):
        r = await svc.client.post(
            "/v1/runs", headers=ADMIN, json={"period": period, "region": region}
        )
        assert (r.status_code, r.json()["type"]) == (409, "/problems/months-out-of-order")
        assert r.json()["errors"] == [
            {"field": "period", "message": f"{message}: months are billed in order"}
        ]
    assert (await run(svc, f"{year}-03", region=region))["period"] == f"{year}-03"


async def test_attendance_repeats_withdrawals_and_one_date_named_twice(svc: RunningService) -> None:
    region, year = "390000000", 2025
    bin_, lic, contract = await licensed_provider(svc, region=region, year=year)
    await tariff(
        svc,
        region=region,
        form="stationary",
        rate="2000.00",
        unit="day",
        effective_from=date(year, 1, 1),
    )
    iin = "791028302728"
    e = await enroll(svc, bin_, lic, date(year, 1, 1), region=region, iin=iin)
    r = await svc.client.post(
        "/v1/attendance",
        headers=ADMIN,
        json={
            "provider_bin": bin_,
            "month": f"{year}-01",
            "enrollments": [
                {"enrollment_id": e, "dates": [f"{year}-01-02", f"{year}-01-03"]},
                {"iin": iin, "dates": [f"{year}-01-03", f"{year}-01-04"]},
            ],
        },
    )
    # the 3rd named by id and by IIN is one date: counted once
    assert r.json() == {
        "accepted": 3,
        "already_recorded": [],
        "rejected": [
            {
                "field": "enrollments.1.dates.0",
                "reason": "duplicate of enrollments.0.dates.1",
                "value": f"{year}-01-03",
            }
        ],
    }
    # sent again: already recorded, not refused
    r = await svc.client.post(
        "/v1/attendance",
        headers=ADMIN,
        json={
            "provider_bin": bin_,
            "month": f"{year}-01",
            "enrollments": [{"iin": iin, "dates": [f"{year}-01-04", f"{year}-01-05"]}],
        },
    )
    assert r.json() == {
        "accepted": 1,
        "already_recorded": [{"field": "enrollments.0.dates.0", "value": f"{year}-01-04"}],
        "rejected": [],
    }
    r = await svc.client.post(
        "/v1/attendance/import",
        headers={**ADMIN, "Content-Type": "text/csv"},
        content=f"iin,provider_bin,date\n{iin},{bin_},{year}-01-05\n{iin},{bin_},{year}-01-06\n".encode(),
    )
    assert r.json() == {
        "accepted": 1,
        "already_recorded_count": 1,
        "already_recorded": [2],
        "rejected_count": 0,
        "rejected": [],
    }

    # withdrawn before the run: 2, 3, 4, 6 billed = 4 × 2000.00
    r = await svc.client.delete(f"/v1/attendance/{e}/{year}-01-05", headers=ADMIN)
    assert r.status_code == 204
    r = await svc.client.delete(f"/v1/attendance/{e}/{year}-01-05", headers=ADMIN)
    assert r.status_code == 404
    r = await svc.client.delete(f"/v1/attendance/{e}/{year}-01-06", headers=PROVIDER)
    assert r.status_code == 403
    assert r.json()["errors"][0]["field"] == "enrollment_id"
    await run(svc, f"{year}-01", region=region)
    january = await invoice_of(svc, bin_, f"{year}-01")
    assert (january["total"], january["items"][0]["attended_days"]) == ("8000.00", 4)
    # invoiced: a withdrawal is refused, the correction is an adjustment
    r = await svc.client.delete(f"/v1/attendance/{e}/{year}-01-06", headers=ADMIN)
    assert r.status_code == 409
    message = (
        f"{year}-01-06 is invoiced ({contract}/{year}-01): withdrawing it needs an adjustment,"
        " not a withdrawal"
    )
    assert r.json()["errors"] == [{"field": "day", "message": message}]
    assert (r.json()["type"], r.json()["invoice_number"]) == (
        "/problems/attendance-invoiced",
        f"{contract}/{year}-01",
    )
    days = await svc.pool.fetch(
        "SELECT day FROM attendance WHERE enrollment_id = $1 ORDER BY day", e
    )
    assert [d["day"].day for d in days] == [2, 3, 4, 6]


async def test_billing_shows_what_it_knows_of_a_license_and_an_enrollment(
    svc: RunningService,
) -> None:
    region, year = "430000000", 2025
    bin_, lic, _ = await licensed_provider(svc, region=region, year=year)
    timed = suspended(bin_, lic, date(year, 3, 10), seq=2, region=region)
    await feed(svc, LicenseSuspendedV1(**{**timed.model_dump(), "until": date(year, 3, 20)}))
    e = await enroll(svc, bin_, lic, date(year, 2, 1), region=region)

    r = await svc.client.get(f"/v1/licenses/{lic}", headers=READER)
    assert r.status_code == 200, r.text
    body = r.json()
    assert {k: body[k] for k in ("license_number", "bin", "region", "status", "seq", "active")} == {
        "license_number": lic,
        "bin": bin_,
        "region": region,
        "status": "suspended",
        "seq": 2,
        "active": [
            {"from": f"{year}-01-01", "until": f"{year}-03-10"},
            {"from": f"{year}-03-20", "until": None},
        ],
    }
    assert [
        (t["seq"], t["status"], t["effective_date"], t["until"]) for t in body["transitions"]
    ] == [(1, "active", f"{year}-01-01", None), (2, "suspended", f"{year}-03-10", f"{year}-03-20")]
    r = await svc.client.get(f"/v1/enrollments/{e}", headers=READER)
    assert r.status_code == 200, r.text
    assert {k: v for k, v in r.json().items() if k != "updated_at"} == {
        "enrollment_id": e,
        "provider_bin": bin_,
        "license_number": lic,
        "site_id": "s1",
        "region": region,
        "form": "stationary",
        "category": "elderly",
        "start_date": f"{year}-02-01",
        "end_date": None,
        "status": "active",
        "seq": 0,
    }
    # another region's key does not see them; unknown ones are 404
    assert (await svc.client.get(f"/v1/enrollments/{e}", headers=EAST)).status_code == 404
    assert (await svc.client.get(f"/v1/licenses/{lic}", headers=EAST)).status_code == 404
    assert (await svc.client.get("/v1/licenses/NOPE", headers=READER)).status_code == 404
    assert (await svc.client.get(f"/v1/licenses/{lic}", headers=PROVIDER)).status_code == 403


async def test_the_run_applies_the_budget_rule_as_its_python_reference(
    svc: RunningService,
) -> None:
    region, year = "470000000", 2025
    await tariff(
        svc,
        region=region,
        form="stationary",
        rate="1000.00",
        unit="day",
        effective_from=date(year, 1, 1),
    )
    rng = random.Random(13)
    cases = []
    for _ in range(4):
        budget = Decimal(rng.randrange(5, 60) * 1000)
        bin_, lic, _ = await licensed_provider(svc, region=region, year=year, budget=f"{budget}")
        days = [rng.randrange(0, 15) for _ in range(8)]
        enrollments = [
            await enroll(svc, bin_, lic, date(year, 1, 1 + n), region=region) for n in range(8)
        ]
        await attend(
            svc,
            bin_,
            f"{year}-01",
            {e: list(range(10, 10 + d)) for e, d in zip(enrollments, days, strict=True) if d},
        )
        cases.append((bin_, budget, enrollments, days))
    await run(svc, f"{year}-01", region=region)
    for bin_, budget, enrollments, days in cases:
        invoice = await invoice_of(svc, bin_, f"{year}-01")
        expected = domain.budget_statuses(
            budget=budget, spent=Decimal(0), amounts=[Decimal(d * 1000) for d in days]
        )
        assert [(li["enrollment_id"], li["status"]) for li in invoice["items"]] == list(
            zip(enrollments, expected, strict=True)
        )
