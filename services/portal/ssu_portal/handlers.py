"""Events in: the read model of licenses, places, outcomes, recipients and invoices."""

from ssu_common import Connection, EventHandler
from ssu_contracts import (
    ApplicationRejectedV1,
    ApplicationSubmittedV1,
    EnrollmentDisruptedV1,
    EnrollmentEndedV1,
    EnrollmentResumedV1,
    EnrollmentStartedV1,
    Envelope,
    InvoiceIssuedV1,
    LicenseEvent,
    RecipientRegisteredV1,
)

from ssu_portal import service

# The key that turns an IIN into the read model's pseudonym; set once by main.py.
_SECRET: list[str] = []


def use_secret(secret: str) -> None:
    _SECRET[:] = [secret]


async def on_license_changed(conn: Connection, envelope: Envelope, data: object) -> None:
    assert isinstance(data, LicenseEvent)
    await service.apply_license_event(conn, envelope=envelope, event=data)


async def on_recipient_registered(conn: Connection, envelope: Envelope, data: object) -> None:
    assert isinstance(data, RecipientRegisteredV1)
    await service.apply_recipient_registered(
        conn, secret=_SECRET[0], event=data, on=envelope.time.date()
    )


async def on_enrollment_started(conn: Connection, envelope: Envelope, data: object) -> None:
    assert isinstance(data, EnrollmentStartedV1)
    await service.apply_enrollment_started(conn, secret=_SECRET[0], event=data)


async def on_enrollment_moved(conn: Connection, envelope: Envelope, data: object) -> None:
    assert isinstance(data, EnrollmentEndedV1 | EnrollmentDisruptedV1 | EnrollmentResumedV1)
    await service.apply_enrollment_moved(conn, secret=_SECRET[0], event=data)


async def on_application_submitted(conn: Connection, envelope: Envelope, data: object) -> None:
    assert isinstance(data, ApplicationSubmittedV1)
    await service.apply_application_submitted(conn, event=data)


async def on_application_rejected(conn: Connection, envelope: Envelope, data: object) -> None:
    assert isinstance(data, ApplicationRejectedV1)
    await service.apply_application_rejected(conn, event=data)


async def on_invoice_issued(conn: Connection, envelope: Envelope, data: object) -> None:
    assert isinstance(data, InvoiceIssuedV1)
    await service.apply_invoice_issued(conn, event=data)


HANDLERS: dict[str, EventHandler] = {
    "licensing.license.issued.v1": on_license_changed,
    "licensing.license.amended.v1": on_license_changed,
    "licensing.license.suspended.v1": on_license_changed,
    "licensing.license.reinstated.v1": on_license_changed,
    "licensing.license.revoked.v1": on_license_changed,
    "licensing.application.submitted.v1": on_application_submitted,
    "licensing.application.rejected.v1": on_application_rejected,
    "registry.recipient.registered.v1": on_recipient_registered,
    "registry.enrollment.started.v1": on_enrollment_started,
    "registry.enrollment.ended.v1": on_enrollment_moved,
    "registry.enrollment.disrupted.v1": on_enrollment_moved,
    "registry.enrollment.resumed.v1": on_enrollment_moved,
    "billing.invoice.issued.v1": on_invoice_issued,
}
