"""The treasury's round trip: bank details, tranches, corrections of rejected payments, the
reconciliation report (issue 13)."""

import csv
import io
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest_asyncio
from billing_world import (
    APPROVER,
    TREASURY,
    attend,
    bank_details,
    enroll,
    invoice_of,
    licensed_provider,
    run,
    tariff,
)
from harness import ADMIN, RunningService, reset_service, running_service, settings_for
from ssu_billing.main import build
from ssu_billing.settings import Settings

EAST = {"Authorization": "Bearer ssu-dev-east-kz"}
OFFICIAL = {**TREASURY, "X-SSU-Official": "treasurer-0042"}
CSV = {"Content-Type": "text/csv"}
RESULT = "invoice_number,amount_paid,status,date\n"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def svc() -> AsyncIterator[RunningService]:
    await reset_service("billing")
    async with running_service(build(settings_for(Settings, "billing"))) as running:  # type: ignore[arg-type]
        yield running


async def approved_month(
    svc: RunningService, region: str, period: str, days: dict[str, int], rate: str
) -> dict[str, Any]:
    """A billed and approved month of a region: per provider name, its bin, contract, invoice."""
    year, month = (int(x) for x in period.split("-"))
    first = date(year, 1, 1)
    await tariff(svc, region=region, form="stationary", rate=rate, unit="day", effective_from=first)
    world: dict[str, Any] = {}
    for name, count in days.items():
        bin_, lic, contract = await licensed_provider(svc, region=region, year=year)
        e = await enroll(svc, bin_, lic, date(year, month, 1), region=region)
        await attend(svc, bin_, period, {e: list(range(1, count + 1))})
        world[name] = {
            "bin": bin_,
            "contract": contract,
            "invoice": f"{contract}/{period}",
            "enrollment": e,
        }
    started = await run(svc, period, region=region)
    r = await svc.client.post(f"/v1/runs/{started['id']}/approve", headers=APPROVER)
    assert r.status_code == 200, r.text
    for item in world.values():
        item["id"] = (await invoice_of(svc, item["bin"], period))["id"]
    return world


async def reconcile(svc: RunningService, region: str, period: str, rows: str) -> Any:
    return await svc.client.post(
        f"/v1/payment-registers/{region}/{period}/reconciliation",
        headers={**TREASURY, **CSV},
        content=(RESULT + rows).encode(),
    )


async def register(svc: RunningService, region: str, period: str) -> list[dict[str, str]]:
    """The register's payment lines, its control total line checked against them."""
    r = await svc.client.get(f"/v1/payment-registers/{region}/{period}.csv", headers=TREASURY)
    assert r.status_code == 200, r.text
    *lines, control = csv.DictReader(io.StringIO(r.text))
    assert [control[k] for k in ("invoice_number", "contract_number", "amount")] == [
        "control_total",
        str(len(lines)),
        f"{sum(Decimal(line['amount']) for line in lines):.2f}",
    ]
    return lines


async def test_bank_details_are_checked_and_can_be_changed(svc: RunningService) -> None:
    region, year = "150000000", 2025
    bin_, _, contract = await licensed_provider(svc, region=region, year=year)
    body = {
        "number": f"C-bank-{bin_}",
        "provider_bin": bin_,
        "region": region,
        "year": year + 1,
        "budget": "1000.00",
    }
    good = {"iik": "kz86 125k zt50 0410 0100", "bik": "hsbkkzkx", "kbk": "123107", "knp": "859"}
    refused = [
        ({"iik": "KZ87125KZT5004100100"}, "bank_details.iik", "Invalid checksum digits"),
        ({"iik": "DE89370400440532013000"}, "bank_details.iik", "an IIK begins with KZ"),
        ({"iik": "KZ86125KZT500410010"}, "bank_details.iik", "has 20 characters, not 19"),
        ({"bik": "HSBKRUKX"}, "bank_details.bik", "the 5th and 6th characters of a BIK are KZ"),
        ({"bik": "HSBKKZKXX"}, "bank_details.bik", "a BIK has 8 or 11 letters and digits"),
        ({"kbk": "12310"}, "bank_details.kbk", "a KBK (budget classification code) has 6"),
        ({"knp": "85a"}, "bank_details.knp", "a KNP (payment purpose code) has 3 digits"),
    ]
    for change, field, message in refused:
        r = await svc.client.post(
            "/v1/contracts", headers=ADMIN, json={**body, "bank_details": {**good, **change}}
        )
        assert r.status_code == 422, (change, r.text)
        [error] = r.json()["errors"]
        assert error["field"] == field and message in error["message"], error
    r = await svc.client.post("/v1/contracts", headers=ADMIN, json=body)
    assert (r.status_code, r.json()["errors"][0]["field"]) == (422, "bank_details")

    r = await svc.client.post("/v1/contracts", headers=ADMIN, json={**body, "bank_details": good})
    assert r.status_code == 201, r.text
    assert (r.json()["bank_details"], r.json()["bank_details_by"]) == (
        {"iik": "KZ86125KZT5004100100", "bik": "HSBKKZKX", "kbk": "123107", "knp": "859"},
        "dev-admin",
    )

    new = bank_details(bin_, bank="722")
    r = await svc.client.put(
        f"/v1/contracts/{contract}/bank-details",
        headers={**ADMIN, "X-SSU-Official": "clerk-7"},
        json={"bank_details": new, "reason": "the provider moved its account"},
    )
    assert r.status_code == 200, r.text
    assert (r.json()["bank_details"], r.json()["bank_details_by"]) == (new, "dev-admin/clerk-7")
    assert [(v["iik"], v["reason"], v["changed_by"]) for v in r.json()["bank_details_history"]] == [
        (bank_details(bin_)["iik"], "contract made", "dev-admin"),
        (new["iik"], "the provider moved its account", "dev-admin/clerk-7"),
    ]
    r = await svc.client.put(
        f"/v1/contracts/{contract}/bank-details",
        headers=ADMIN,
        json={"bank_details": {**new, "iik": "KZ00722000000000000"}, "reason": "typo"},
    )
    assert (r.status_code, r.json()["errors"][0]["field"]) == (422, "bank_details.iik")
    r = await svc.client.put(
        "/v1/contracts/C-none/bank-details",
        headers=ADMIN,
        json={"bank_details": new, "reason": "x"},
    )
    assert r.status_code == 404
    r = await svc.client.put(
        f"/v1/contracts/{contract}/bank-details",
        headers=EAST,
        json={"bank_details": new, "reason": "x"},
    )
    assert r.status_code in (403, 404)  # another region's contract (or no write scope)


async def test_an_invoice_is_paid_in_tranches_until_its_total(svc: RunningService) -> None:
    region, period = "190000000", "2025-01"
    world = await approved_month(svc, region, period, {"a": 10}, rate="1234.56")
    inv = world["a"]["invoice"]
    [line] = await register(svc, region, period)
    assert (line["amount"], line["invoice_total"], line["paid_before"]) == (
        "12345.60",
        "12345.60",
        "0.00",
    )

    r = await reconcile(svc, region, period, f"{inv},5000.00,paid,2025-02-05\n")
    assert r.status_code == 200, r.text
    assert r.json()["applied"] == [
        {
            "invoice_number": inv,
            "status": "partially_paid",
            "amount_paid": "5000.00",
            "paid_to_date": "5000.00",
            "invoice_total": "12345.60",
        }
    ]
    assert [d["reason"] for d in r.json()["discrepancies"]] == [
        "paid 5000.00 of 12345.60: short by 7345.60"
    ]
    [line] = await register(svc, region, period)
    assert (line["amount"], line["paid_before"]) == ("7345.60", "5000.00")

    # a tranche that would pay a tiyn too much: the whole file is refused, nothing applied
    r = await reconcile(
        svc,
        region,
        period,
        f"{inv},7345.61,paid,2025-03-05\nX-404/{period},1.00,paid,2025-03-05\n",
    )
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == "/problems/treasury-file-overpays"
    assert r.json()["errors"] == [
        {
            "field": "line 2: amount_paid",
            "message": "a tranche of 7345.61 after 5000.00 paid comes to 12345.61, more than"
            " the invoice total 12345.60: over by 0.01",
        }
    ]
    invoice = await invoice_of(svc, world["a"]["bin"], period)
    assert (invoice["status"], invoice["paid_amount"]) == ("partially_paid", "5000.00")

    # two more tranches in a later file: paid to the tiyn
    r = await reconcile(
        svc, region, period, f"{inv},3000.00,paid,2025-03-05\n{inv},4345.60,paid,2025-03-06\n"
    )
    assert r.status_code == 200, r.text
    assert [(a["status"], a["paid_to_date"]) for a in r.json()["applied"]] == [
        ("partially_paid", "8000.00"),
        ("paid", "12345.60"),
    ]
    invoice = await invoice_of(svc, world["a"]["bin"], period)
    assert (invoice["status"], invoice["paid_amount"]) == ("paid", "12345.60")
    assert await register(svc, region, period) == []
    tranches = await svc.pool.fetch(
        "SELECT amount_paid::text FROM reconciliations WHERE invoice_number = $1 ORDER BY id", inv
    )
    assert [t["amount_paid"] for t in tranches] == ["5000.00", "3000.00", "4345.60"]
    r = await reconcile(svc, region, period, f"{inv},1.00,paid,2025-03-07\n")
    assert [e["reason"] for e in r.json()["errors"]] == ["duplicate: already reconciled as paid"]


async def test_a_rejected_payment_is_corrected_and_placed_again(svc: RunningService) -> None:
    region, period = "230000000", "2025-01"
    world = await approved_month(svc, region, period, {"a": 2}, rate="2500.00")
    inv, invoice_id, bin_ = world["a"]["invoice"], world["a"]["id"], world["a"]["bin"]

    r = await reconcile(svc, region, period, f"{inv},0,rejected,2025-02-03\n")
    assert r.status_code == 200, r.text
    assert [(a["status"], a["paid_to_date"]) for a in r.json()["applied"]] == [
        ("payment_rejected", "0.00")
    ]
    assert await register(svc, region, period) == []  # held out until corrected

    url = f"/v1/invoices/{invoice_id}/correction"
    new = bank_details(bin_, bank="914")
    r = await svc.client.post(url, headers=APPROVER, json={"bank_details": new, "reason": "x"})
    assert r.status_code == 403  # billing:treasury
    r = await svc.client.post(
        url, headers=OFFICIAL, json={"bank_details": {**new, "knp": "8590"}, "reason": "x"}
    )
    assert (r.status_code, r.json()["errors"][0]["field"]) == (422, "bank_details.knp")
    r = await svc.client.post(
        url, headers=OFFICIAL, json={"bank_details": new, "reason": "account closed"}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["status"], body["placement"], body["due"], body["register"]) == (
        "approved",
        2,
        "5000.00",
        f"/v1/payment-registers/{region}/{period}.csv",
    )
    assert (body["contract"]["bank_details"], body["contract"]["bank_details_by"]) == (
        new,
        "dev-treasury/treasurer-0042",
    )
    history = await svc.pool.fetch(
        "SELECT iik, invoice_number, changed_by, reason FROM contract_bank_details"
        " WHERE contract_number = $1 ORDER BY id",
        world["a"]["contract"],
    )
    assert [tuple(h.values()) for h in history] == [
        (bank_details(bin_)["iik"], None, "dev-admin", "contract made"),
        (
            new["iik"],
            inv,
            "dev-treasury/treasurer-0042",
            f"correction of the rejected payment of {inv}: account closed",
        ),
    ]
    [line] = await register(svc, region, period)
    assert [line[k] for k in ("amount", "iik", "bik", "kbk", "knp", "placement")] == [
        "5000.00",
        *new.values(),
        "2",
    ]

    # the second placement is rejected on the same date as the first: a new rejection, not a
    # repeat of the old one; corrected again, then paid
    r = await reconcile(svc, region, period, f"{inv},0,rejected,2025-02-03\n")
    assert [a["status"] for a in r.json()["applied"]] == ["payment_rejected"]
    r = await svc.client.post(
        url, headers=OFFICIAL, json={"bank_details": new, "reason": "bank's error"}
    )
    assert (r.status_code, r.json()["placement"]) == (200, 3)
    r = await reconcile(svc, region, period, f"{inv},5000.00,paid,2025-02-20\n")
    assert [(a["status"], a["paid_to_date"]) for a in r.json()["applied"]] == [("paid", "5000.00")]
    r = await svc.client.post(url, headers=OFFICIAL, json={"bank_details": new, "reason": "x"})
    assert r.status_code == 409
    assert r.json()["detail"] == "only a rejected payment is corrected; this invoice is paid"
    assert (r.json()["type"], r.json()["status_of_invoice"]) == (
        "/problems/payment-not-rejected",
        "paid",
    )
    r = await svc.client.post(
        "/v1/invoices/00000000-0000-4000-8000-000000000000/correction",
        headers=OFFICIAL,
        json={"bank_details": new, "reason": "x"},
    )
    assert r.status_code == 404


async def test_the_reconciliation_report_by_region_and_month(svc: RunningService) -> None:
    region = "710000000"
    world = await approved_month(svc, region, "2025-01", {"a": 3, "b": 5, "c": 2}, rate="3000.00")
    a, b, c = (world[n]["invoice"] for n in "abc")
    r = await reconcile(
        svc,
        region,
        "2025-01",
        f"{a},9000.00,paid,2025-02-10\n{b},14000.00,paid,2025-02-10\n{c},0,rejected,2025-02-10\n",
    )
    assert r.status_code == 200, r.text
    # February: a attends one day and is billed, not yet approved; b and c get lines of zero
    await attend(svc, world["a"]["bin"], "2025-02", {world["a"]["enrollment"]: [3]})
    february = await run(svc, "2025-02", region=region)
    assert (february["invoices"], february["total"]) == (3, "3000.00")
    r = await svc.client.get(
        "/v1/reconciliation-report", headers=TREASURY, params={"year": 2025, "region": region}
    )
    assert r.status_code == 200, r.text
    january = {
        "region": region,
        "period": "2025-01",
        "invoices": 3,
        "paid_invoices": 1,
        "issued": "30000.00",
        "approved": "30000.00",
        "paid": "23000.00",
        "outstanding": "7000.00",
        "held": "0.00",
        "refused": "0.00",
        "rejected": "6000.00",
    }
    assert r.json() == {
        "year": 2025,
        "periods": [
            january,
            {
                "region": region,
                "period": "2025-02",
                "invoices": 3,
                "paid_invoices": 0,
                "issued": "3000.00",
                "approved": "0.00",
                "paid": "0.00",
                "outstanding": "3000.00",
                "held": "0.00",
                "refused": "0.00",
                "rejected": "0.00",
            },
        ],
        "regions": [
            {
                "region": region,
                "invoices": 6,
                "paid_invoices": 1,
                "issued": "33000.00",
                "approved": "30000.00",
                "paid": "23000.00",
                "outstanding": "10000.00",
                "held": "0.00",
                "refused": "0.00",
                "rejected": "6000.00",
            }
        ],
    }
    r = await svc.client.get("/v1/reconciliation-report", headers=TREASURY, params={"year": 2025})
    assert january in r.json()["periods"]
    r = await svc.client.get("/v1/reconciliation-report", headers=TREASURY, params={"year": 2024})
    assert r.json() == {"year": 2024, "periods": [], "regions": []}
    r = await svc.client.get("/v1/reconciliation-report", headers=EAST, params={"year": 2025})
    assert r.status_code == 403  # billing:treasury
