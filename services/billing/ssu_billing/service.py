"""Use cases of the billing service: one transaction each, rules, writes, outbox."""

import json

from ssu_common import Connection, get_logger
from ssu_contracts import (
    EnrollmentDisruptedV1,
    EnrollmentEndedV1,
    EnrollmentResumedV1,
    EnrollmentStartedV1,
    LicenseEvent,
)

from ssu_billing import store

log = get_logger(__name__)


class EnrollmentNotYetKnown(Exception):
    """An enrollment event arrived before the start of that enrollment: retried later."""


async def apply_license_event(*, conn: Connection, event_type: str, data: LicenseEvent) -> bool:
    """Keep a license snapshot and its status history; an older seq than held is ignored."""
    newer = await store.upsert_license_if_newer(
        conn,
        license_number=data.license_number,
        bin=data.bin,
        status=data.status.value,
        seq=data.seq,
        subtypes=json.dumps([s.model_dump(mode="json") for s in data.subtypes]),
    )
    if not newer:
        log.info("license.stale_event_ignored", license=data.license_number, seq=data.seq)
        return False
    if event_type in store.STATUS_CHANGES:
        await store.insert_license_transition(
            conn,
            license_number=data.license_number,
            seq=data.seq,
            status=data.status.value,
            effective_date=data.effective_date,
            event_type=event_type,
        )
        await store.refresh_license_active_ranges(conn, data.license_number)
    await store.upsert_provider(
        conn,
        bin=data.bin,
        name=data.provider_name,
        legal_form=data.legal_form.value,
        region=data.region,
        contact=data.contact.model_dump_json(),
        license_number=data.license_number,
        status=data.status.value,
        seq=data.seq,
    )
    return True


async def start_enrollment(*, conn: Connection, data: EnrollmentStartedV1) -> None:
    await store.insert_enrollment(
        conn,
        enrollment_id=data.enrollment_id,
        iin=data.iin,
        provider_bin=data.provider_bin,
        license_number=data.license_number,
        site_id=data.site_id,
        region=data.region,
        form=data.form.value,
        category=data.category.value,
        start_date=data.start_date,
    )


async def end_enrollment(*, conn: Connection, data: EnrollmentEndedV1) -> None:
    if not await store.end_enrollment(
        conn, enrollment_id=data.enrollment_id, end_date=data.end_date
    ):
        raise EnrollmentNotYetKnown(data.enrollment_id)


async def disrupt_enrollment(*, conn: Connection, data: EnrollmentDisruptedV1) -> None:
    if not await store.set_enrollment_status(
        conn, enrollment_id=data.enrollment_id, status="disrupted"
    ):
        raise EnrollmentNotYetKnown(data.enrollment_id)


async def resume_enrollment(*, conn: Connection, data: EnrollmentResumedV1) -> None:
    if not await store.set_enrollment_status(
        conn, enrollment_id=data.enrollment_id, status="active"
    ):
        raise EnrollmentNotYetKnown(data.enrollment_id)
