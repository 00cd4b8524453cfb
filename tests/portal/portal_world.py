"""The portal's test world: events as the other services publish them, and a running portal."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import httpx
from harness import eventually, publish_raw, reset_service, settings_for
from ssu_contracts import Event, make_event
from ssu_portal.main import build, create_app
from ssu_portal.settings import Settings

PATIENCE = 30.0


async def publish(event: Event, *, source: str, subject: str) -> None:
    envelope = make_event(event, source=source, subject=subject)
    await publish_raw(envelope.to_bytes(), routing_key=envelope.type, message_id=envelope.id)


@asynccontextmanager
async def portal(**overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A fresh portal in this process (real database and broker) and a client on its pages."""
    await reset_service("portal")
    settings = settings_for(Settings, "portal", **{"development": True, **overrides})
    assert isinstance(settings, Settings)
    runtime = build(settings)
    app = create_app(runtime)
    await runtime.start()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://test") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client
    finally:
        await runtime.stop()


async def page_until(client: httpx.AsyncClient, url: str, text: str) -> str:
    """The page once it shows `text` (the events behind it are applied asynchronously)."""

    async def shown() -> str | None:
        r = await client.get(url)
        return r.text if text in r.text else None

    result: str = await eventually(shown, timeout=PATIENCE, interval=0.2)
    return result


def invoice(region: str, period: str, total: str, bin_: str, n: int) -> dict[str, Any]:
    return {
        "invoice_id": f"inv-{bin_}-{period}-{n}",
        "invoice_number": f"INV-{n}",
        "contract_number": f"C-{bin_}",
        "provider_bin": bin_,
        "region": region,
        "period": period,
        "total": Decimal(total),
        "lines": 1,
        "issued_at": datetime(2026, 2, 1, tzinfo=UTC),
    }


TODAY = date.today()
