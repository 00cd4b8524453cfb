"""Events in: licensing (license snapshots) and registry (enrollments, deaths)."""

from ssu_common import Connection, EventHandler
from ssu_contracts import (
    EnrollmentDisruptedV1,
    EnrollmentEndedV1,
    EnrollmentResumedV1,
    EnrollmentStartedV1,
    Envelope,
    LicenseEvent,
    RecipientDeregisteredV1,
)

from ssu_billing import service


async def on_license_event(conn: Connection, envelope: Envelope, data: LicenseEvent) -> None:
    await service.apply_license_event(conn=conn, event_type=envelope.type, data=data)


async def on_enrollment_started(
    conn: Connection, envelope: Envelope, data: EnrollmentStartedV1
) -> None:
    await service.start_enrollment(conn=conn, data=data)


async def on_enrollment_ended(
    conn: Connection, envelope: Envelope, data: EnrollmentEndedV1
) -> None:
    await service.end_enrollment(conn=conn, data=data)


async def on_enrollment_disrupted(
    conn: Connection, envelope: Envelope, data: EnrollmentDisruptedV1
) -> None:
    await service.disrupt_enrollment(conn=conn, data=data)


async def on_enrollment_resumed(
    conn: Connection, envelope: Envelope, data: EnrollmentResumedV1
) -> None:
    await service.resume_enrollment(conn=conn, data=data)


async def on_recipient_deregistered(
    conn: Connection, envelope: Envelope, data: RecipientDeregisteredV1
) -> None:
    await service.record_death(conn=conn, data=data)


HANDLERS: dict[str, EventHandler] = {
    "licensing.license.issued.v1": on_license_event,
    "licensing.license.amended.v1": on_license_event,
    "licensing.license.suspended.v1": on_license_event,
    "licensing.license.reinstated.v1": on_license_event,
    "licensing.license.revoked.v1": on_license_event,
    "registry.enrollment.started.v1": on_enrollment_started,
    "registry.enrollment.ended.v1": on_enrollment_ended,
    "registry.enrollment.disrupted.v1": on_enrollment_disrupted,
    "registry.enrollment.resumed.v1": on_enrollment_resumed,
    "registry.recipient.deregistered.v1": on_recipient_deregistered,
}
