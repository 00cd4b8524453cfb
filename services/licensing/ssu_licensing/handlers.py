"""Events licensing reads: enrollments from the registry, counted per provider."""

from ssu_common import Connection, EventHandler
from ssu_contracts import EnrollmentEndedV1, EnrollmentStartedV1, Envelope, Event

from ssu_licensing import service


async def on_enrollment_started(conn: Connection, envelope: Envelope, data: Event) -> None:
    assert isinstance(data, EnrollmentStartedV1)
    await service.enrollment_started(
        conn=conn, enrollment_id=data.enrollment_id, provider_bin=data.provider_bin
    )


async def on_enrollment_ended(conn: Connection, envelope: Envelope, data: Event) -> None:
    assert isinstance(data, EnrollmentEndedV1)
    await service.enrollment_ended(
        conn=conn, enrollment_id=data.enrollment_id, provider_bin=data.provider_bin
    )


HANDLERS: dict[str, EventHandler] = {
    EnrollmentStartedV1.event_type: on_enrollment_started,
    EnrollmentEndedV1.event_type: on_enrollment_ended,
}
