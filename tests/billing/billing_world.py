"""Builds billing's world from events, as licensing and registry would publish them."""

import itertools
import uuid
from datetime import date
from typing import Any

from harness import ADMIN, RUN_UNFINISHED, RunningService, eventually, publish_raw, run_to_end
from schwifty import IBAN
from ssu_contracts import (
    Addressee,
    Contact,
    EnrollmentDisruptedV1,
    EnrollmentEndedV1,
    EnrollmentResumedV1,
    EnrollmentStartedV1,
    Event,
    LicenseIssuedV1,
    LicenseReinstatedV1,
    LicenseRevokedV1,
    LicenseSuspendedV1,
    Site,
    Subtype,
    make_bin,
    make_event,
    make_iin,
)

_serials = itertools.count(int(uuid.uuid4().int % 50_000))
_iin_serials = itertools.count(int(uuid.uuid4().int % 5_000))


def new_bin() -> str:
    return make_bin(date(2020, 3, 1), next(_serials))


def new_iin() -> str:
    return make_iin(date(1950, 5, 17), "female", next(_iin_serials))


async def feed(svc: RunningService, event: Event, *, subject: str | None = None) -> str:
    """Publish an event to ssu.events and wait until billing has applied it."""
    envelope = make_event(event, source=f"/ssu/{event.event_type.split('.')[0]}", subject=subject)
    await publish_raw(envelope.to_bytes(), routing_key=envelope.type, message_id=envelope.id)

    async def applied() -> bool:
        return bool(
            await svc.pool.fetchval("SELECT 1 FROM inbox WHERE event_id = $1::uuid", envelope.id)
        )

    await eventually(applied)
    return envelope.id


def license_fields(
    bin_: str, number: str, *, seq: int, status: str, effective: date, region: str = "630000000"
) -> dict[str, Any]:
    return {
        "license_number": number,
        "bin": bin_,
        "provider_name": f"Центр {bin_}",
        "legal_form": "ngo",
        "region": region,
        "contact": Contact(email="centre@example.kz", phone="+77001234567", language="ru"),
        "subtypes": [
            Subtype(form="stationary", category="elderly"),
            Subtype(form="home", category="adult_disability"),
        ],
        "sites": [Site(site_id="s1", address="Усть-Каменогорск", kato="631010000", places=50)],
        "status": status,
        "seq": seq,
        "effective_date": effective,
    }


def issued(bin_: str, number: str, effective: date, seq: int = 1, **kw: Any) -> LicenseIssuedV1:
    return LicenseIssuedV1(
        **license_fields(bin_, number, seq=seq, status="active", effective=effective, **kw)
    )


def suspended(bin_: str, number: str, effective: date, seq: int, **kw: Any) -> LicenseSuspendedV1:
    return LicenseSuspendedV1(
        **license_fields(bin_, number, seq=seq, status="suspended", effective=effective, **kw),
        reason="inspection",
    )


def reinstated(bin_: str, number: str, effective: date, seq: int, **kw: Any) -> LicenseReinstatedV1:
    return LicenseReinstatedV1(
        **license_fields(bin_, number, seq=seq, status="active", effective=effective, **kw)
    )


def revoked(bin_: str, number: str, effective: date, seq: int, **kw: Any) -> LicenseRevokedV1:
    return LicenseRevokedV1(
        **license_fields(bin_, number, seq=seq, status="revoked", effective=effective, **kw),
        reason="court decision",
    )


ADDRESSEE = Addressee(name="Гульнара", phone="+77011112233", language="kk")


def started(
    enrollment_id: str,
    iin: str,
    bin_: str,
    number: str,
    start: date,
    *,
    form: str = "stationary",
    category: str = "elderly",
    region: str = "630000000",
) -> EnrollmentStartedV1:
    return EnrollmentStartedV1(
        enrollment_id=enrollment_id,
        iin=iin,
        provider_bin=bin_,
        license_number=number,
        site_id="s1",
        region=region,
        form=form,
        category=category,
        start_date=start,
        # each recipient their own name: billing finds one person under two IINs by name and
        # birth date (all test IINs share a birth date)
        addressee=ADDRESSEE.model_copy(update={"name": f"Гульнара {iin[7:]}"}),
    )


def ended(e: EnrollmentStartedV1, end: date) -> EnrollmentEndedV1:
    return EnrollmentEndedV1(
        enrollment_id=e.enrollment_id,
        iin=e.iin,
        provider_bin=e.provider_bin,
        region=e.region,
        form=e.form,
        category=e.category,
        end_date=end,
        reason="moved",
    )


def disrupted(e: EnrollmentStartedV1, on: date) -> EnrollmentDisruptedV1:
    return EnrollmentDisruptedV1(
        enrollment_id=e.enrollment_id,
        iin=e.iin,
        provider_bin=e.provider_bin,
        license_number=e.license_number,
        region=e.region,
        form=e.form,
        category=e.category,
        disrupted_on=on,
        reason="license suspended",
        addressee=ADDRESSEE,
    )


def resumed(e: EnrollmentStartedV1, on: date) -> EnrollmentResumedV1:
    return EnrollmentResumedV1(
        enrollment_id=e.enrollment_id,
        iin=e.iin,
        provider_bin=e.provider_bin,
        region=e.region,
        form=e.form,
        category=e.category,
        resumed_on=on,
        addressee=ADDRESSEE,
    )


# HTTP side of the world

APPROVER = {"Authorization": "Bearer ssu-dev-approver"}
TREASURY = {"Authorization": "Bearer ssu-dev-treasury"}


def bank_details(bin_: str, bank: str = "601") -> dict[str, str]:
    """Valid bank details of a provider: an IIK (IBAN form) made from its BIN."""
    iik = str(IBAN.generate("KZ", bank_code=bank, account_code=f"0{bin_}").compact)
    return {"iik": iik, "bik": "HSBKKZKX", "kbk": "123107", "knp": "859"}


async def licensed_provider(
    svc: RunningService,
    *,
    region: str,
    year: int,
    budget: str = "100000000.00",
    issued_on: date | None = None,
) -> tuple[str, str, str]:
    """A provider with an active license and a contract: (bin, license number, contract)."""
    bin_ = new_bin()
    number = f"LIC-{uuid.uuid4().hex[:10]}"
    await feed(svc, issued(bin_, number, issued_on or date(year, 1, 1), region=region))
    contract = f"C-{year}-{bin_}"
    r = await svc.client.post(
        "/v1/contracts",
        headers=ADMIN,
        json={
            "number": contract,
            "provider_bin": bin_,
            "region": region,
            "year": year,
            "budget": budget,
            "bank_details": bank_details(bin_),
        },
    )
    assert r.status_code == 201, r.text
    return bin_, number, contract


async def enroll(
    svc: RunningService,
    bin_: str,
    number: str,
    start: date,
    *,
    form: str = "stationary",
    category: str = "elderly",
    region: str,
    end: date | None = None,
    iin: str | None = None,
) -> str:
    e = started(
        str(uuid.uuid4()),
        iin or new_iin(),
        bin_,
        number,
        start,
        form=form,
        category=category,
        region=region,
    )
    await feed(svc, e)
    if end is not None:
        await feed(svc, ended(e, end))
    return e.enrollment_id


async def tariff(
    svc: RunningService,
    *,
    region: str,
    form: str,
    rate: str,
    unit: str,
    effective_from: date,
    category: str = "*",
) -> None:
    r = await svc.client.put(
        "/v1/tariffs",
        headers=ADMIN,
        json={
            "region": region,
            "form": form,
            "category": category,
            "effective_from": effective_from.isoformat(),
            "rate": rate,
            "unit": unit,
            "act_reference": f"akimat decree {region}-{effective_from}",
        },
    )
    assert r.status_code in (200, 201), r.text


async def attend(
    svc: RunningService, bin_: str, month: str, dates: dict[str, list[int]]
) -> dict[str, Any]:
    year, mon = (int(x) for x in month.split("-"))
    r = await svc.client.post(
        "/v1/attendance",
        headers=ADMIN,
        json={
            "provider_bin": bin_,
            "month": month,
            "enrollments": [
                {"enrollment_id": eid, "dates": [date(year, mon, d).isoformat() for d in days]}
                for eid, days in dates.items()
            ],
        },
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def run(
    svc: RunningService,
    period: str,
    expect: int = 202,
    *,
    region: str | None = None,
    status: str = "completed",
) -> dict[str, Any]:
    """A billing run of one region's month (tests each bill their own region), or national:
    posted, then polled until it is done (`harness.run_to_end`)."""
    body = {"period": period} if region is None else {"period": period, "region": region}
    result = await run_to_end(
        svc.client.request, "/v1/runs", json=body, headers=ADMIN, expect=expect
    )
    if expect in (200, 202):
        assert result["status"] == status, result
    return result


async def until_finished(svc: RunningService, run_id: str) -> dict[str, Any]:
    """The run once the worker has finished it (a run accepted without POST /v1/runs)."""

    async def finished() -> dict[str, Any] | None:
        r = await svc.client.get(f"/v1/runs/{run_id}", headers=ADMIN)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return None if body["status"] in RUN_UNFINISHED else body

    result: dict[str, Any] = await eventually(finished, timeout=60)
    return result


async def invoice_of(svc: RunningService, bin_: str, period: str) -> dict[str, Any]:
    r = await svc.client.get(
        "/v1/invoices", headers=ADMIN, params={"provider": bin_, "period": period}
    )
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert len(items) == 1, items
    r = await svc.client.get(f"/v1/invoices/{items[0]['id']}", headers=ADMIN)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def amounts(invoice: dict[str, Any]) -> dict[str, str]:
    return {line["enrollment_id"]: line["amount"] for line in invoice["items"]}
