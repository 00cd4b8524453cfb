"""Assembles the registry service: settings, database, broker, handlers, HTTP API."""

from pathlib import Path

from ssu_common import ServiceRuntime

from ssu_registry import api, handlers
from ssu_registry.settings import Settings


def build(settings: Settings | None = None) -> ServiceRuntime:
    """The service's runtime; tests build it with their own settings."""
    return ServiceRuntime(
        settings=settings or Settings(),
        migrations=Path(__file__).parent / "migrations",
        handlers=handlers.HANDLERS,
        routers=[api.router],
        title="ssu registry",
    )


def main() -> None:
    runtime = build()
    runtime.serve(runtime.create_app())
