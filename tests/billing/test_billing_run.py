"""The billing run: exact amounts, each computed by hand beside the test (DESIGN §3).

Each test bills its own region (regional runs of 2025), so tests share one running service.
"""

from collections.abc import AsyncIterator
from datetime import date

import pytest_asyncio
from billing_world import (
    amounts,
    attend,
    enroll,
    feed,
    invoice_of,
    issued,
    licensed_provider,
    new_bin,
    new_iin,
    reinstated,
    revoked,
    run,
    suspended,
    tariff,
)
from harness import (
    ADMIN,
    EventProbe,
    RunningService,
    event_probe,
    reset_service,
    running_service,
    settings_for,
)
from ssu_billing.main import build
from ssu_billing.settings import Settings


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def svc() -> AsyncIterator[RunningService]:
    await reset_service("billing")
    async with running_service(build(settings_for(Settings, "billing"))) as running:  # type: ignore[arg-type]
        yield running


@pytest_asyncio.fixture(loop_scope="session")
async def probe() -> AsyncIterator[EventProbe]:
    async with event_probe("billing.#") as p:
        yield p


async def test_day_and_month_units_with_enrollments_starting_and_ending_mid_month(
    svc: RunningService, probe: EventProbe
) -> None:
    region, year = "100000000", 2025
    bin_, lic, contract = await licensed_provider(svc, region=region, year=year)
    await tariff(
        svc,
        region=region,
        form="stationary",
        rate="5000.00",
        unit="day",
        effective_from=date(year, 1, 1),
    )
    await tariff(
        svc,
        region=region,
        form="home",
        rate="93000.00",
        unit="month",
        effective_from=date(year, 1, 1),
    )
    by_day = await enroll(svc, bin_, lic, date(year, 1, 1), region=region)
    by_month = await enroll(
        svc, bin_, lic, date(year, 1, 1), form="home", category="adult_disability", region=region
    )
    starts_11th = await enroll(
        svc, bin_, lic, date(year, 1, 11), form="home", category="adult_disability", region=region
    )
    ends_10th = await enroll(
        svc,
        bin_,
        lic,
        date(year, 1, 1),
        form="home",
        category="adult_disability",
        region=region,
        end=date(year, 1, 10),
    )
    await attend(
        svc,
        bin_,
        f"{year}-01",
        {
            by_day: [2, 3, 4, 5, 8, 9, 10, 11, 12, 15],
            by_month: [7, 8, 9],
            starts_11th: [20],
            ends_10th: [3],
        },
    )

    result = await run(svc, f"{year}-01", region=region)

    invoice = await invoice_of(svc, bin_, f"{year}-01")
    # 10 attended days × 5000.00 = 50000.00
    # January has 31 days: 93000.00 × 31/31 = 93000.00; from the 11th 21 days: 93000 × 21/31
    # = 63000.00; through the 10th, 10 days: 93000 × 10/31 = 30000.00
    assert amounts(invoice) == {
        by_day: "50000.00",
        by_month: "93000.00",
        starts_11th: "63000.00",
        ends_10th: "30000.00",
    }
    assert invoice["total"] == "236000.00"
    assert invoice["number"] == f"{contract}/{year}-01"
    assert invoice["status"] == "issued"
    line = next(li for li in invoice["items"] if li["enrollment_id"] == starts_11th)
    assert line["eligible_days"] == 21
    assert line["tariffs"][0]["dates"][0] == f"{year}-01-11"
    assert len(line["tariffs"][0]["dates"]) == 21
    assert (line["tariffs"][0]["rate"], line["tariffs"][0]["unit"]) == ("93000.00", "month")
    day_line = next(li for li in invoice["items"] if li["enrollment_id"] == by_day)
    assert day_line["tariffs"][0]["dates"] == [
        f"{year}-01-{d:02d}" for d in (2, 3, 4, 5, 8, 9, 10, 11, 12, 15)
    ]
    assert day_line["tariffs"][0]["act_reference"] == f"akimat decree {region}-{year}-01-01"

    issued_event = await probe.wait_for(
        lambda e: e["type"] == "billing.invoice.issued.v1" and e["data"]["provider_bin"] == bin_
    )
    data = issued_event["data"]
    assert data["invoice_number"] == f"{contract}/{year}-01"
    assert data["contract_number"] == contract
    assert data["region"] == region
    assert data["period"] == f"{year}-01"
    assert (data["total"], data["over_budget"], data["lines"]) == ("236000.00", "0.00", 4)
    assert data["invoice_id"] == invoice["id"]
    completed = await probe.wait_for(
        lambda e: e["type"] == "billing.run.completed.v1" and e["data"]["run_id"] == result["id"]
    )
    assert completed["data"]["period"] == f"{year}-01"
    assert completed["data"]["invoices"] == result["invoices"]
    assert completed["data"]["total"] == result["total"]


async def test_suspension_reinstatement_and_revocation_inside_the_month(
    svc: RunningService,
) -> None:
    region, year = "110000000", 2025
    a_bin, a_lic, _ = await licensed_provider(svc, region=region, year=year)
    b_bin, b_lic, _ = await licensed_provider(svc, region=region, year=year)
    await tariff(
        svc,
        region=region,
        form="stationary",
        rate="4000.00",
        unit="day",
        effective_from=date(year, 1, 1),
    )
    await tariff(
        svc,
        region=region,
        form="home",
        rate="62000.00",
        unit="month",
        effective_from=date(year, 1, 1),
    )
    a_day = await enroll(svc, a_bin, a_lic, date(year, 2, 1), region=region)
    a_month = await enroll(svc, a_bin, a_lic, date(year, 2, 1), form="home", region=region)
    b_day = await enroll(svc, b_bin, b_lic, date(year, 2, 1), region=region)
    b_month = await enroll(svc, b_bin, b_lic, date(year, 2, 1), form="home", region=region)
    await feed(svc, suspended(a_bin, a_lic, date(year, 3, 10), seq=2, region=region))
    await feed(svc, reinstated(a_bin, a_lic, date(year, 3, 20), seq=3, region=region))
    await feed(svc, revoked(b_bin, b_lic, date(year, 3, 16), seq=2, region=region))
    await attend(svc, a_bin, f"{year}-03", {a_day: [5, 9, 10, 15, 19, 20, 25], a_month: [25]})
    await attend(svc, b_bin, f"{year}-03", {b_day: [14, 15, 16, 17], b_month: [2]})

    await run(svc, f"{year}-03", region=region)

    a = await invoice_of(svc, a_bin, f"{year}-03")
    # A suspended 10th..19th, active again on the 20th: attended 5, 9, 20, 25 are paid, the
    # 10th, 15th and 19th are not: 4 × 4000.00 = 16000.00. Eligible days 1..9 and 20..31 = 21:
    # 62000.00 × 21/31 = 42000.00.
    assert amounts(a) == {a_day: "16000.00", a_month: "42000.00"}
    assert a["total"] == "58000.00"
    b = await invoice_of(svc, b_bin, f"{year}-03")
    # B revoked from the 16th: 14th and 15th paid = 8000.00; 15 eligible days:
    # 62000.00 × 15/31 = 30000.00.
    assert amounts(b) == {b_day: "8000.00", b_month: "30000.00"}
    assert b["total"] == "38000.00"


async def test_tariff_change_category_tariff_and_rounding(svc: RunningService) -> None:
    region, year = "150000000", 2025
    bin_, lic, _ = await licensed_provider(svc, region=region, year=year)
    jan1 = date(year, 1, 1)
    await tariff(
        svc, region=region, form="stationary", rate="3000.00", unit="day", effective_from=jan1
    )
    await tariff(
        svc,
        region=region,
        form="stationary",
        rate="3600.00",
        unit="day",
        effective_from=date(year, 4, 16),
    )
    await tariff(
        svc,
        region=region,
        form="stationary",
        category="elderly",
        rate="5000.00",
        unit="day",
        effective_from=jan1,
    )
    await tariff(
        svc, region=region, form="home", rate="90000.00", unit="month", effective_from=jan1
    )
    await tariff(
        svc,
        region=region,
        form="home",
        rate="120000.00",
        unit="month",
        effective_from=date(year, 4, 21),
    )
    await tariff(
        svc,
        region=region,
        form="semi_stationary",
        rate="100000.00",
        unit="month",
        effective_from=jan1,
    )
    await tariff(
        svc,
        region=region,
        form="temporary_stay",
        rate="30000.15",
        unit="month",
        effective_from=jan1,
    )
    star = await enroll(
        svc, bin_, lic, date(year, 4, 1), category="adult_disability", region=region
    )
    elderly = await enroll(svc, bin_, lic, date(year, 4, 1), category="elderly", region=region)
    home = await enroll(
        svc, bin_, lic, date(year, 4, 1), form="home", category="other", region=region
    )
    third = await enroll(
        svc, bin_, lic, date(year, 4, 21), form="semi_stationary", category="other", region=region
    )
    two_thirds = await enroll(
        svc, bin_, lic, date(year, 4, 11), form="semi_stationary", category="other", region=region
    )
    half = await enroll(
        svc, bin_, lic, date(year, 4, 30), form="temporary_stay", category="other", region=region
    )
    unattended = await enroll(
        svc, bin_, lic, date(year, 4, 1), form="home", category="homeless", region=region
    )
    await attend(
        svc,
        bin_,
        f"{year}-04",
        {
            star: [10, 15, 16, 20],
            elderly: [10, 16],
            home: [2],
            third: [22],
            two_thirds: [12],
            half: [30],
        },
    )

    await run(svc, f"{year}-04", region=region)

    invoice = await invoice_of(svc, bin_, f"{year}-04")
    assert amounts(invoice) == {
        # `*` tariff changes on the 16th: 3000 + 3000 + 3600 + 3600
        star: "13200.00",
        # the elderly tariff (5000.00) wins over `*` even after `*` changed
        elderly: "10000.00",
        # April has 30 days: (20 × 90000 + 10 × 120000) / 30
        home: "100000.00",
        # 10/30 of 100000.00 = 33333.333… → 33333.33
        third: "33333.33",
        # 20/30 of 100000.00 = 66666.666… → 66666.67
        two_thirds: "66666.67",
        # 30000.15 / 30 = 1000.005 → half-up 1000.01
        half: "1000.01",
        # month unit, no attendance: zero, and the line is kept
        unattended: "0.00",
    }
    # the total is the exact sum of the rounded lines
    assert invoice["total"] == "224200.01"
    home_line = next(li for li in invoice["items"] if li["enrollment_id"] == home)
    assert [(t["rate"], len(t["dates"])) for t in home_line["tariffs"]] == [
        ("90000.00", 20),
        ("120000.00", 10),
    ]


async def test_late_attendance_and_license_change_are_adjusted_next_month(
    svc: RunningService,
) -> None:
    region, year = "190000000", 2025
    bin_, lic, _ = await licensed_provider(svc, region=region, year=year)
    await tariff(
        svc,
        region=region,
        form="stationary",
        rate="2500.00",
        unit="day",
        effective_from=date(year, 1, 1),
    )
    e = await enroll(svc, bin_, lic, date(year, 1, 1), region=region)
    await attend(svc, bin_, f"{year}-01", {e: [5, 6, 7]})
    await run(svc, f"{year}-01", region=region)
    january = await invoice_of(svc, bin_, f"{year}-01")
    assert (january["total"], amounts(january)) == ("7500.00", {e: "7500.00"})

    # late: two more January dates, and a suspension from 21 January to 1 February
    await attend(svc, bin_, f"{year}-01", {e: [20, 21]})
    await feed(svc, suspended(bin_, lic, date(year, 1, 21), seq=2, region=region))
    await feed(svc, reinstated(bin_, lic, date(year, 2, 1), seq=3, region=region))
    await attend(svc, bin_, f"{year}-02", {e: [2, 3]})
    await run(svc, f"{year}-02", region=region)

    february = await invoice_of(svc, bin_, f"{year}-02")
    lines = [
        (li["kind"], li["month"], li["amount"], li["computed_amount"], li["previously_billed"])
        for li in february["items"]
    ]
    # January now: 5, 6, 7, 20 (the 21st was suspended) = 4 × 2500 = 10000.00, billed 7500.00
    assert lines == [
        ("adjustment", f"{year}-01", "2500.00", "10000.00", "7500.00"),
        ("regular", f"{year}-02", "5000.00", "5000.00", "0.00"),
    ]
    assert february["total"] == "7500.00"
    # the issued January invoice did not change
    assert (await invoice_of(svc, bin_, f"{year}-01"))["total"] == "7500.00"

    # a repeated run changes nothing and says so
    again = await run(svc, f"{year}-02", expect=200, region=region)
    assert again["repeated"] is True
    assert (await invoice_of(svc, bin_, f"{year}-02"))["total"] == "7500.00"


async def test_budget_crossed_mid_invoice(svc: RunningService, probe: EventProbe) -> None:
    region, year = "230000000", 2025
    bin_, lic, contract = await licensed_provider(svc, region=region, year=year, budget="45000.00")
    await tariff(
        svc,
        region=region,
        form="stationary",
        rate="10000.00",
        unit="day",
        effective_from=date(year, 1, 1),
    )
    # Lines are in the budget order: enrollment start date (here the same), then enrollment id.
    enrolled = []
    for i in (new_iin() for _ in range(4)):
        enrolled.append((await enroll(svc, bin_, lic, date(year, 1, 1), region=region, iin=i), i))
    e, iins = zip(*sorted(enrolled), strict=True)
    await attend(svc, bin_, f"{year}-01", {e[0]: [3, 4], e[1]: [3, 4], e[2]: [5]})

    await run(svc, f"{year}-01", region=region)

    invoice = await invoice_of(svc, bin_, f"{year}-01")
    # lines in that order: 20000 (20000), 20000 (40000), 10000 (50000 > 45000: over budget),
    # 0 (nothing to pay, so not over budget)
    assert [(li["iin"], li["amount"], li["status"]) for li in invoice["items"]] == [
        (iins[0], "20000.00", "billed"),
        (iins[1], "20000.00", "billed"),
        (iins[2], "10000.00", "over_budget"),
        (iins[3], "0.00", "billed"),
    ]
    assert (invoice["total"], invoice["over_budget"]) == ("40000.00", "10000.00")
    exhausted = await probe.wait_for(
        lambda ev: (
            ev["type"] == "billing.budget.exhausted.v1"
            and ev["data"]["contract_number"] == contract
        )
    )
    assert exhausted["data"] == {
        "contract_number": contract,
        "provider_bin": bin_,
        "provider_name": f"Центр {bin_}",
        "region": region,
        "year": year,
        "budget": "45000.00",
        "invoiced": "40000.00",
        "over_budget": "10000.00",
        "period": f"{year}-01",
    }

    # next month: 40000 already invoiced, 10000 more would pass 45000
    await attend(svc, bin_, f"{year}-02", {e[3]: [2]})
    await run(svc, f"{year}-02", region=region)
    february = await invoice_of(svc, bin_, f"{year}-02")
    assert (february["total"], february["over_budget"]) == ("0.00", "10000.00")
    await probe.wait_for(
        lambda ev: ev["type"] == "billing.run.completed.v1" and ev["data"]["period"] == f"{year}-02"
    )
    await probe.pull(wait=0.5)
    assert [
        ev
        for ev in probe.of_type("billing.budget.exhausted.v1")
        if ev["data"]["contract_number"] == contract
    ] == [exhausted]

    r = await svc.client.get("/v1/budgets", headers=ADMIN, params={"year": year})
    assert r.status_code == 200
    # other tests bill the same year in other regions
    assert [c for c in r.json()["contracts"] if c["region"] == region] == [
        {
            "contract_number": contract,
            "provider_bin": bin_,
            "provider_name": f"Центр {bin_}",
            "region": region,
            "year": year,
            "budget": "45000.00",
            "invoiced": "40000.00",
            "over_budget": "20000.00",
            "remaining": "5000.00",
            "held": "0.00",
            "paid": "0.00",
        }
    ]
    assert [t for t in r.json()["regions"] if t["region"] == region] == [
        {
            "region": region,
            "budget": "45000.00",
            "invoiced": "40000.00",
            "over_budget": "20000.00",
            "remaining": "5000.00",
            "held": "0.00",
            "paid": "0.00",
        }
    ]


async def test_dates_without_a_tariff_are_not_billed_and_reported(svc: RunningService) -> None:
    region, year = "270000000", 2025
    bin_, lic, _ = await licensed_provider(svc, region=region, year=year)
    # the first tariff of the year takes effect on the 11th
    await tariff(
        svc,
        region=region,
        form="stationary",
        rate="1500.00",
        unit="day",
        effective_from=date(year, 1, 11),
    )
    e = await enroll(svc, bin_, lic, date(year, 1, 1), region=region)
    # a provider of the region without a contract for the year
    other_bin = new_bin()
    await feed(svc, issued(other_bin, f"LIC-{other_bin}", date(year, 1, 1), region=region))
    await enroll(svc, other_bin, f"LIC-{other_bin}", date(year, 1, 1), region=region)
    await attend(svc, bin_, f"{year}-01", {e: [5, 10, 11, 12]})

    result = await run(svc, f"{year}-01", region=region)

    invoice = await invoice_of(svc, bin_, f"{year}-01")
    # the 5th and 10th have no tariff; the 11th and 12th: 2 × 1500.00
    assert amounts(invoice) == {e: "3000.00"}
    line = invoice["items"][0]
    assert line["untariffed_dates"] == [f"{year}-01-{d:02d}" for d in range(1, 11)]
    # the run counts its own region: the other provider's one enrollment has no contract
    assert (result["unbilled_dates"], result["uncontracted_enrollments"]) == (10, 1)
    r = await svc.client.get(f"/v1/runs/{result['id']}", headers=ADMIN)
    assert {k: r.json()[k] for k in ("period", "invoices", "lines", "total")} == {
        "period": f"{year}-01",
        "invoices": 1,
        "lines": 1,
        "total": "3000.00",
    }
