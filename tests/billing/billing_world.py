"""Builds billing's world from events, as licensing and registry would publish them."""

import itertools
import uuid
from datetime import date
from typing import Any

from harness import RunningService, eventually, publish_raw
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
    envelope = make_event(event, source="/ssu/test", subject=subject)
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
        addressee=ADDRESSEE,
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
