"""Assembles the billing service: settings, database, broker, handlers, HTTP API, the run
worker."""

import asyncio
import contextlib
from pathlib import Path

from ssu_common import DomainGauge, ServiceRuntime, get_logger

from ssu_billing import api, handlers, service, store
from ssu_billing.settings import Settings

log = get_logger(__name__)


async def run_worker(runtime: ServiceRuntime) -> None:
    """Bills the accepted runs (POST /v1/runs answers 202 at once); every replica runs it, the
    runs' lock lets one bill at a time, and the first pass after a start takes up a run that a
    stopped process left running. An accepted run's NOTIFY wakes it; else it looks now and
    then (a listener lost with its connection only makes it slower to start)."""
    settings = runtime.settings
    assert isinstance(settings, Settings)
    wake = asyncio.Event()

    def accepted(*_: object) -> None:
        wake.set()

    while True:
        try:
            async with runtime.pool.acquire() as listener:
                await listener.add_listener(store.RUNS_CHANNEL, accepted)
                try:
                    while True:
                        wake.clear()
                        await service.bill_waiting_runs(pool=runtime.pool)
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(wake.wait(), settings.run_poll_seconds)
                finally:
                    with contextlib.suppress(Exception):
                        await listener.remove_listener(store.RUNS_CHANNEL, accepted)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("billing.run_worker_failed", error=repr(exc)[:500])
            await asyncio.sleep(settings.run_poll_seconds)


def build(settings: Settings | None = None) -> ServiceRuntime:
    """The service's runtime; tests build it with their own settings."""
    settings = settings or Settings()
    cipher = settings.cipher()
    store.use_cipher(cipher)
    return ServiceRuntime(
        settings=settings,
        cipher=cipher,
        sealed=store.SEALED,
        migrations=Path(__file__).parent / "migrations",
        handlers=handlers.HANDLERS,
        routers=[api.router],
        background=[run_worker],
        gauges=[
            DomainGauge(
                "ssu_billing_run_duration_seconds",
                "Wall time of the latest billing runs",
                ("period", "region"),
                store.run_durations,
            ),
            DomainGauge(
                "ssu_billing_invoices", "Invoices by status", ("status",), store.invoices_by_status
            ),
            DomainGauge(
                "ssu_billing_runs",
                "Billing runs by status (queued, running, completed, failed)",
                ("status",),
                store.runs_by_status,
            ),
        ],
        title="ssu billing",
    )


def main() -> None:
    runtime = build()
    runtime.serve(runtime.create_app())
