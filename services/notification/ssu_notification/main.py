"""Assembles the notification service: settings, database, broker, handlers, HTTP, worker."""

import functools
from pathlib import Path

from ssu_common import DomainGauge, ServiceRuntime

from ssu_notification import api, channels, handlers, service, store
from ssu_notification.departments import load_departments
from ssu_notification.settings import Settings
from ssu_notification.worker import delivery_worker


def build(
    settings: Settings | None = None, *, resolver: channels.Resolver = channels.system_resolver
) -> ServiceRuntime:
    """The service's runtime; tests build it with their own settings (and DNS resolver)."""
    settings = settings or Settings()
    service.use_departments(load_departments(settings.departments_file))
    cipher = settings.cipher()
    store.use_cipher(cipher)
    return ServiceRuntime(
        settings=settings,
        migrations=Path(__file__).parent / "migrations",
        handlers=handlers.HANDLERS,
        routers=[api.router],
        background=[functools.partial(delivery_worker, resolver=resolver)],
        cipher=cipher,
        sealed=store.SEALED,
        gauges=[
            DomainGauge(
                name="ssu_deliveries",
                help="Deliveries by channel and status",
                labels=("channel", "status"),
                collect=store.deliveries_by_channel_and_status,
            )
        ],
        title="ssu notification",
    )


def main() -> None:
    runtime = build()
    runtime.serve(runtime.create_app())
