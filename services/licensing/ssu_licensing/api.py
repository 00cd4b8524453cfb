"""HTTP API of licensing (DESIGN §5): parse, authorise, call the service, shape the answer."""

import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, Security
from pydantic import BaseModel, ConfigDict, Field
from ssu_common import (
    Connection,
    Principal,
    Problem,
    Seq,
    TimeAndId,
    authorize,
    connection,
    decode_cursor,
    encode_cursor,
    field_error,
    optional_principal,
)
from ssu_contracts import ApplicationStatus, LicenseStatus, RegionCode

from ssu_licensing import domain, service

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


def _page(items: list[dict[str, Any]], limit: int, key: Any) -> dict[str, Any]:
    cursor = encode_cursor(key(items[-1])) if len(items) == limit and items else None
    return {"items": items, "next_cursor": cursor}


def _scoped_region(principal: Principal, region: str | None) -> str | None:
    if principal.region is not None:
        if region is not None and region != principal.region:
            return "none"
        return principal.region
    return region


def _national(principal: Principal) -> None:
    if principal.region is not None:
        raise Problem(403, "requirement sets are national: a regional key cannot change them")


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


# applications


@router.post("/applications", status_code=201, tags=["applications"])
async def submit_application(
    cmd: domain.SubmitApplication, principal: Applicant, conn: Db, response: Response
) -> dict[str, Any]:
    """Apply for a license; the answer carries the findings against the set in force."""
    if not principal.acts_for(cmd.bin):
        raise field_error("bin", f"this key applies only for BIN {principal.bin}", 403)
    created = await service.submit_application(
        conn=conn, cmd=cmd, region_scope=principal.region, by_provider=principal.bin is not None
    )
    response.headers["Location"] = f"/v1/applications/{created['id']}"
    return created


@router.get("/applications", tags=["applications"])
async def list_applications(
    request: Request,
    principal: Reader,
    conn: Db,
    region: RegionCode | None = None,
    status: ApplicationStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
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
    return _page(items, limit, lambda i: [i["submitted_at"].isoformat(), i["id"]])


def _uuid_or_404(value: str, what: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise Problem(404, f"{what} {value} does not exist") from None


@router.get("/applications/{application_id}", tags=["applications"])
async def get_application(application_id: str, principal: Reader, conn: Db) -> dict[str, Any]:
    return await service.get_application(
        conn=conn,
        application_id=_uuid_or_404(application_id, "application"),
        region_scope=principal.region,
    )


@router.post("/applications/{application_id}/inspections", status_code=201, tags=["applications"])
async def record_inspection(
    application_id: str, cmd: domain.RecordInspection, principal: Official, conn: Db
) -> dict[str, Any]:
    """An on-site inspection (`X-SSU-Official` names the inspector); its findings override the
    declared values."""
    return await service.record_inspection(
        conn=conn,
        application_id=_uuid_or_404(application_id, "application"),
        cmd=cmd,
        inspector=principal.actor,
        region_scope=principal.region,
    )


@router.post("/applications/{application_id}/approve", status_code=201, tags=["applications"])
async def approve_application(
    application_id: str,
    principal: Decider,
    conn: Db,
    response: Response,
    body: EffectiveDate | None = None,
) -> dict[str, Any]:
    """Issue a license (201 with it and its `Location`), or 409 listing the unmet blocking
    findings; an official who inspected the application does not approve it (403)."""
    issued = await service.approve_application(
        conn=conn,
        application_id=_uuid_or_404(application_id, "application"),
        inspector=principal.actor,
        region_scope=principal.region,
        effective_date=body.effective_date if body else None,
    )
    response.headers["Location"] = f"/v1/licenses/{issued['number']}"
    return issued


@router.post("/applications/{application_id}/reject", tags=["applications"])
async def reject_application(
    application_id: str, body: Reason, principal: Decider, conn: Db
) -> dict[str, Any]:
    return await service.reject_application(
        conn=conn,
        application_id=_uuid_or_404(application_id, "application"),
        reason=body.reason,
        inspector=principal.actor,
        region_scope=principal.region,
    )


# licenses (reads are public)

# Marks a route as deliberately open in the OpenAPI document; the authorization test reads it.
PUBLIC = {"x-ssu-public": True}
Caller = Annotated[Principal | None, Depends(optional_principal)]


class Names(BaseModel):
    kk: str
    ru: str


class SubtypeView(BaseModel):
    form: str
    category: str
    form_name: Names
    category_name: Names


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


class Site(BaseModel):
    """A site with its address, for keys with `licensing:read`."""

    site_id: str
    places: int | None
    region: str
    region_name: Names
    district: str
    kato: str
    address: str


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

    sites: list[Site]


class LicenseSummary(_LicenseFacts):
    """A license as a list shows it: its facts and totals, no sites (so no address, whatever
    the key); the whole license, with its sites, is `href` away."""

    places: int = Field(description="licensed places over all sites")
    site_count: int
    href: str = Field(description="the whole license: GET it")


class LicensePage(BaseModel):
    items: list[LicenseSummary]
    next_cursor: str | None


def _facts(view: dict[str, Any]) -> dict[str, Any]:
    return {name: view[name] for name in _LicenseFacts.model_fields}


def _license(view: dict[str, Any], caller: Principal | None) -> PublicLicense | License:
    """The public model unless the caller may read addresses: fields are copied by name into
    it, so a field added to the internal view is not public until added here."""
    if caller is not None and "licensing:read" in caller.scopes:
        return License(**_facts(view), sites=[Site(**s) for s in view["sites"]])
    hidden = domain.shelters((s["form"], s["category"]) for s in view["subtypes"])
    return PublicLicense(
        **_facts(view),
        sites=[
            PublicSite(
                site_id=s["site_id"],
                places=s["places"],
                region=s["region"],
                region_name=s["region_name"],
                district=s["district"],
                kato=None if hidden else s["kato"],
                address=None if hidden else s["address"],
            )
            for s in view["sites"]
        ],
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
    views = await service.list_licenses(
        conn=conn, bin=bin, region=region, status=status, after=after, limit=limit
    )
    items = [
        LicenseSummary(**_facts(v), places=v["places"], site_count=v["site_count"], href=v["href"])
        for v in views
    ]
    next_cursor = encode_cursor(views[-1]["number"]) if len(views) == limit else None
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


@router.post("/licenses/{number}/suspend", tags=["licenses"])
async def suspend_license(
    number: str, body: Suspension, principal: Decider, conn: Db
) -> dict[str, Any]:
    return await service.suspend_license(
        conn=conn,
        number=number,
        reason=body.reason,
        until=body.until,
        actor=principal.actor,
        region_scope=principal.region,
        effective_date=body.effective_date,
    )


@router.post("/licenses/{number}/reinstate", tags=["licenses"])
async def reinstate_license(
    number: str, principal: Decider, conn: Db, body: EffectiveDate | None = None
) -> dict[str, Any]:
    return await service.reinstate_license(
        conn=conn,
        number=number,
        actor=principal.actor,
        region_scope=principal.region,
        effective_date=body.effective_date if body else None,
    )


@router.post("/licenses/{number}/revoke", tags=["licenses"])
async def revoke_license(number: str, body: Reason, principal: Decider, conn: Db) -> dict[str, Any]:
    return await service.revoke_license(
        conn=conn,
        number=number,
        reason=body.reason,
        actor=principal.actor,
        region_scope=principal.region,
        effective_date=body.effective_date,
    )


@router.post("/licenses/{number}/sites", status_code=201, tags=["licenses"])
async def add_license_site(
    number: str, site: domain.SiteIn, principal: Decider, conn: Db, response: Response
) -> dict[str, Any]:
    """A branch: the new site amends the license at once, so it is the licensor's decision."""
    amended = await service.add_license_site(
        conn=conn, number=number, site=site, actor=principal.actor, region_scope=principal.region
    )
    response.headers["Location"] = f"/v1/licenses/{number}"
    return amended


@router.post("/licenses/{number}/staffing", tags=["licenses"])
async def amend_license_staffing(
    number: str, cmd: domain.AmendStaffing, principal: Decider, conn: Db
) -> dict[str, Any]:
    """The licensee's staffing table and named workers as they are now (a renewed
    certificate, a new hire): they replace the license's, which is evaluated on today's date;
    the answer carries the findings. Like a new site, the licensor's decision."""
    return await service.amend_license_staffing(
        conn=conn, number=number, cmd=cmd, actor=principal.actor, region_scope=principal.region
    )


# requirement sets


@router.get("/requirement-sets", tags=["requirement sets"])
async def list_requirement_sets(principal: Reader, conn: Db) -> dict[str, Any]:
    return {"items": await service.list_requirement_sets(conn=conn)}


@router.get("/requirement-sets/{version}", tags=["requirement sets"])
async def get_requirement_set(version: str, principal: Reader, conn: Db) -> dict[str, Any]:
    return await service.get_requirement_set(conn=conn, version=version)


@router.post("/requirement-sets", status_code=201, tags=["requirement sets"])
async def create_requirement_set(
    body: NewRequirementSet, principal: Norms, conn: Db, response: Response
) -> dict[str, Any]:
    _national(principal)
    model = domain.RequirementSet.model_validate(body.model_dump(exclude={"effective_from"}))
    created = await service.create_requirement_set(
        conn=conn, model=model, effective_from=body.effective_from, actor=principal.actor
    )
    response.headers["Location"] = f"/v1/requirement-sets/{model.version}"
    return created


@router.post("/requirement-sets/{version}/activate", tags=["requirement sets"])
async def activate_requirement_set(
    version: str, body: Activation, principal: Norms, conn: Db
) -> dict[str, Any]:
    _national(principal)
    return await service.activate_requirement_set(
        conn=conn, version=version, effective_from=body.effective_from, actor=principal.actor
    )


@router.post("/requirement-sets/{version}/impact", tags=["requirement sets"])
async def simulate_impact(
    version: str, principal: Norms, conn: Db, region: RegionCode | None = None
) -> dict[str, Any]:
    """Who would pass or fail this set compared with the set in force, and what changes."""
    return await service.simulate_impact(
        conn=conn, version=version, region_scope=_scoped_region(principal, region)
    )


# decisions


@router.get("/decisions", tags=["decisions"])
async def list_decisions(
    request: Request,
    principal: Reader,
    conn: Db,
    subject: str | None = None,
    action: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> dict[str, Any]:
    """The trail of decisions and license changes: who, what, when, before and after.

    `subject` is `application:<id>`, `license:<number>` or `requirement-set:<version>`.
    """
    limit = _limit(request, limit)
    after = decode_cursor(cursor, Seq) or 0
    items = await service.list_decisions(
        conn=conn, subject=subject, action=action, after=after, limit=limit
    )
    return _page(items, limit, lambda i: i["id"])
