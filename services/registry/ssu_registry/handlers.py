"""Events in: licensing's license snapshots build the provider read model."""

from ssu_common import Connection, EventHandler
from ssu_contracts import Envelope, LicenseEvent

from ssu_registry import service


async def on_license_changed(conn: Connection, envelope: Envelope, data: object) -> None:
    assert isinstance(data, LicenseEvent)
    await service.apply_license_event(conn=conn, event=data)


HANDLERS: dict[str, EventHandler] = {
    "licensing.license.issued.v1": on_license_changed,
    "licensing.license.amended.v1": on_license_changed,
    "licensing.license.suspended.v1": on_license_changed,
    "licensing.license.reinstated.v1": on_license_changed,
    "licensing.license.revoked.v1": on_license_changed,
}
