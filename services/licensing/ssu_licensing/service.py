"""Licensing use cases: each one transaction with its rules, writes and outbox events."""

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import yaml
from ssu_common import (
    Connection,
    Problem,
    audit,
    emit,
    emit_many,
    field_error,
    get_logger,
)
from ssu_common.audit import Aggregate
from ssu_common.auth import same_person
from ssu_common.errors import DomainError, Texts, general
from ssu_contracts import (
    ApplicationRejectedV1,
    ApplicationStatus,
    ApplicationSubmittedV1,
    Contact,
    Finding,
    LicenseAmendedV1,
    LicenseEvent,
    LicenseIssuedV1,
    LicenseReinstatedV1,
    LicenseStatus,
    ServiceForm,
    Site,
    Subtype,
)

from ssu_licensing import domain, store
from ssu_licensing.domain import FindingDoc, RequirementSet, SiteDoc
from ssu_licensing.store import (
    ApplicationRow,
    DecisionRow,
    InspectionRow,
    LicenseFactsRow,
    LicenseRow,
    LicenseSummaryRow,
    RequirementSetRow,
)

log = get_logger(__name__)

ALMATY = ZoneInfo("Asia/Almaty")
TIMER = "system:suspension-timer"


def almaty_today() -> date:
    """Today's calendar date in Asia/Almaty, the date licensing changes take effect."""
    return datetime.now(ALMATY).date()


def _not_found(what: domain.Missing, key: str) -> DomainError:
    return DomainError(domain.missing(what, key), kind=general(404))


def _visible(region: str, region_scope: str | None) -> bool:
    # A region-restricted key does not learn that another region's record exists.
    return region_scope is None or region == region_scope


# requirement sets


def _set_model(row: RequirementSetRow) -> RequirementSet:
    return RequirementSet.model_validate(
        {
            "version": row.version,
            "title": row.title,
            "non_core_blocking": row.non_core_blocking,
            "requirements": row.requirements,
        }
    )


SetStatus = Literal["draft", "scheduled", "in_force", "superseded"]


@dataclass(frozen=True)
class RequirementSetState:
    """A stored requirement set and where it stands today."""

    row: RequirementSetRow
    in_force: bool
    status: SetStatus


def _set_status(row: RequirementSetRow, in_force: str | None) -> SetStatus:
    if row.version == in_force:
        return "in_force"
    if row.effective_from is None:
        return "draft"
    return "scheduled" if row.effective_from > almaty_today() else "superseded"


def requirement_set_state(row: RequirementSetRow, *, in_force: str | None) -> RequirementSetState:
    """A requirement set with its status: draft, scheduled, in_force or superseded."""
    return RequirementSetState(
        row=row, in_force=row.version == in_force, status=_set_status(row, in_force)
    )


def read_requirement_set_files(
    directory: Path,
) -> list[tuple[RequirementSet, date | None, str]]:
    """Each `<version>.yaml` of a directory: the set, its effective date if any, the file name."""
    found = []
    for path in sorted(directory.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        effective_from = doc.pop("effective_from", None)
        found.append(
            (
                RequirementSet.model_validate(doc),
                date.fromisoformat(str(effective_from)) if effective_from else None,
                path.name,
            )
        )
    return found


async def load_requirement_sets(
    *, conn: Connection, files: list[tuple[RequirementSet, date | None, str]]
) -> list[str]:
    """Store the sets read from files that are not stored yet; returns the versions added."""
    added = []
    for model, effective_from, name in files:
        inserted = await store.insert_requirement_set(
            conn,
            version=model.version,
            title=model.title,
            non_core_blocking=model.non_core_blocking,
            requirements=model.model_dump(mode="json")["requirements"],
            effective_from=effective_from,
            created_by=f"file:{name}",
        )
        if inserted:
            added.append(model.version)
            log.info("requirement_set.loaded", version=model.version, file=name)
    return added


async def _set_in_force(conn: Connection, on: date) -> tuple[RequirementSet, RequirementSetRow]:
    row = await store.requirement_set_in_force(conn, on)
    if row is None:
        day = on.isoformat()
        raise DomainError(
            Texts(
                f"no requirement set is in force on {day}",
                f"{day} күні қолданыстағы талаптар жиыны жоқ",
                f"на {day} нет действующего набора требований",
            ),
            kind=domain.NO_REQUIREMENT_SET_IN_FORCE,
        )
    return _set_model(row), row


async def list_requirement_sets(*, conn: Connection) -> list[RequirementSetState]:
    in_force = await store.requirement_set_in_force(conn, almaty_today())
    current = in_force.version if in_force else None
    return [
        requirement_set_state(r, in_force=current) for r in await store.list_requirement_sets(conn)
    ]


async def get_requirement_set(*, conn: Connection, version: str) -> RequirementSetState:
    row = await store.get_requirement_set(conn, version)
    if row is None:
        raise _not_found("requirement_set", version)
    in_force = await store.requirement_set_in_force(conn, almaty_today())
    return requirement_set_state(row, in_force=in_force.version if in_force else None)


async def create_requirement_set(
    *, conn: Connection, model: RequirementSet, effective_from: date | None, actor: str
) -> RequirementSetState:
    """Store a new version; it is in force from `effective_from` when given, else a draft."""
    if effective_from is not None:
        _not_retroactive(effective_from)
    async with conn.transaction():
        inserted = await store.insert_requirement_set(
            conn,
            version=model.version,
            title=model.title,
            non_core_blocking=model.non_core_blocking,
            requirements=model.model_dump(mode="json")["requirements"],
            effective_from=effective_from,
            created_by=actor,
        )
        if not inserted:
            raise DomainError(
                Texts(
                    f"requirement set {model.version} exists already; versions are immutable",
                    f"{model.version} талаптар жиыны бұрыннан бар; нұсқалар өзгермейді",
                    f"набор требований {model.version} уже есть; версии неизменны",
                ),
                kind=domain.REQUIREMENT_SET_EXISTS,
            )
        await store.insert_decision(
            conn,
            actor=actor,
            action="requirement_set.created",
            subject=f"requirement-set:{model.version}",
            before=None,
            after={"version": model.version, "effective_from": effective_from},
        )
        await audit.record(
            conn,
            aggregate=Aggregate("requirement_set", model.version),
            action="requirement_set.created",
            reason=model.title,
        )
    return await get_requirement_set(conn=conn, version=model.version)


async def activate_requirement_set(
    *, conn: Connection, version: str, effective_from: date, actor: str
) -> RequirementSetState:
    """Put a set in force from a date (it replaces the set in force from that date)."""
    _not_retroactive(effective_from)
    async with conn.transaction():
        before = await store.get_requirement_set(conn, version)
        if before is None:
            raise _not_found("requirement_set", version)
        await store.activate_requirement_set(conn, version=version, effective_from=effective_from)
        await store.insert_decision(
            conn,
            actor=actor,
            action="requirement_set.activated",
            subject=f"requirement-set:{version}",
            before={"effective_from": before.effective_from},
            after={"effective_from": effective_from},
        )
        await audit.record(
            conn,
            aggregate=Aggregate("requirement_set", version),
            action="requirement_set.activated",
            reason=f"in force from {effective_from.isoformat()}",
        )
    return await get_requirement_set(conn=conn, version=version)


def _not_retroactive(effective_from: date) -> None:
    # Applications and licenses already judged under the set in force keep that judgement.
    today = almaty_today()
    if effective_from < today:
        raise field_error(
            "effective_from",
            f"must not be before today ({today.isoformat()}): norms are not put in force"
            " retroactively",
        )


# applications


async def submit_application(
    *,
    conn: Connection,
    cmd: domain.SubmitApplication,
    region_scope: str | None,
    by_provider: bool = False,
) -> ApplicationRow:
    """Validate, evaluate against the set in force on the filing date, store, publish
    `submitted`."""
    errors = domain.application_errors(cmd)
    if errors:
        raise _field_errors(errors)
    if region_scope is not None and cmd.region != region_scope:
        raise DomainError(
            Texts(
                f"region: this key may only apply in region {region_scope}",
                f"region: бұл кілтпен тек {region_scope} өңірінде өтініш беруге болады",
                f"region: этим ключом можно подавать заявки только в регионе {region_scope}",
            ),
            kind=general(403),
            field="region",
        )
    today = almaty_today()
    submitted_on = cmd.submitted_on or today
    wrong_date = domain.filing_date_error(submitted_on, today=today, provider=by_provider)
    if wrong_date:
        raise field_error("submitted_on", wrong_date)
    dumped = cmd.model_dump(mode="json")
    sites = [_new_site(site) for site in cmd.sites]
    declared = domain.Declaration(
        subtypes=dumped["subtypes"],
        sites=sites,
        staffing=dumped["staffing"],
        workers=dumped["workers"],
        equipment=dumped["equipment"],
        premises=dumped["premises"],
    )
    application_id = str(uuid.uuid4())
    async with conn.transaction():
        requirement_set, _ = await _set_in_force(conn, almaty_today())
        findings = domain.evaluate(requirement_set, domain.profile_of(declared), on=submitted_on)
        row = await store.insert_application(
            conn,
            id=application_id,
            bin=cmd.bin,
            provider_name=cmd.provider_name,
            legal_form=cmd.legal_form,
            region=cmd.region,
            contact=dumped["contact"],
            declared=declared,
            requirement_set=requirement_set.version,
            findings=_finding_docs(findings),
            submitted_on=submitted_on,
        )
        await audit.record(
            conn,
            aggregate=Aggregate("application", application_id),
            action="application.submitted",
            reason=f"under requirement set {requirement_set.version}",
        )
        await emit(
            conn,
            ApplicationSubmittedV1(
                application_id=application_id,
                bin=cmd.bin,
                provider_name=cmd.provider_name,
                legal_form=cmd.legal_form,
                region=cmd.region,
                contact=Contact.model_validate(dumped["contact"]),
                subtypes=[Subtype.model_validate(s) for s in dumped["subtypes"]],
                sites=[Site.model_validate(s) for s in sites],
                requirement_set=requirement_set.version,
                findings=findings,
                submitted_at=row.submitted_at,
            ),
            subject=application_id,
        )
    log.info("application.submitted", application=application_id, region=cmd.region)
    return row


def _new_site(site: domain.SiteIn) -> SiteDoc:
    """A declared site as stored, with the id it has from now on."""
    return SiteDoc(
        site_id=str(uuid.uuid4()), address=site.address, kato=site.kato, places=site.places
    )


def _finding_docs(findings: list[Finding]) -> list[FindingDoc]:
    return [
        FindingDoc(
            requirement_id=f.requirement_id,
            kind=f.kind,
            core=f.core,
            blocking=f.blocking,
            met=f.met,
            expected=f.expected,
            actual=f.actual,
            title_kk=f.title_kk,
            title_ru=f.title_ru,
        )
        for f in findings
    ]


def _field_errors(errors: list[tuple[str, str]]) -> Problem:
    if len(errors) == 1:
        return field_error(*errors[0])
    return Problem(
        422,
        "; ".join(f"{f}: {m}" for f, m in errors[:5]),
        errors=[{"field": f, "message": m} for f, m in errors],
    )


async def _application_for_decision(
    conn: Connection, application_id: str, region_scope: str | None
) -> ApplicationRow:
    row = await store.get_application(conn, application_id, for_update=True)
    if row is None or not _visible(row.region, region_scope):
        raise _not_found("application", application_id)
    if row.status != ApplicationStatus.SUBMITTED:
        raise DomainError(
            domain.decided_detail(application_id, row.status),
            kind=domain.APPLICATION_DECIDED,
            current_status=row.status,
        )
    return row


async def _reevaluate(
    conn: Connection, row: ApplicationRow, on: date
) -> tuple[ApplicationRow, list[Finding]]:
    """Findings under the set in force today, with the latest inspection's observations, on
    the date of the decision (certificates count when valid on it)."""
    requirement_set, _ = await _set_in_force(conn, almaty_today())
    inspection = await store.latest_inspection(conn, str(row.id))
    findings = domain.evaluate(
        requirement_set, domain.profile_of(row), domain.observations_of(inspection), on=on
    )
    row = await store.update_application_findings(
        conn,
        application_id=str(row.id),
        requirement_set=requirement_set.version,
        findings=_finding_docs(findings),
        source="inspection" if inspection else "declaration",
    )
    return row, findings


async def get_application(
    *, conn: Connection, application_id: str, region_scope: str | None
) -> tuple[ApplicationRow, list[InspectionRow]]:
    """An application and its inspections."""
    row = await store.get_application(conn, application_id)
    if row is None or not _visible(row.region, region_scope):
        raise _not_found("application", application_id)
    return row, await store.inspections_of(conn, application_id)


async def list_applications(
    *,
    conn: Connection,
    region: str | None,
    status: ApplicationStatus | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[ApplicationRow]:
    return await store.list_applications(
        conn, region=region, status=status, after=after, limit=limit
    )


async def record_inspection(
    *,
    conn: Connection,
    application_id: str,
    cmd: domain.RecordInspection,
    inspector: str,
    region_scope: str | None,
) -> tuple[InspectionRow, ApplicationRow]:
    """Keep an on-site inspection; the application's findings then come from it."""
    async with conn.transaction():
        row = await _application_for_decision(conn, application_id, region_scope)
        wrong_date = domain.inspection_date_error(
            cmd.inspected_on, submitted_on=row.submitted_on, today=almaty_today()
        )
        if wrong_date:
            raise field_error("inspected_on", wrong_date)
        requirement_set, _ = await _set_in_force(conn, almaty_today())
        known = {r.id for r in requirement_set.requirements}
        errors = [
            (
                f"findings.{i}.requirement_id",
                f"{o.requirement_id!r} is not a requirement of "
                f"the set in force ({requirement_set.version})",
            )
            for i, o in enumerate(cmd.findings)
            if o.requirement_id not in known
        ]
        if errors:
            raise _field_errors(errors)
        before = row.findings
        inspection = await store.insert_inspection(
            conn,
            id=str(uuid.uuid4()),
            application_id=application_id,
            inspected_on=cmd.inspected_on,
            inspector=inspector,
            observations=[
                domain.ObservationDoc(requirement_id=o.requirement_id, met=o.met, actual=o.actual)
                for o in cmd.findings
            ],
            photos=cmd.photos,
            notes=cmd.notes,
        )
        row, _ = await _reevaluate(conn, row, cmd.inspected_on)
        await store.insert_decision(
            conn,
            actor=inspector,
            action="application.inspected",
            subject=f"application:{application_id}",
            before={"findings": before},
            after={"findings": row.findings},
            detail={"inspection_id": str(inspection.id)},
        )
        await audit.record(
            conn,
            aggregate=Aggregate("application", application_id),
            action="application.inspected",
            reason=f"inspection {inspection.id} on {cmd.inspected_on.isoformat()}",
        )
    return inspection, row


def _effective(effective_date: date | None, *, not_before: date | None = None) -> date:
    """The date a decision takes effect: today, or an earlier date it is recorded for."""
    today = almaty_today()
    if effective_date is None:
        return today
    if effective_date > today:
        raise field_error("effective_date", f"must not be after today ({today.isoformat()})")
    if not_before is not None and effective_date < not_before:
        raise field_error(
            "effective_date", f"must not be before the license's last change ({not_before})"
        )
    return effective_date


async def approve_application(
    *,
    conn: Connection,
    application_id: str,
    inspector: str,
    region_scope: str | None,
    effective_date: date | None = None,
) -> LicenseRow:
    """Issue a license, unless a blocking requirement is unmet (409 naming them)."""
    async with conn.transaction():
        row = await _application_for_decision(conn, application_id, region_scope)
        issued_on = await _issue_date(conn, row, effective_date, inspector)
        row, findings = await _reevaluate(conn, row, issued_on)
        blocking = domain.unmet_blocking(findings)
        if blocking:
            # Refused after commit: the application keeps its findings under the set in force.
            ids = ", ".join(f.requirement_id for f in blocking)
            refusal: DomainError | None = DomainError(
                Texts(
                    f"application {application_id} has {len(blocking)} unmet blocking"
                    f" requirement(s): {ids}",
                    f"{application_id} өтінішінде орындалмаған міндетті талаптар"
                    f" ({len(blocking)}): {ids}",
                    f"в заявке {application_id} не выполнены обязательные требования"
                    f" ({len(blocking)}): {ids}",
                ),
                kind=domain.APPLICATION_UNMET_REQUIREMENTS,
                current_status=row.status,
                requirement_set=row.requirement_set,
                unmet=[f.model_dump(mode="json") for f in blocking],
            )
            await audit.record(
                conn,
                aggregate=Aggregate("application", application_id),
                action="application.approval_refused",
                reason="unmet blocking: " + ", ".join(f.requirement_id for f in blocking),
            )
        else:
            refusal = None
            lic = await _issue_license(conn, row, inspector, issued_on)
    if refusal is not None:
        raise refusal
    log.info("license.issued", license=lic.number, application=application_id)
    return lic


async def _issue_date(
    conn: Connection, row: ApplicationRow, effective_date: date | None, approver: str
) -> date:
    """The issue date, after the four-eyes rule: whoever inspected does not also approve."""
    inspections = await store.inspections_of(conn, str(row.id))
    for inspection in inspections:
        if same_person(inspection.inspector, approver):
            on = inspection.inspected_on.isoformat()
            raise DomainError(
                Texts(
                    f"{approver} inspected application {row.id} on {on};"
                    " another official approves it",
                    f"{approver} {row.id} өтінішін {on} күні тексерді;"
                    " оны басқа лауазымды тұлға мақұлдайды",
                    f"{approver} проверял заявку {row.id} {on};"
                    " одобряет её другое должностное лицо",
                ),
                kind=domain.INSPECTOR_DOES_NOT_APPROVE,
                inspector=inspection.inspector,
            )
    today = almaty_today()
    issued_on = effective_date or today
    wrong_date = domain.issue_date_error(
        issued_on,
        submitted_on=row.submitted_on,
        inspected_on=max((i.inspected_on for i in inspections), default=None),
        today=today,
    )
    if wrong_date:
        raise field_error("effective_date", wrong_date)
    return issued_on


async def _issue_license(
    conn: Connection, row: ApplicationRow, inspector: str, today: date
) -> LicenseRow:
    application_id = str(row.id)
    sequence = await store.next_license_sequence(
        conn, region_prefix=row.region[:2], year=today.year
    )
    number = domain.license_number(region=row.region, year=today.year, sequence=sequence)
    lic = await store.insert_license(conn, number=number, application=row, issued_on=today)
    await _decide_application(
        conn, row, ApplicationStatus.APPROVED, inspector=inspector, license_number=number
    )
    await store.insert_decision(
        conn,
        actor=inspector,
        action="license.issued",
        subject=f"license:{number}",
        before=None,
        after={"status": lic.status, "seq": lic.seq},
    )
    await audit.record_many(
        conn,
        aggregates=[Aggregate("application", application_id), Aggregate("license", number)],
        action="license.issued",
        reason=f"application {application_id} approved",
    )
    await emit(
        conn,
        _license_event(LicenseIssuedV1, lic, effective_date=today, application_id=application_id),
        subject=number,
    )
    return lic


async def _decide_application(
    conn: Connection,
    row: ApplicationRow,
    status: ApplicationStatus,
    *,
    inspector: str,
    reason: str | None = None,
    license_number: str | None = None,
) -> ApplicationRow:
    """Record an approval or a rejection (domain.APPLICATION_DECISIONS) and its trail entry,
    with the findings it was decided on."""
    decision = domain.APPLICATION_DECISIONS[status]
    application_id = str(row.id)
    decided = await store.decide_application(
        conn,
        application_id=application_id,
        status=status,
        reason=reason,
        decided_by=inspector,
        license_number=license_number,
    )
    after_member = {"license_number": license_number, "reason": reason}[decision.after_member]
    await store.insert_decision(
        conn,
        actor=inspector,
        action=decision.recorded_as,
        subject=f"application:{application_id}",
        before={"status": row.status},
        after={"status": decided.status, decision.after_member: after_member},
        detail={"requirement_set": row.requirement_set, "findings": row.findings},
    )
    return decided


async def reject_application(
    *,
    conn: Connection,
    application_id: str,
    reason: str,
    inspector: str,
    region_scope: str | None,
) -> ApplicationRow:
    """Refuse an application with the reason and the unmet requirements."""
    async with conn.transaction():
        row = await _application_for_decision(conn, application_id, region_scope)
        row, findings = await _reevaluate(conn, row, almaty_today())
        decided = await _decide_application(
            conn, row, ApplicationStatus.REJECTED, inspector=inspector, reason=reason
        )
        await audit.record(
            conn,
            aggregate=Aggregate("application", application_id),
            action="application.rejected",
            reason=reason,
        )
        await emit(
            conn,
            ApplicationRejectedV1(
                application_id=application_id,
                bin=row.bin,
                provider_name=row.provider_name,
                region=row.region,
                contact=Contact.model_validate(row.contact),
                reason=reason,
                findings=domain.unmet(findings),
                inspector=inspector,
                decided_at=decided.decided_at,
            ),
            subject=application_id,
        )
    return decided


# licenses


def _license_event(model: type[LicenseEvent], lic: LicenseRow, **extra: object) -> LicenseEvent:
    # `extra`: the members of the event's own (effective_date, reason...), checked by its model.
    return model(
        license_number=lic.number,
        bin=lic.bin,
        provider_name=lic.provider_name,
        legal_form=lic.legal_form,
        region=lic.region,
        contact=Contact.model_validate(lic.contact),
        subtypes=[Subtype.model_validate(s) for s in lic.subtypes],
        sites=[Site.model_validate(s) for s in lic.sites],
        status=lic.status,
        seq=lic.seq,
        step_free_access=lic.premises.get("step_free_access"),
        **extra,
    )


async def get_license(*, conn: Connection, number: str) -> LicenseFactsRow:
    lic = await store.get_license_facts(conn, number)
    if lic is None:
        raise _not_found("license", number)
    return lic


async def list_licenses(
    *,
    conn: Connection,
    bin: str | None,
    region: str | None,
    status: LicenseStatus | None,
    after: str | None,
    limit: int,
) -> list[LicenseSummaryRow]:
    return await store.list_license_summaries(
        conn, bin=bin, region=region, status=status, after=after, limit=limit
    )


async def _license_for_change(
    conn: Connection, number: str, action: domain.Action, region_scope: str | None
) -> LicenseRow:
    lic = await store.get_license(conn, number, for_update=True)
    if lic is None or not _visible(lic.region, region_scope):
        raise _not_found("license", number)
    if not domain.transition_allowed(action, lic.status):
        raise DomainError(
            domain.refusal_detail(action, number, lic.status),
            kind=domain.LICENSE_ACTIONS[action].refusal,
            current_status=lic.status,
        )
    return lic


def _status_snapshot(lic: LicenseRow) -> store.TrailDocument:
    return {
        "status": lic.status,
        "seq": lic.seq,
        "status_since": lic.status_since,
        "status_reason": lic.status_reason,
        "suspended_until": lic.suspended_until,
    }


async def change_license_status(
    *,
    conn: Connection,
    number: str,
    action: domain.StatusAction,
    actor: str,
    region_scope: str | None,
    reason: str | None = None,
    until: date | None = None,
    effective_date: date | None = None,
) -> LicenseRow:
    """Suspend, reinstate or revoke (domain.STATUS_CHANGES) from today or the order's date; a
    suspension with `until` ends on that date."""
    change = domain.STATUS_CHANGES[action]
    async with conn.transaction():
        before = await _license_for_change(conn, number, action, region_scope)
        today = _effective(effective_date, not_before=before.status_since)
        if until is not None and until <= today:
            # An `until` already past (a suspension recorded after it ended) is ended by the
            # suspension job on its next round, effective on that date.
            raise field_error("until", f"must be after the suspension starts ({today})")
        lic = await store.change_license_status(
            conn, number=number, status=change.to, since=today, reason=reason, until=until
        )
        await _record_change(conn, actor, change.recorded_as, before, lic, reason)
        carried = {"reason": reason, "until": until}
        extra = {name: carried[name] for name in sorted(change.carries)}
        await emit(
            conn,
            _license_event(change.event, lic, effective_date=today, **extra),
            subject=number,
        )
    log.info(change.recorded_as, license=number, **({"until": until} if "until" in extra else {}))
    return lic


@dataclass(frozen=True)
class Amended:
    """An amended license with the findings of the amendment. Unmet blocking findings do not
    undo the amendment (the licensee's staff and sites are what they are): they tell the
    department to act (suspend, revoke) on them."""

    license: LicenseRow
    findings: list[Finding]


async def _evaluate_license(conn: Connection, lic: LicenseRow, on: date) -> Amended:
    """An amended license's findings on its decision date `on`, under the set in force, with
    its application's latest inspection; kept on the license. A certificate valid at approval
    and expired since is unmet now (blocking if the set says so)."""
    requirement_set, _ = await _set_in_force(conn, on)
    inspection = (
        await store.latest_inspection(conn, str(lic.application_id)) if lic.application_id else None
    )
    findings = domain.evaluate(
        requirement_set, domain.profile_of(lic), domain.observations_of(inspection), on=on
    )
    lic = await store.update_license_findings(
        conn,
        number=lic.number,
        requirement_set=requirement_set.version,
        findings=_finding_docs(findings),
        on=on,
    )
    return Amended(lic, findings)


async def amend_license_staffing(
    *,
    conn: Connection,
    number: str,
    cmd: domain.AmendStaffing,
    actor: str,
    region_scope: str | None,
) -> Amended:
    """The licensee's staffing table and named workers replace the license's; the license is
    evaluated on the amendment's date (today) and the answer carries the findings."""
    errors = domain.workers_errors(cmd.staffing, cmd.workers)
    if errors:
        raise _field_errors(errors)
    today = almaty_today()
    dumped = cmd.model_dump(mode="json")
    async with conn.transaction():
        before = await _license_for_change(conn, number, "amend_staffing", region_scope)
        lic = await store.replace_license_staffing(
            conn, number=number, staffing=dumped["staffing"], workers=dumped["workers"]
        )
        amended = await _evaluate_license(conn, lic, today)
        lic = amended.license
        # The trail keeps the staffing table and counts, never the workers' names.
        await store.insert_decision(
            conn,
            actor=actor,
            action="license.amended",
            subject=f"license:{number}",
            before={**_staffing_summary(before, today), "seq": before.seq},
            after={**_staffing_summary(lic, today), "seq": lic.seq},
            detail={"requirement_set": lic.requirement_set, "findings": lic.findings},
        )
        await audit.record(
            conn,
            aggregate=Aggregate("license", number),
            action="license.amended",
            reason="staffing amended",
        )
        await emit(
            conn,
            _license_event(LicenseAmendedV1, lic, effective_date=today, change="staffing amended"),
            subject=number,
        )
    log.info("license.staffing_amended", license=number, workers=len(cmd.workers))
    return amended


def _staffing_summary(lic: LicenseRow, on: date) -> store.TrailDocument:
    workers = domain.profile_of(lic).workers
    return {
        "staffing": lic.staffing,
        "workers_named": len(workers),
        "workers_certified": sum(1 for w in workers if w.certified_on(on)),
    }


async def add_license_site(
    *, conn: Connection, number: str, site: domain.SiteIn, actor: str, region_scope: str | None
) -> Amended:
    """A branch: a new site amends the license, evaluated on the amendment's date (today)."""
    today = almaty_today()
    async with conn.transaction():
        before = await _license_for_change(conn, number, "add_site", region_scope)
        forms = [ServiceForm(s["form"]) for s in before.subtypes]
        errors = domain.sites_errors([site], forms)
        if errors:
            raise field_error(errors[0][0].removeprefix("sites.0."), errors[0][1])
        new_site = _new_site(site)
        lic = await store.replace_license_sites(
            conn, number=number, sites=[*before.sites, new_site]
        )
        amended = await _evaluate_license(conn, lic, today)
        lic = amended.license
        await store.insert_decision(
            conn,
            actor=actor,
            action="license.amended",
            subject=f"license:{number}",
            before={"sites": before.sites, "seq": before.seq},
            after={"sites": lic.sites, "seq": lic.seq},
            detail={"requirement_set": lic.requirement_set, "findings": lic.findings},
        )
        await audit.record(
            conn,
            aggregate=Aggregate("license", number),
            action="license.amended",
            reason=f"site added: {new_site['site_id']}",
        )
        await emit(
            conn,
            _license_event(
                LicenseAmendedV1,
                lic,
                effective_date=today,
                change=f"site added: {new_site['site_id']}",
            ),
            subject=number,
        )
    return amended


async def _record_change(
    conn: Connection,
    actor: str,
    action: str,
    before: LicenseRow,
    after: LicenseRow,
    reason: str | None = None,
) -> None:
    await audit.record(
        conn, aggregate=Aggregate("license", after.number), action=action, reason=reason
    )
    await store.insert_decision(
        conn,
        actor=actor,
        action=action,
        subject=f"license:{after.number}",
        before=_status_snapshot(before),
        after=_status_snapshot(after),
    )


async def end_due_suspensions(*, conn: Connection, today: date) -> list[str]:
    """Reinstate every license whose suspension end date has come (the timer's work)."""
    async with conn.transaction():
        rows = await store.reinstate_due_suspensions(conn, today=today)
        if not rows:
            return []
        await store.insert_decisions(
            conn,
            [
                (
                    TIMER,
                    "license.reinstated",
                    f"license:{r.number}",
                    {
                        "status": "suspended",
                        "seq": r.seq - 1,
                        "suspended_until": r.status_since,
                    },
                    _status_snapshot(r),
                    {"cause": "suspension end date reached"},
                )
                for r in rows
            ],
        )
        await audit.record_many(
            conn,
            aggregates=[Aggregate("license", r.number) for r in rows],
            action="license.reinstated",
            reason="suspension end date reached",
        )
        await emit_many(
            conn,
            [
                (
                    _license_event(LicenseReinstatedV1, r, effective_date=r.status_since),
                    r.number,
                )
                for r in rows
            ],
        )
    numbers = [r.number for r in rows]
    log.info("license.suspensions_ended", licenses=numbers)
    return numbers


# events from the registry


async def enrollment_started(*, conn: Connection, enrollment_id: str, provider_bin: str) -> None:
    await store.record_enrollment_started(conn, enrollment_id=enrollment_id, bin=provider_bin)


async def enrollment_ended(*, conn: Connection, enrollment_id: str, provider_bin: str) -> None:
    await store.record_enrollment_ended(conn, enrollment_id=enrollment_id, bin=provider_bin)


# impact simulation


@dataclass(frozen=True)
class Judged:
    """One licensee or pending application judged under the set in force and the candidate."""

    kind: Literal["license", "application"]
    key: str
    bin: str
    provider_name: str
    region: str
    places: int
    recipients: int
    passes_in_force: bool
    passes_simulated: bool
    unmet_blocking_in_force: list[str]
    unmet_blocking_simulated: list[str]
    unmet_simulated: list[Finding]
    # A licensee's number and status; a pending application's id.
    license_number: str | None = None
    status: LicenseStatus | None = None
    application_id: str | None = None


@dataclass(frozen=True)
class ImpactTotalsPair:
    in_force: domain.ImpactTotals
    simulated: domain.ImpactTotals


@dataclass(frozen=True)
class Impact:
    version: str
    in_force: str
    licensees: list[Judged]
    applications: list[Judged]
    totals: ImpactTotalsPair
    change: domain.ImpactChange


async def simulate_impact(*, conn: Connection, version: str, region_scope: str | None) -> Impact:
    """Who passes the given set and the set in force: licensees and pending applications,
    evaluated today (a certificate counts when valid today), with each one's unmet findings
    under the given set."""
    row = await store.get_requirement_set(conn, version)
    if row is None:
        raise _not_found("requirement_set", version)
    candidate = _set_model(row)
    in_force, _ = await _set_in_force(conn, almaty_today())
    licenses = await store.current_licenses(conn, region=region_scope)
    pending = await store.pending_applications(conn, region=region_scope)
    bins = sorted({r.bin for r in licenses} | {r.bin for r in pending})
    recipients = await store.recipients_by_provider(conn, bins)
    inspections = await store.latest_inspections(
        conn,
        [str(r.id) for r in pending]
        + [str(r.application_id) for r in licenses if r.application_id],
    )
    totals = ImpactTotalsPair(in_force=domain.ImpactTotals(), simulated=domain.ImpactTotals())
    change = domain.ImpactChange()
    # Certificates are judged on the day of the simulation.
    today = almaty_today()

    def judge(
        kind: Literal["license", "application"],
        key: str,
        record: LicenseRow | ApplicationRow,
        inspection_key: str,
    ) -> Judged:
        profile = domain.profile_of(record)
        observations = domain.observations_of(inspections.get(inspection_key))
        now = domain.evaluate(in_force, profile, observations, on=today)
        then = domain.evaluate(candidate, profile, observations, on=today)
        served = recipients.get(record.bin, 0)
        totals.in_force.add(passing=domain.passes(now), places=profile.places, recipients=served)
        totals.simulated.add(passing=domain.passes(then), places=profile.places, recipients=served)
        change.add(
            key,
            before=domain.passes(now),
            after=domain.passes(then),
            places=profile.places,
            recipients=served,
        )
        return Judged(
            kind=kind,
            key=key,
            bin=record.bin,
            provider_name=record.provider_name,
            region=record.region,
            places=profile.places,
            recipients=served,
            passes_in_force=domain.passes(now),
            passes_simulated=domain.passes(then),
            unmet_blocking_in_force=[f.requirement_id for f in domain.unmet_blocking(now)],
            unmet_blocking_simulated=[f.requirement_id for f in domain.unmet_blocking(then)],
            unmet_simulated=domain.unmet(then),
            license_number=record.number if isinstance(record, LicenseRow) else None,
            status=record.status if isinstance(record, LicenseRow) else None,
            application_id=str(record.id) if isinstance(record, ApplicationRow) else None,
        )

    licensees = [judge("license", r.number, r, str(r.application_id)) for r in licenses]
    applications = [judge("application", str(r.id), r, str(r.id)) for r in pending]
    return Impact(
        version=candidate.version,
        in_force=in_force.version,
        licensees=licensees,
        applications=applications,
        totals=totals,
        change=change,
    )


# decisions


async def list_decisions(
    *, conn: Connection, subject: str | None, action: str | None, after: int, limit: int
) -> list[DecisionRow]:
    return await store.list_decisions(
        conn, subject=subject, action=action, after=after, limit=limit
    )
