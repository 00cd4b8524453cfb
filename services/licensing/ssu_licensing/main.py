"""Assembles the licensing service: settings, database, broker, handlers, HTTP API."""

from pathlib import Path

from ssu_common import ServiceRuntime

from ssu_licensing import api, handlers
from ssu_licensing.settings import Settings


def build(settings: Settings | None = None) -> ServiceRuntime:
    """The service's runtime; tests build it with their own settings."""
    return ServiceRuntime(
        settings=settings or Settings(),
        migrations=Path(__file__).parent / "migrations",
        handlers=handlers.HANDLERS,
        routers=[api.router],
        title="ssu licensing",
    )


def main() -> None:
    runtime = build()
    runtime.serve(runtime.create_app())
