"""Assembles the registry service: settings, database, broker, handlers, HTTP API."""

from pathlib import Path

from ssu_common import DomainGauge, ServiceRuntime

from ssu_registry import api, handlers, store
from ssu_registry.settings import Settings


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
        gauges=[
            DomainGauge(
                "ssu_enrollments",
                "Enrollments not ended (active, disrupted) by region",
                ("status", "region"),
                store.enrollments_by_status,
            ),
        ],
        title="ssu registry",
    )


def main() -> None:
    runtime = build()
    runtime.serve(runtime.create_app())
