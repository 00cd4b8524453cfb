"""Assembles the portal: settings, its read model's database, the broker, pages and assets."""

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from ssu_common import ServiceRuntime

from ssu_portal import api, handlers
from ssu_portal.domain import PortalError
from ssu_portal.settings import Settings
from ssu_portal.upstream import Upstream

HERE = Path(__file__).parent


def build(settings: Settings | None = None) -> ServiceRuntime:
    """The service's runtime; tests build it with their own settings."""
    settings = settings or Settings()
    handlers.use_secret(settings.secret)
    return ServiceRuntime(
        settings=settings,
        migrations=HERE / "migrations",
        handlers=handlers.HANDLERS,
        routers=[api.router],
        title="ssu portal",
    )


def create_app(runtime: ServiceRuntime) -> FastAPI:
    """The runtime's app with the pages' own assets and the client of the other services."""
    settings = runtime.settings
    assert isinstance(settings, Settings)
    app = runtime.create_app()
    app.state.upstream = Upstream(
        licensing_url=settings.licensing_url,
        registry_url=settings.registry_url,
        timeout=settings.upstream_timeout_seconds,
    )
    app.add_exception_handler(PortalError, api.on_portal_error)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    return app


def main() -> None:
    runtime = build()
    runtime.serve(create_app(runtime))
