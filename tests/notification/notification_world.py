"""The notification test world: sinks, the service, and events as other services send them."""

import importlib.util
import itertools
import random
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from harness import ROOT, publish_raw, reset_service, running_service, settings_for
from ssu_contracts import (
    Addressee,
    Contact,
    Envelope,
    Event,
    Site,
    Subtype,
    make_bin,
    make_event,
    make_iin,
)
from ssu_notification.main import build
from ssu_notification.settings import Settings

_spec = importlib.util.spec_from_file_location("ssu_dev_sinks", ROOT / "deploy" / "sinks.py")
assert _spec is not None and _spec.loader is not None
sinks_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sinks_module)
start_sinks = sinks_module.start_sinks

EAST = "630000000"
ASTANA = "710000000"


def test_settings(sinks: Any, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "smtp_url": sinks.smtp_url,
        "sms_url": sinks.sms_url,
        "worker_poll_seconds": 0.05,
        "retry_base_seconds": 0.05,
        "retry_max_seconds": 1.0,
        "max_attempts": 4,
        "send_timeout_seconds": 5.0,
        "sms_per_second": 0.0,
        "allow_loopback_webhooks": True,
    }
    values.update(overrides)
    settings = settings_for(Settings, "notification", **values)
    assert isinstance(settings, Settings)
    return settings


@asynccontextmanager
async def notification_world(**overrides: Any) -> AsyncIterator[tuple[Any, Any]]:
    """Fresh database, sinks and a running notification service: yields (service, sinks)."""
    await reset_service("notification")
    sinks = await start_sinks()
    try:
        async with running_service(build(test_settings(sinks, **overrides))) as svc:
            yield svc, sinks
    finally:
        await sinks.stop()


async def publish(
    data: Event,
    *,
    source: str = "/ssu/licensing",
    subject: str | None = None,
    envelope: Envelope | None = None,
) -> Envelope:
    """Publish an event as its owning service would."""
    env = envelope or make_event(data, source=source, subject=subject)
    await publish_raw(env.to_bytes(), routing_key=env.type, message_id=env.id)
    return env


def contact(
    language: str = "ru",
    *,
    email: str | None = "office@umit.kz",
    phone: str | None = "+77011234567",
) -> Contact:
    return Contact(email=email, phone=phone, language=language)


SUBTYPES = [
    Subtype(form="stationary", category="elderly"),
    Subtype(form="home", category="adult_disability"),
]
SITES = [
    Site(site_id="s1", address="г. Усть-Каменогорск, ул. Абая, 10", kato="631010000", places=40),
    Site(site_id="s2", address="г. Риддер, ул. Ленина, 5", kato="634830000", places=None),
]


def license_fields(
    bin_: str,
    *,
    language: str = "ru",
    status: str = "active",
    seq: int = 1,
    effective: date = date(2026, 1, 5),
    **contact_kw: Any,
) -> dict[str, Any]:
    return {
        "license_number": f"L-{bin_[-6:]}",
        "bin": bin_,
        "provider_name": "ТОО «Умит»",
        "legal_form": "private",
        "region": EAST,
        "contact": contact(language, **contact_kw),
        "subtypes": SUBTYPES,
        "sites": SITES,
        "status": status,
        "seq": seq,
        "effective_date": effective,
    }


def addressee(
    name: str = "Айгерим Сейтова",
    *,
    language: str = "kk",
    phone: str | None = "+77051112233",
    email: str | None = None,
    is_guardian: bool = False,
) -> Addressee:
    return Addressee(
        name=name, phone=phone, email=email, language=language, is_guardian=is_guardian
    )


_serials = itertools.count(random.randrange(1000, 50_000))


def new_bin() -> str:
    return make_bin(date(2010, 3, 1), next(_serials))


def new_iin(birth: date = date(1950, 4, 12), sex: str = "female") -> str:
    return make_iin(birth, sex, next(_serials) % 9000)


def uid() -> str:
    return str(uuid.uuid4())


NOW = datetime(2026, 1, 5, 4, 30, tzinfo=UTC)
MONEY = Decimal("1234567.89")
