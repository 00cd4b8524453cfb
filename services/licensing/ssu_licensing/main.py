"""Assembles the licensing service: settings, database, broker, handlers, HTTP API, timer."""

import asyncio
from pathlib import Path

from ssu_common import DomainGauge, ServiceRuntime, get_logger

from ssu_licensing import api, handlers, service, store
from ssu_licensing.settings import Settings

log = get_logger(__name__)


class LicensingRuntime(ServiceRuntime):
    """The common runtime, plus the requirement set files stored once the database is ready."""

    settings: Settings

    async def start(self) -> None:
        files = service.read_requirement_set_files(self.settings.requirement_sets_dir)
        await super().start()
        async with self.pool.acquire() as conn:
            await service.load_requirement_sets(conn=conn, files=files)


async def suspension_timer(runtime: ServiceRuntime) -> None:
    """Ends suspensions whose end date has come; state lives in the database, so restarts lose
    nothing and replicas share the work (rows are claimed with SKIP LOCKED)."""
    settings = runtime.settings
    assert isinstance(settings, Settings)
    while True:
        try:
            async with runtime.pool.acquire() as conn:
                await service.end_due_suspensions(conn=conn, today=service.almaty_today())
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("license.suspension_timer_failed", error=repr(exc))
        await asyncio.sleep(settings.suspension_check_seconds)


def build(settings: Settings | None = None) -> ServiceRuntime:
    """The service's runtime; tests build it with their own settings."""
    settings = settings or Settings()
    cipher = settings.cipher()
    store.use_cipher(cipher)
    return LicensingRuntime(
        settings=settings,
        cipher=cipher,
        sealed=store.SEALED,
        migrations=Path(__file__).parent / "migrations",
        handlers=handlers.HANDLERS,
        routers=[api.router],
        background=[suspension_timer],
        gauges=[
            DomainGauge(
                "ssu_licenses",
                "Licenses by status and region",
                ("status", "region"),
                store.licenses_by_status,
            ),
            DomainGauge(
                "ssu_license_applications",
                "License applications by status",
                ("status",),
                store.applications_by_status,
            ),
        ],
        title="ssu licensing",
    )


def main() -> None:
    runtime = build()
    runtime.serve(runtime.create_app())
