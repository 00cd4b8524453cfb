"""Demo data for `make run`, loaded through the services' public APIs."""

from ssu_cli.settings import CliSettings


async def seed(settings: CliSettings) -> None:
    """Filled in once the services' APIs are complete."""
    del settings
