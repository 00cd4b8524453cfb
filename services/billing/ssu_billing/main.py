"""Assembles the billing service: settings, database, broker, handlers, HTTP API."""

from pathlib import Path

from ssu_common import DomainGauge, ServiceRuntime

from ssu_billing import api, handlers, store
from ssu_billing.settings import Settings


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
                "Billing runs by status; failed: runs that raised and were rolled back",
                ("status",),
                store.runs_by_status,
            ),
        ],
        title="ssu billing",
    )


def main() -> None:
    runtime = build()
    runtime.serve(runtime.create_app())
