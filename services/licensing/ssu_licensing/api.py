"""HTTP API of licensing (DESIGN §5): parse, authorise, call the service, shape the answer."""

import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Annotated, Literal, TypeVar

from fastapi import APIRouter, Depends, Query, Request, Response, Security
from pydantic import BaseModel, ConfigDict, Field, JsonValue, PlainSerializer, WithJsonSchema
from pydantic.json_schema import JsonDict
from ssu_common import (
    Connection,
    Principal,
    Seq,
    TimeAndId,
    authorize,
    connection,
    decode_cursor,
    encode_cursor,
    field_error,
    optional_principal,
    refusals,
)
from ssu_common.errors import DomainError, Texts, general
from ssu_contracts import (
    ApplicationStatus,
    Contact,
    Finding,
    LicenseStatus,
    RegionCode,
    name_of,
)
from ssu_contracts import Site as ApplicationSite

from ssu_licensing import domain, service
from ssu_licensing.domain import SiteDoc, SubtypeDoc

# Records of the store, as the service answers them (api.py reads them, never calls the store).
from ssu_licensing.store import (
    ApplicationRow,
    InspectionRow,
    LicenseFacts,
    LicenseFactsRow,
    LicenseRow,
)

router = APIRouter(prefix="/v1")

Reader = Annotated[Principal, Security(authorize, scopes=["licensing:read"])]
# Roles (DESIGN §6): a provider applies, an inspector inspects, an official decides, the
# ministry sets the norms; none of them holds another's role through its own scope.
Applicant = Annotated[Principal, Security(authorize, scopes=["licensing:apply"])]
Inspector = Annotated[Principal, Security(authorize, scopes=["licensing:inspect"])]
Norms = Annotated[Principal, Security(authorize, scopes=["licensing:norms"])]
Db = Annotated[Connection, Depends(connection)]


def _official(principal: Annotated[Principal, Security(authorize)]) -> Principal:
    """The caller, who must name the official deciding (`X-SSU-Official`)."""
    if principal.official is None:
        raise field_error("header.X-SSU-Official", "a decision must name the official who makes it")
    return principal


Decider = Annotated[Principal, Security(_official, scopes=["licensing:decide"])]
Official = Annotated[Principal, Security(_official, scopes=["licensing:inspect"])]


def _limit(request: Request, limit: int) -> int:
    return min(limit, int(request.app.state.runtime.settings.max_page))


T = TypeVar("T")


def _next_cursor(items: Sequence[T], limit: int, key: Callable[[T], JsonValue]) -> str | None:
    """The cursor of the page after a full one: the last item's key."""
    return encode_cursor(key(items[-1])) if len(items) == limit and items else None


def _scoped_region(principal: Principal, region: str | None) -> str | None:
    if principal.region is not None:
        if region is not None and region != principal.region:
            return "none"
        return principal.region
    return region


def _national(principal: Principal) -> None:
    if principal.region is not None:
        raise DomainError(
            Texts(
                "requirement sets are national: a regional key cannot change them",
                "талаптар жиыны республикалық: өңірлік кілт оларды өзгерте алмайды",
                "наборы требований общереспубликанские: региональный ключ их не меняет",
            ),
            kind=domain.NORMS_ARE_NATIONAL,
        )


class EffectiveDate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # A decision recorded after the fact (an order dated earlier, a license issued on paper
    # before the system) takes effect on the order's date; billing counts from it.
    effective_date: date | None = Field(
        default=None, description="date the decision takes effect; default today (Asia/Almaty)"
    )


class Reason(EffectiveDate):
    reason: str = Field(min_length=1, max_length=2000)


class Suspension(Reason):
    # The date the license is active again (the suspension covers the dates before it).
    until: date | None = Field(
        default=None, description="first date the license is active again; none: until reinstated"
    )


class NewRequirementSet(domain.RequirementSet):
    """A requirement set to store; with `effective_from` it is in force from that date."""

    effective_from: date | None = None


class Activation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    effective_from: date


# Answers: every route answers a model, so OpenAPI documents what a client receives. The
# members, their order and their JSON are those of the service's views.

# A moment as the service has always written it (`datetime.isoformat`: `+00:00`, not `Z`).
Instant = Annotated[
    datetime,
    PlainSerializer(datetime.isoformat, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
JsonObject = dict[str, JsonValue]

_REGION_NAME: JsonDict = {"kk": "Алматы қаласы", "ru": "город Алматы"}
_SUBTYPE_EXAMPLE: JsonDict = {
    "form": "stationary",
    "category": "elderly",
    "form_name": {"kk": "стационарлық", "ru": "стационарная"},
    "category_name": {"kk": "қарттар", "ru": "пожилые"},
}
_FINDING_EXAMPLE: JsonDict = {
    "requirement_id": "staff.social_worker",
    "kind": "staff_ratio",
    "core": True,
    "blocking": True,
    "met": True,
    "expected": "social_worker >= 4.00 FTE",
    "actual": "social_worker 4.00 FTE",
    "title_kk": "Әлеуметтік қызметкерлер",
    "title_ru": "Социальные работники",
}


class Names(BaseModel):
    kk: str
    ru: str


class SubtypeView(BaseModel):
    form: str
    category: str
    form_name: Names
    category_name: Names


class Inspection(BaseModel):
    """An on-site inspection: what the inspector found of each requirement."""

    id: str
    application_id: str
    inspected_on: date
    inspector: str
    findings: list[domain.ObservationIn]
    photos: list[str]
    notes: str | None
    recorded_at: Instant


class Application(BaseModel):
    """An application with its findings under the set in force and, once decided, the
    decision."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0b8f1c2e-6d3a-4f7e-9a51-3c2d4e5f6a7b",
                    "status": "submitted",
                    "bin": "940140000385",
                    "provider_name": "ТОО «Мейірім»",
                    "legal_form": "llp",
                    "region": "750000000",
                    "region_name": _REGION_NAME,
                    "contact": {"email": None, "phone": "8 (727) 250-00-00", "language": "kk"},
                    "subtypes": [_SUBTYPE_EXAMPLE],
                    "sites": [
                        {
                            "site_id": "5a6b7c8d-1e2f-4a3b-8c9d-0e1f2a3b4c5d",
                            "address": "Алматы, Абай даңғылы 10",
                            "kato": "751110000",
                            "places": 40,
                        }
                    ],
                    "staffing": [{"role": "social_worker", "fte": "4.00"}],
                    "workers": [],
                    "equipment": ["first_aid_kit", "fire_alarm"],
                    "premises": {"area_m2": "640.00", "step_free_access": True},
                    "requirement_set": "2025.1",
                    "findings_source": "declaration",
                    "findings": [_FINDING_EXAMPLE],
                    "passes": True,
                    "unmet_blocking": [],
                    "license_number": None,
                    "decision_reason": None,
                    "decided_by": None,
                    "decided_at": None,
                    "submitted_at": "2026-03-02T04:15:00.123456+00:00",
                    "submitted_on": "2026-03-02",
                }
            ]
        }
    )

    id: str
    status: ApplicationStatus
    bin: str
    provider_name: str
    legal_form: str
    region: str
    region_name: Names
    contact: Contact
    subtypes: list[SubtypeView]
    sites: list[ApplicationSite]
    staffing: list[domain.StaffIn]
    workers: list[domain.WorkerIn]
    equipment: list[str]
    premises: domain.PremisesIn
    requirement_set: str = Field(description="version of the set the findings are under")
    findings_source: Literal["declaration", "inspection"]
    findings: list[Finding]
    passes: bool = Field(description="no blocking requirement is unmet")
    unmet_blocking: list[str] = Field(description="ids of the blocking requirements unmet")
    license_number: str | None
    decision_reason: str | None
    decided_by: str | None
    decided_at: Instant | None
    submitted_at: Instant
    submitted_on: date


class ApplicationWithInspections(Application):
    """An application and its inspections."""

    inspections: list[Inspection]


class ApplicationPage(BaseModel):
    items: list[Application]
    next_cursor: str | None


class InspectionRecorded(BaseModel):
    """The inspection kept, and the application with the findings it now has."""

    inspection: Inspection
    application: Application


# license answers


class PublicSite(BaseModel):
    """A site as anyone may see it. A shelter's shows its district, never where it is."""

    site_id: str
    places: int | None
    region: str
    region_name: Names
    district: str = Field(
        description="KATO of the district (ABCD00000); the reference data names regions only,"
        " so the code stands for the district's name"
    )
    kato: str | None = Field(description="null for a shelter")
    address: str | None = Field(description="null for a shelter: its address is never public")


class LicenseSite(BaseModel):
    """A site with its address, for keys with `licensing:read`."""

    site_id: str
    places: int | None
    region: str
    region_name: Names
    district: str
    kato: str
    address: str


class LicensedSite(BaseModel):
    """A site of a license as a decision's answer shows it (with its address)."""

    site_id: str
    address: str
    kato: str
    places: int | None
    region: str
    region_name: Names
    district: str = Field(description="KATO of the district (ABCD00000)")


class _LicenseFacts(BaseModel):
    number: str
    bin: str
    provider_name: str
    legal_form: str
    legal_form_name: Names
    region: str
    region_name: Names
    status: str
    status_name: Names
    status_since: date
    status_reason: str | None
    suspended_until: date | None
    issued_on: date
    seq: int
    subtypes: list[SubtypeView]


class PublicLicense(_LicenseFacts):
    """A license as the public registry shows it (no key, or a key without licensing:read)."""

    sites: list[PublicSite]


class License(_LicenseFacts):
    """A license with its sites' addresses, for keys with `licensing:read`."""

    sites: list[LicenseSite]


class LicenseSummary(_LicenseFacts):
    """A license as a list shows it: its facts and totals, no sites (so no address, whatever
    the key); the whole license, with its sites, is `href` away."""

    places: int = Field(description="licensed places over all sites")
    site_count: int
    href: str = Field(description="the whole license: GET it")


class LicensePage(BaseModel):
    items: list[LicenseSummary]
    next_cursor: str | None


_LICENSE_EXAMPLE: JsonDict = {
    "number": "SSU-75-2026-000001",
    "bin": "940140000385",
    "provider_name": "ТОО «Мейірім»",
    "legal_form": "llp",
    "legal_form_name": {"kk": "ЖШС", "ru": "ТОО"},
    "region": "750000000",
    "region_name": _REGION_NAME,
    "status": "suspended",
    "status_name": {"kk": "тоқтатыла тұрды", "ru": "приостановлена"},
    "status_since": "2026-04-01",
    "status_reason": "fire alarm out of order",
    "suspended_until": "2026-05-01",
    "issued_on": "2026-03-10",
    "seq": 2,
    "subtypes": [_SUBTYPE_EXAMPLE],
    "sites": [
        {
            "site_id": "5a6b7c8d-1e2f-4a3b-8c9d-0e1f2a3b4c5d",
            "address": "Алматы, Абай даңғылы 10",
            "kato": "751110000",
            "places": 40,
            "region": "750000000",
            "region_name": _REGION_NAME,
            "district": "751100000",
        }
    ],
    "application_id": "0b8f1c2e-6d3a-4f7e-9a51-3c2d4e5f6a7b",
    "contact": {"email": None, "phone": "8 (727) 250-00-00", "language": "kk"},
    "decided_by": "almaty-department/head-01",
}


class LicenseDecision(_LicenseFacts):
    """A license as a decision on it leaves it (issued, suspended, reinstated, revoked), with
    its sites, its application, its contact and who decided."""

    model_config = ConfigDict(json_schema_extra={"examples": [_LICENSE_EXAMPLE]})

    sites: list[LicensedSite]
    application_id: str | None
    contact: Contact | None
    decided_by: str


class Amendment(LicenseDecision):
    """An amended license (a new site, a new staffing) with the findings of the amendment:
    unmet blocking findings do not undo it, they tell the department to act on them."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_LICENSE_EXAMPLE,
                    "requirement_set": "2025.1",
                    "findings_on": "2026-04-02",
                    "findings": [_FINDING_EXAMPLE],
                    "passes": True,
                    "unmet_blocking": [],
                }
            ]
        }
    )

    requirement_set: str | None
    findings_on: date | None = Field(description="the date the findings are judged on")
    findings: list[Finding]
    passes: bool
    unmet_blocking: list[str]


# Shaping the service's records into the answers, with bilingual reference names.


def _names(kind: str, code: str) -> Names:
    return Names(kk=name_of(kind, code, "kk"), ru=name_of(kind, code, "ru"))


def _subtype_views(subtypes: list[SubtypeDoc]) -> list[SubtypeView]:
    return [
        SubtypeView(
            form=s["form"],
            category=s["category"],
            form_name=_names("form", s["form"]),
            category_name=_names("category", s["category"]),
        )
        for s in subtypes
    ]


def _application_members(row: ApplicationRow) -> dict[str, object]:
    findings = [Finding.model_validate(f) for f in row.findings]
    return {
        "id": str(row.id),
        "status": row.status,
        "bin": row.bin,
        "provider_name": row.provider_name,
        "legal_form": row.legal_form,
        "region": row.region,
        "region_name": _names("region", row.region),
        "contact": row.contact,
        "subtypes": _subtype_views(row.subtypes),
        "sites": row.sites,
        "staffing": row.staffing,
        "workers": row.workers,
        "equipment": row.equipment,
        "premises": row.premises,
        "requirement_set": row.requirement_set,
        "findings_source": row.findings_source,
        "findings": row.findings,
        "passes": domain.passes(findings),
        "unmet_blocking": [f.requirement_id for f in domain.unmet_blocking(findings)],
        "license_number": row.license_number,
        "decision_reason": row.decision_reason,
        "decided_by": row.decided_by,
        "decided_at": row.decided_at,
        "submitted_at": row.submitted_at,
        "submitted_on": row.submitted_on,
    }


def _application(row: ApplicationRow) -> Application:
    return Application.model_validate(_application_members(row))


def _inspection(row: InspectionRow) -> Inspection:
    return Inspection.model_validate(
        {
            "id": str(row.id),
            "application_id": str(row.application_id),
            "inspected_on": row.inspected_on,
            "inspector": row.inspector,
            "findings": row.observations,
            "photos": row.photos,
            "notes": row.notes,
            "recorded_at": row.recorded_at,
        }
    )


def _facts(lic: LicenseFacts) -> dict[str, object]:
    """The members of `_LicenseFacts`: what every view of a license shows."""
    return {
        "number": lic.number,
        "bin": lic.bin,
        "provider_name": lic.provider_name,
        "legal_form": lic.legal_form,
        "legal_form_name": _names("legal_form", lic.legal_form),
        "region": lic.region,
        "region_name": _names("region", lic.region),
        "status": lic.status,
        "status_name": _names("license_status", lic.status),
        "status_since": lic.status_since,
        "status_reason": lic.status_reason,
        "suspended_until": lic.suspended_until,
        "issued_on": lic.issued_on,
        "seq": lic.seq,
        "subtypes": _subtype_views(lic.subtypes),
    }


def _site_views(sites: list[SiteDoc]) -> list[dict[str, object]]:
    """Sites with their region and district (the whole site: the public view hides some)."""
    return [
        {
            **s,
            "region": s["kato"][:2] + "0000000",
            "region_name": _names("region", s["kato"][:2] + "0000000"),
            "district": domain.district_of(s["kato"]),
        }
        for s in sites
    ]


def _decision_members(lic: LicenseRow, decided_by: str) -> dict[str, object]:
    return {
        **_facts(lic),
        "sites": _site_views(lic.sites),
        "application_id": str(lic.application_id) if lic.application_id else None,
        "contact": lic.contact,
        "decided_by": decided_by,
    }


def _decision(lic: LicenseRow, decided_by: str) -> LicenseDecision:
    """A license as a decision on it leaves it, with who decided."""
    return LicenseDecision.model_validate(_decision_members(lic, decided_by))


def _amendment(amended: service.Amended, decided_by: str) -> Amendment:
    lic, findings = amended.license, amended.findings
    return Amendment.model_validate(
        {
            **_decision_members(lic, decided_by),
            "requirement_set": lic.requirement_set,
            "findings_on": lic.findings_on,
            "findings": lic.findings,
            "passes": domain.passes(findings),
            "unmet_blocking": [f.requirement_id for f in domain.unmet_blocking(findings)],
        }
    )


# applications


@router.post(
    "/applications",
    status_code=201,
    tags=["applications"],
    response_model=Application,
    responses=refusals(domain.NO_REQUIREMENT_SET_IN_FORCE),
)
async def submit_application(
    cmd: domain.SubmitApplication, principal: Applicant, conn: Db, response: Response
) -> Application:
    """Apply for a license; the answer carries the findings against the set in force."""
    if not principal.acts_for(cmd.bin):
        raise field_error("bin", f"this key applies only for BIN {principal.bin}", 403)
    created = await service.submit_application(
        conn=conn, cmd=cmd, region_scope=principal.region, by_provider=principal.bin is not None
    )
    response.headers["Location"] = f"/v1/applications/{created.id}"
    return _application(created)


@router.get("/applications", tags=["applications"], response_model=ApplicationPage)
async def list_applications(
    request: Request,
    principal: Reader,
    conn: Db,
    region: RegionCode | None = None,
    status: ApplicationStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: str | None = None,
) -> ApplicationPage:
    limit = _limit(request, limit)
    decoded = decode_cursor(cursor, TimeAndId)
    after = (decoded[0], str(decoded[1])) if decoded else None
    items = await service.list_applications(
        conn=conn,
        region=_scoped_region(principal, region),
        status=status,
        after=after,
        limit=limit,
    )
    return ApplicationPage(
        items=[_application(i) for i in items],
        next_cursor=_next_cursor(items, limit, lambda i: [i.submitted_at.isoformat(), str(i.id)]),
    )


def _uuid_or_404(value: str, what: domain.Missing) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise DomainError(domain.missing(what, value), kind=general(404)) from None


@router.get(
    "/applications/{application_id}",
    tags=["applications"],
    response_model=ApplicationWithInspections,
)
async def get_application(
    application_id: str, principal: Reader, conn: Db
) -> ApplicationWithInspections:
    found, inspections = await service.get_application(
        conn=conn,
        application_id=_uuid_or_404(application_id, "application"),
        region_scope=principal.region,
    )
    return ApplicationWithInspections.model_validate(
        {**_application_members(found), "inspections": [_inspection(i) for i in inspections]}
    )


@router.post(
    "/applications/{application_id}/inspections",
    status_code=201,
    tags=["applications"],
    response_model=InspectionRecorded,
    responses=refusals(domain.APPLICATION_DECIDED, domain.NO_REQUIREMENT_SET_IN_FORCE),
)
async def record_inspection(
    application_id: str, cmd: domain.RecordInspection, principal: Official, conn: Db
) -> InspectionRecorded:
    """An on-site inspection (`X-SSU-Official` names the inspector); its findings override the
    declared values."""
    inspection, application = await service.record_inspection(
        conn=conn,
        application_id=_uuid_or_404(application_id, "application"),
        cmd=cmd,
        inspector=principal.actor,
        region_scope=principal.region,
    )
    return InspectionRecorded(
        inspection=_inspection(inspection), application=_application(application)
    )


@router.post(
    "/applications/{application_id}/approve",
    status_code=201,
    tags=["applications"],
    response_model=LicenseDecision,
    responses=refusals(
        general(403),
        domain.INSPECTOR_DOES_NOT_APPROVE,
        domain.APPLICATION_DECIDED,
        domain.APPLICATION_UNMET_REQUIREMENTS,
        domain.NO_REQUIREMENT_SET_IN_FORCE,
    ),
)
async def approve_application(
    application_id: str,
    principal: Decider,
    conn: Db,
    response: Response,
    body: EffectiveDate | None = None,
) -> LicenseDecision:
    """Issue a license (201 with it and its `Location`), or 409 listing the unmet blocking
    findings; an official who inspected the application does not approve it (403)."""
    issued = await service.approve_application(
        conn=conn,
        application_id=_uuid_or_404(application_id, "application"),
        inspector=principal.actor,
        region_scope=principal.region,
        effective_date=body.effective_date if body else None,
    )
    response.headers["Location"] = f"/v1/licenses/{issued.number}"
    return _decision(issued, principal.actor)


@router.post(
    "/applications/{application_id}/reject",
    tags=["applications"],
    response_model=Application,
    responses=refusals(domain.APPLICATION_DECIDED, domain.NO_REQUIREMENT_SET_IN_FORCE),
)
async def reject_application(
    application_id: str, body: Reason, principal: Decider, conn: Db
) -> Application:
    rejected = await service.reject_application(
        conn=conn,
        application_id=_uuid_or_404(application_id, "application"),
        reason=body.reason,
        inspector=principal.actor,
        region_scope=principal.region,
    )
    return _application(rejected)


# licenses (reads are public)

# Marks a route as deliberately open in the OpenAPI document; the authorization test reads it.
PUBLIC = {"x-ssu-public": True}
Caller = Annotated[Principal | None, Depends(optional_principal)]


def _license(lic: LicenseFactsRow, caller: Principal | None) -> PublicLicense | License:
    """The public model unless the caller may read addresses: fields are copied by name into
    it, so a field added to the internal view is not public until added here."""
    sites = _site_views(lic.sites)
    if caller is not None and "licensing:read" in caller.scopes:
        return License.model_validate({**_facts(lic), "sites": sites})
    hidden = domain.shelters((s["form"], s["category"]) for s in lic.subtypes)
    return PublicLicense.model_validate(
        {
            **_facts(lic),
            "sites": [
                PublicSite(
                    site_id=s["site_id"],
                    places=s["places"],
                    region=s["region"],
                    region_name=s["region_name"],
                    district=s["district"],
                    kato=None if hidden else s["kato"],
                    address=None if hidden else s["address"],
                )
                for s in sites
            ],
        }
    )


@router.get("/licenses", tags=["licenses"], openapi_extra=PUBLIC, response_model=LicensePage)
async def list_licenses(
    request: Request,
    conn: Db,
    caller: Caller,
    bin: str | None = None,
    region: RegionCode | None = None,
    status: LicenseStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: str | None = None,
) -> LicensePage:
    """The public license registry, as summaries; no key needed. Sites and addresses are in
    the single license (`href`)."""
    limit = _limit(request, limit)
    after = decode_cursor(cursor, str)
    rows = await service.list_licenses(
        conn=conn, bin=bin, region=region, status=status, after=after, limit=limit
    )
    items = [
        LicenseSummary.model_validate(
            {
                **_facts(r),
                "places": r.places,
                "site_count": r.site_count,
                "href": f"/v1/licenses/{r.number}",
            }
        )
        for r in rows
    ]
    next_cursor = encode_cursor(rows[-1].number) if len(rows) == limit else None
    return LicensePage(items=items, next_cursor=next_cursor)


@router.get(
    "/licenses/{number}",
    tags=["licenses"],
    openapi_extra=PUBLIC,
    response_model=PublicLicense | License,
)
async def get_license(number: str, conn: Db, caller: Caller) -> PublicLicense | License:
    """One license of the public registry; no key needed (addresses with licensing:read)."""
    return _license(await service.get_license(conn=conn, number=number), caller)


@router.post(
    "/licenses/{number}/suspend",
    tags=["licenses"],
    response_model=LicenseDecision,
    responses=refusals(domain.LICENSE_NOT_SUSPENDABLE),
)
async def suspend_license(
    number: str, body: Suspension, principal: Decider, conn: Db
) -> LicenseDecision:
    changed = await service.change_license_status(
        conn=conn,
        number=number,
        action="suspend",
        reason=body.reason,
        until=body.until,
        actor=principal.actor,
        region_scope=principal.region,
        effective_date=body.effective_date,
    )
    return _decision(changed, principal.actor)


@router.post(
    "/licenses/{number}/reinstate",
    tags=["licenses"],
    response_model=LicenseDecision,
    responses=refusals(domain.LICENSE_NOT_REINSTATABLE),
)
async def reinstate_license(
    number: str, principal: Decider, conn: Db, body: EffectiveDate | None = None
) -> LicenseDecision:
    changed = await service.change_license_status(
        conn=conn,
        number=number,
        action="reinstate",
        actor=principal.actor,
        region_scope=principal.region,
        effective_date=body.effective_date if body else None,
    )
    return _decision(changed, principal.actor)


@router.post(
    "/licenses/{number}/revoke",
    tags=["licenses"],
    response_model=LicenseDecision,
    responses=refusals(domain.LICENSE_NOT_REVOCABLE),
)
async def revoke_license(
    number: str, body: Reason, principal: Decider, conn: Db
) -> LicenseDecision:
    changed = await service.change_license_status(
        conn=conn,
        number=number,
        action="revoke",
        reason=body.reason,
        actor=principal.actor,
        region_scope=principal.region,
        effective_date=body.effective_date,
    )
    return _decision(changed, principal.actor)


@router.post(
    "/licenses/{number}/sites",
    status_code=201,
    tags=["licenses"],
    response_model=Amendment,
    responses=refusals(domain.LICENSE_NOT_AMENDABLE, domain.NO_REQUIREMENT_SET_IN_FORCE),
)
async def add_license_site(
    number: str, site: domain.SiteIn, principal: Decider, conn: Db, response: Response
) -> Amendment:
    """A branch: the new site amends the license at once, so it is the licensor's decision."""
    amended = await service.add_license_site(
        conn=conn, number=number, site=site, actor=principal.actor, region_scope=principal.region
    )
    response.headers["Location"] = f"/v1/licenses/{number}"
    return _amendment(amended, principal.actor)


@router.post(
    "/licenses/{number}/staffing",
    tags=["licenses"],
    response_model=Amendment,
    responses=refusals(domain.LICENSE_NOT_AMENDABLE, domain.NO_REQUIREMENT_SET_IN_FORCE),
)
async def amend_license_staffing(
    number: str, cmd: domain.AmendStaffing, principal: Decider, conn: Db
) -> Amendment:
    """The licensee's staffing table and named workers as they are now (a renewed
    certificate, a new hire): they replace the license's, which is evaluated on today's date;
    the answer carries the findings. Like a new site, the licensor's decision."""
    amended = await service.amend_license_staffing(
        conn=conn, number=number, cmd=cmd, actor=principal.actor, region_scope=principal.region
    )
    return _amendment(amended, principal.actor)


# requirement sets


class RequirementSetView(BaseModel):
    """A requirement set with its status: draft (no date), scheduled (in force from a date to
    come), in_force, or superseded."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "version": "2025.1",
                    "title": "Стандарт оказания специальных социальных услуг, ред. 2025",
                    "non_core_blocking": False,
                    "effective_from": "2025-01-01",
                    "in_force": True,
                    "status": "in_force",
                    "requirements": [
                        {
                            "id": "staff.social_worker",
                            "title_kk": "Әлеуметтік қызметкерлер",
                            "title_ru": "Социальные работники",
                            "core": True,
                            "forms": ["stationary"],
                            "categories": [],
                            "kind": "staff_ratio",
                            "role": "social_worker",
                            "fte": "1",
                            "per_places": 10,
                            "per_site": False,
                        }
                    ],
                    "created_by": "file:2025.1.yaml",
                    "created_at": "2025-01-01T00:00:00+00:00",
                }
            ]
        }
    )

    version: str
    title: str
    non_core_blocking: bool
    effective_from: date | None
    in_force: bool
    status: Literal["draft", "scheduled", "in_force", "superseded"]
    requirements: list[domain.Requirement]
    created_by: str
    created_at: Instant


class RequirementSetList(BaseModel):
    items: list[RequirementSetView]


def _requirement_set(state: service.RequirementSetState) -> RequirementSetView:
    row = state.row
    return RequirementSetView.model_validate(
        {
            "version": row.version,
            "title": row.title,
            "non_core_blocking": row.non_core_blocking,
            "effective_from": row.effective_from,
            "in_force": state.in_force,
            "status": state.status,
            "requirements": row.requirements,
            "created_by": row.created_by,
            "created_at": row.created_at,
        }
    )


@router.get("/requirement-sets", tags=["requirement sets"], response_model=RequirementSetList)
async def list_requirement_sets(principal: Reader, conn: Db) -> RequirementSetList:
    sets = await service.list_requirement_sets(conn=conn)
    return RequirementSetList(items=[_requirement_set(s) for s in sets])


@router.get(
    "/requirement-sets/{version}", tags=["requirement sets"], response_model=RequirementSetView
)
async def get_requirement_set(version: str, principal: Reader, conn: Db) -> RequirementSetView:
    found = await service.get_requirement_set(conn=conn, version=version)
    return _requirement_set(found)


@router.post(
    "/requirement-sets",
    status_code=201,
    tags=["requirement sets"],
    response_model=RequirementSetView,
    responses=refusals(general(403), domain.NORMS_ARE_NATIONAL, domain.REQUIREMENT_SET_EXISTS),
)
async def create_requirement_set(
    body: NewRequirementSet, principal: Norms, conn: Db, response: Response
) -> RequirementSetView:
    _national(principal)
    model = domain.RequirementSet.model_validate(body.model_dump(exclude={"effective_from"}))
    created = await service.create_requirement_set(
        conn=conn, model=model, effective_from=body.effective_from, actor=principal.actor
    )
    response.headers["Location"] = f"/v1/requirement-sets/{model.version}"
    return _requirement_set(created)


@router.post(
    "/requirement-sets/{version}/activate",
    tags=["requirement sets"],
    response_model=RequirementSetView,
    responses=refusals(general(403), domain.NORMS_ARE_NATIONAL),
)
async def activate_requirement_set(
    version: str, body: Activation, principal: Norms, conn: Db
) -> RequirementSetView:
    _national(principal)
    activated = await service.activate_requirement_set(
        conn=conn, version=version, effective_from=body.effective_from, actor=principal.actor
    )
    return _requirement_set(activated)


class UnmetFinding(BaseModel):
    requirement_id: str
    kind: str
    blocking: bool
    expected: str
    actual: str


class _Judged(BaseModel):
    """One licensee or pending application judged under the set in force and the candidate."""

    kind: Literal["license", "application"]
    key: str = Field(description="the license number or the application id")
    bin: str
    provider_name: str
    region: str
    places: int
    recipients: int = Field(description="recipients the provider serves now")
    passes_in_force: bool
    passes_simulated: bool
    unmet_blocking_in_force: list[str]
    unmet_blocking_simulated: list[str]
    unmet_simulated: list[UnmetFinding]


class LicenseeImpact(_Judged):
    license_number: str
    status: LicenseStatus


class ApplicationImpact(_Judged):
    application_id: str


class ImpactTotals(BaseModel):
    providers_passing: int
    providers_failing: int
    places_passing: int
    places_failing: int
    recipients_passing: int
    recipients_failing: int


class ImpactTotalsPair(BaseModel):
    in_force: ImpactTotals
    simulated: ImpactTotals


class ImpactChange(BaseModel):
    """Who passes under one set and not the other, and the net change."""

    newly_passing: list[str]
    newly_failing: list[str]
    places_gained: int
    places_lost: int
    recipients_gained: int
    recipients_lost: int
    providers: int = Field(description="net change of providers passing")
    places: int = Field(description="net change of places passing")
    recipients: int = Field(description="net change of recipients served by providers passing")


class Impact(BaseModel):
    """A requirement set (`version`) simulated against the set in force, today."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "version": "2026.1",
                    "in_force": "2025.1",
                    "licensees": [],
                    "applications": [],
                    "totals": {
                        "in_force": {
                            "providers_passing": 0,
                            "providers_failing": 0,
                            "places_passing": 0,
                            "places_failing": 0,
                            "recipients_passing": 0,
                            "recipients_failing": 0,
                        },
                        "simulated": {
                            "providers_passing": 0,
                            "providers_failing": 0,
                            "places_passing": 0,
                            "places_failing": 0,
                            "recipients_passing": 0,
                            "recipients_failing": 0,
                        },
                    },
                    "change": {
                        "newly_passing": [],
                        "newly_failing": [],
                        "places_gained": 0,
                        "places_lost": 0,
                        "recipients_gained": 0,
                        "recipients_lost": 0,
                        "providers": 0,
                        "places": 0,
                        "recipients": 0,
                    },
                }
            ]
        }
    )

    version: str
    in_force: str = Field(description="version of the set in force")
    licensees: list[LicenseeImpact]
    applications: list[ApplicationImpact]
    totals: ImpactTotalsPair
    change: ImpactChange


@router.post(
    "/requirement-sets/{version}/impact",
    tags=["requirement sets"],
    response_model=Impact,
    responses=refusals(domain.NO_REQUIREMENT_SET_IN_FORCE),
)
async def simulate_impact(
    version: str, principal: Norms, conn: Db, region: RegionCode | None = None
) -> Impact:
    """Who would pass or fail this set compared with the set in force, and what changes."""
    simulated = await service.simulate_impact(
        conn=conn, version=version, region_scope=_scoped_region(principal, region)
    )
    return Impact.model_validate(simulated, from_attributes=True)


# decisions


class Decision(BaseModel):
    """An entry of the trail of decisions: who did what to which subject, before and after."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 42,
                    "at": "2026-04-01T05:30:00.000001+00:00",
                    "actor": "almaty-department/head-01",
                    "action": "license.suspended",
                    "subject": "license:SSU-75-2026-000001",
                    "before": {
                        "status": "active",
                        "seq": 1,
                        "status_since": "2026-03-10",
                        "status_reason": None,
                        "suspended_until": None,
                    },
                    "after": {
                        "status": "suspended",
                        "seq": 2,
                        "status_since": "2026-04-01",
                        "status_reason": "fire alarm out of order",
                        "suspended_until": "2026-05-01",
                    },
                    "detail": None,
                }
            ]
        }
    )

    id: int
    at: Instant
    actor: str
    action: str
    subject: str = Field(
        description="`application:<id>`, `license:<number>` or `requirement-set:<version>`"
    )
    before: JsonObject | None
    after: JsonObject | None
    detail: JsonObject | None


class DecisionPage(BaseModel):
    items: list[Decision]
    next_cursor: str | None


@router.get("/decisions", tags=["decisions"], response_model=DecisionPage)
async def list_decisions(
    request: Request,
    principal: Reader,
    conn: Db,
    subject: str | None = None,
    action: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> DecisionPage:
    """The trail of decisions and license changes: who, what, when, before and after.

    `subject` is `application:<id>`, `license:<number>` or `requirement-set:<version>`.
    """
    limit = _limit(request, limit)
    after = decode_cursor(cursor, Seq) or 0
    items = await service.list_decisions(
        conn=conn, subject=subject, action=action, after=after, limit=limit
    )
    return DecisionPage(
        items=[Decision.model_validate(i, from_attributes=True) for i in items],
        next_cursor=_next_cursor(items, limit, lambda i: i.id),
    )
