"""A small service built only from libs/common, to test the shared machinery on its own."""

from pathlib import Path
from typing import Any

from ssu_common import Connection, PermanentError, ServiceRuntime, ServiceSettings, emit
from ssu_contracts import Envelope, LicenseRevokedV1, RecipientRegisteredV1

from harness import settings_for

SERVICE = "probe"


async def on_registered(conn: Connection, envelope: Envelope, data: Any) -> None:
    assert isinstance(data, RecipientRegisteredV1)
    if data.full_name == "refuse me":
        raise PermanentError("this recipient is refused by a domain rule")
    await conn.execute(
        "INSERT INTO effects (event_id, note) VALUES ($1, $2)", envelope.id, data.full_name
    )


async def on_revoked(conn: Connection, envelope: Envelope, data: Any) -> None:
    await conn.execute(
        "INSERT INTO effects (event_id, note) VALUES ($1, $2)", envelope.id, "revoked"
    )


HANDLERS = {
    "registry.recipient.registered.v1": on_registered,
    "licensing.license.revoked.v1": on_revoked,
}


def build(**overrides: Any) -> ServiceRuntime:
    settings = settings_for(ServiceSettings, SERVICE, service=SERVICE, **overrides)
    return ServiceRuntime(
        settings=settings, migrations=Path(__file__).parent / "migrations", handlers=HANDLERS
    )


async def write_thing_and_event(conn: Connection, thing_id: str, event: Any) -> Envelope:
    """A state change and its event in one transaction, as service code does it."""
    async with conn.transaction():
        await conn.execute("INSERT INTO things (id, note) VALUES ($1, $2)", thing_id, "x")
        return await emit(conn, event, subject=thing_id)
