"""Builds the registry's test world: license events as licensing publishes them, recipients."""

import itertools
import uuid
from datetime import date
from typing import Any

from harness import publish_raw
from ssu_contracts import (
    LicenseAmendedV1,
    LicenseEvent,
    LicenseIssuedV1,
    LicenseReinstatedV1,
    LicenseRevokedV1,
    LicenseSuspendedV1,
    make_bin,
    make_event,
    make_iin,
)

EAST = "630000000"  # East Kazakhstan
ASTANA = "710000000"
EAST_KATO = "631010000"
ASTANA_KATO = "711110000"

_serials = itertools.count(int(uuid.uuid4().int % 50_000))
_iin_serials = itertools.count(int(uuid.uuid4().int % 3_000))

KINDS: dict[str, type[LicenseEvent]] = {
    "issued": LicenseIssuedV1,
    "amended": LicenseAmendedV1,
    "suspended": LicenseSuspendedV1,
    "reinstated": LicenseReinstatedV1,
    "revoked": LicenseRevokedV1,
}
STATUS = {
    "issued": "active",
    "amended": "active",
    "suspended": "suspended",
    "reinstated": "active",
    "revoked": "revoked",
}


def new_bin() -> str:
    return make_bin(date(2015, 3, 1), next(_serials))


def new_iin(birth: date = date(1980, 5, 17), sex: str = "female") -> str:
    return make_iin(birth, sex, next(_iin_serials))


def new_license_number() -> str:
    return f"KZ-SSU-{uuid.uuid4().hex[:10].upper()}"


def license_event(
    kind: str,
    *,
    number: str,
    bin: str,
    seq: int,
    name: str = "Мейірім",
    region: str = EAST,
    legal_form: str = "ngo",
    sites: list[dict[str, Any]] | None = None,
    subtypes: list[tuple[str, str]] | None = None,
    effective_date: date = date(2026, 1, 5),
    **extra: Any,
) -> LicenseEvent:
    model = KINDS[kind]
    fields: dict[str, Any] = {
        "license_number": number,
        "bin": bin,
        "provider_name": name,
        "legal_form": legal_form,
        "region": region,
        "contact": {"email": "info@meirim.kz", "phone": "+77011234567", "language": "kk"},
        "subtypes": [
            {"form": f, "category": c} for f, c in (subtypes or [("stationary", "elderly")])
        ],
        "sites": sites
        if sites is not None
        else [{"site_id": "S1", "address": "Өскемен, Абай 1", "kato": EAST_KATO, "places": 10}],
        "status": STATUS[kind],
        "seq": seq,
        "effective_date": effective_date,
    }
    if kind in ("suspended", "revoked"):
        fields["reason"] = extra.pop("reason", "staffing below the norm")
    fields.update(extra)
    return model.model_validate(fields)


async def publish_license(event: LicenseEvent, *, event_id: str | None = None) -> str:
    """Publish a license event as licensing would; returns the envelope id."""
    envelope = make_event(event, source="/ssu/licensing", subject=event.license_number)
    if event_id is not None:
        envelope = envelope.model_copy(update={"id": event_id})
    await publish_raw(envelope.to_bytes(), routing_key=envelope.type, message_id=envelope.id)
    return envelope.id


def recipient_body(
    iin: str | None = None,
    *,
    birth: date = date(1955, 5, 17),
    sex: str = "female",
    region: str = EAST,
    category: str = "elderly",
    **extra: Any,
) -> dict[str, Any]:
    iin = iin or new_iin(birth, sex)
    body: dict[str, Any] = {
        "iin": iin,
        "full_name": "Айгерим Сейтқали",
        "birth_date": birth.isoformat(),
        "category": category,
        "region": region,
        "language": "kk",
        "phone": "+77051112233",
    }
    body.update(extra)
    return body


async def register(client: Any, headers: dict[str, str], **kwargs: Any) -> dict[str, Any]:
    r = await client.post("/v1/recipients", json=recipient_body(**kwargs), headers=headers)
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


async def provider_with(
    client: Any,
    headers: dict[str, str],
    *,
    seq: int = 1,
    number: str | None = None,
    bin: str | None = None,
    **kwargs: Any,
) -> tuple[str, str]:
    """Publish an issued license and wait until the registry lists it; (number, bin)."""
    from harness import eventually

    number = number or new_license_number()
    bin = bin or new_bin()
    await publish_license(license_event("issued", number=number, bin=bin, seq=seq, **kwargs))

    async def listed() -> bool:
        r = await client.get("/v1/providers", params={"bin": bin}, headers=headers)
        return any(i["license_number"] == number for i in r.json()["items"])

    await eventually(listed, timeout=PATIENCE)
    return number, bin


async def license_applied(
    client: Any, headers: dict[str, str], *, bin: str, number: str, seq: int
) -> None:
    """Wait until the registry holds a license at (at least) a seq."""
    from harness import eventually

    async def applied() -> bool:
        r = await client.get("/v1/providers", params={"bin": bin}, headers=headers)
        return any(i["license_number"] == number and i["seq"] >= seq for i in r.json()["items"])

    await eventually(applied, timeout=PATIENCE)


# Generous timeouts: the suite shares a 2-core machine with other suites running at once.
PATIENCE = 30.0


async def wait_event(probe: Any, predicate: Any) -> dict[str, Any]:
    event: dict[str, Any] = await probe.wait_for(predicate, timeout=PATIENCE)
    return event
