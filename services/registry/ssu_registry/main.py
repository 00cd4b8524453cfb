"""Assembles the registry service: settings, database, broker, handlers, HTTP API, the waiting
list's timer."""

import asyncio
from pathlib import Path

from ssu_common import DomainGauge, ServiceRuntime, get_logger

from ssu_registry import api, domain, handlers, service, store
from ssu_registry.settings import Settings

log = get_logger(__name__)


async def waiting_timer(runtime: ServiceRuntime) -> None:
    """Lapses unanswered offers and puts long-disrupted recipients on the line; state lives in
    the database and each pass holds the regions' places, so replicas may all run it."""
    settings = runtime.settings
    assert isinstance(settings, Settings)
    while True:
        try:
            async with runtime.pool.acquire() as conn:
                await service.keep_waiting_lines(conn=conn, today=domain.today())
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("waiting.timer_failed", error=repr(exc))
        await asyncio.sleep(settings.waiting_check_seconds)


def build(settings: Settings | None = None) -> ServiceRuntime:
    """The service's runtime; tests build it with their own settings."""
    settings = settings or Settings()
    cipher = settings.cipher()
    store.use_cipher(cipher)
    service.use_waiting_rules(
        service.WaitingRules(
            weights=domain.priority_weights(settings.waiting_priority),
            hold_days=settings.offer_hold_days,
            disruption_wait_days=settings.disruption_wait_days,
        )
    )
    return ServiceRuntime(
        settings=settings,
        cipher=cipher,
        sealed=store.SEALED,
        migrations=Path(__file__).parent / "migrations",
        handlers=handlers.HANDLERS,
        routers=[api.router],
        background=[waiting_timer],
        gauges=[
            DomainGauge(
                "ssu_enrollments",
                "Enrollments not ended (active, disrupted) by region",
                ("status", "region"),
                store.enrollments_by_status,
            ),
            DomainGauge(
                "ssu_waiting_recipients",
                "Recipients waiting for a place, by region, form and category",
                ("region", "form", "category"),
                store.waiting_by_line,
            ),
            DomainGauge(
                "ssu_waiting_median_days",
                "Median days waited so far by those waiting, by region, form and category",
                ("region", "form", "category"),
                store.waiting_median_days,
            ),
        ],
        title="ssu registry",
    )


def main() -> None:
    runtime = build()
    runtime.serve(runtime.create_app())
