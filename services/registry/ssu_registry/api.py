"""HTTP API of the registry (DESIGN §5): recipients, providers, enrollments, disruptions."""

import json
import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, Security
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from ssu_common import (
    Connection,
    Principal,
    Problem,
    TimeAndId,
    authorize,
    connection,
    decode_cursor,
    encode_cursor,
    field_error,
    read_csv_body,
    refusals,
)
from ssu_contracts import (
    Addressee,
    Bin,
    EnrollmentStatus,
    Iin,
    Language,
    LicenseStatus,
    RecipientCategory,
    RegionCode,
    ServiceForm,
)
from ssu_contracts.ids import iin_birth_date

from ssu_registry import domain, service

router = APIRouter(prefix="/v1", tags=["registry"])

READ = ["registry:read"]
WRITE = ["registry:write"]
# Phones, emails and guardians' IINs of private people are shown only to keys with this scope.
READ_CONTACTS = "registry:read-contacts"
MAX_LIMIT = 200
MAX_IMPORT_BYTES = 64 * 1024 * 1024


def _visible_region(principal: Principal, region: str | None) -> str | None:
    """The region a list is limited to; a restricted key asking for another region gets 404."""
    if principal.region is None:
        return region
    if region is not None and region != principal.region:
        raise Problem(404, f"region {region} not found")
    return principal.region


Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


def _enrollment_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    after = decode_cursor(cursor, TimeAndId)
    return (after[0], str(after[1])) if after else None


def _uuid_cursor(cursor: str | None) -> str | None:
    after = decode_cursor(cursor, uuid.UUID)
    return str(after) if after else None


# Providers


class SubtypeOut(BaseModel):
    form: str
    category: str


class SiteOut(BaseModel):
    site_id: str
    address: str
    kato: str
    region: str
    places: int | None
    occupied: int
    free_places: int | None


class ContactOut(BaseModel):
    email: str | None
    phone: str | None
    language: str


class ProviderOut(BaseModel):
    license_number: str
    bin: str
    name: str
    legal_form: str
    region: str
    status: str
    seq: int
    effective_date: date
    contact: ContactOut
    subtypes: list[SubtypeOut]
    sites: list[SiteOut]
    free_places: int | None


class ProviderPage(BaseModel):
    items: list[ProviderOut]
    next_cursor: str | None


def _provider_out(listing: service.ProviderListing) -> ProviderOut:
    p = listing.provider
    return ProviderOut(
        license_number=p.license_number,
        bin=p.bin,
        name=p.name,
        legal_form=p.legal_form,
        region=p.region,
        status=p.status,
        seq=p.seq,
        effective_date=p.effective_date,
        contact=ContactOut(email=p.email, phone=p.phone, language=p.language),
        subtypes=[SubtypeOut(form=t.form, category=t.category) for t in listing.subtypes],
        sites=[
            SiteOut(
                site_id=s.site_id,
                address=s.address,
                kato=s.kato,
                region=s.region,
                places=s.places,
                occupied=s.occupied,
                free_places=s.free_places,
            )
            for s in listing.sites
        ],
        free_places=listing.free_places,
    )


@router.get("/providers", response_model=ProviderPage)
async def list_providers(
    region: RegionCode | None = None,
    form: ServiceForm | None = None,
    category: RecipientCategory | None = None,
    free: bool = False,
    status: LicenseStatus | None = None,
    bin: str | None = None,
    limit: Limit = 50,
    cursor: str | None = None,
    principal: Principal = Security(authorize, scopes=READ),
    conn: Connection = Depends(connection),
) -> ProviderPage:
    """Licensed providers with their sites and free places (the read model of licenses)."""
    after = decode_cursor(cursor, str)
    listings, more = await service.list_providers(
        conn=conn,
        region=region,
        form=str(form) if form else None,
        category=str(category) if category else None,
        free_only=free,
        status=str(status) if status else None,
        bin=bin,
        after=str(after) if after is not None else None,
        limit=limit,
    )
    items = [_provider_out(listing) for listing in listings]
    next_cursor = encode_cursor(listings[-1].provider.license_number) if more else None
    return ProviderPage(items=items, next_cursor=next_cursor)


# Recipients


class GuardianIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=300)
    phone: str | None = Field(default=None, max_length=40)
    email: str | None = Field(default=None, max_length=320)
    iin: Iin | None = None


class RecipientIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    iin: Iin
    full_name: str = Field(min_length=1, max_length=300)
    birth_date: date
    category: RecipientCategory
    region: RegionCode
    disability_group: int | None = Field(default=None, ge=1, le=3)
    language: Language
    phone: str | None = Field(default=None, max_length=40)
    email: str | None = Field(default=None, max_length=320)
    guardian: GuardianIn | None = None


class GuardianOut(BaseModel):
    name: str
    phone: str | None
    email: str | None
    iin: str | None


class RecipientOut(BaseModel):
    iin: str
    full_name: str
    birth_date: date
    category: str
    region: str
    disability_group: int | None
    language: str
    phone: str | None
    email: str | None
    guardian: GuardianOut | None
    registered_at: datetime
    status: str = "registered"
    deregistered_on: date | None = None
    deregistration_reason: str | None = None


def _sees_contacts(principal: Principal) -> bool:
    return READ_CONTACTS in principal.scopes


def _recipient_out(row: service.RecipientRow, *, contacts: bool = True) -> RecipientOut:
    """The recipient; without `contacts` their and their guardian's phone, email and the
    guardian's IIN are null (the guardian's name stays: whom to ask for)."""
    guardian = (
        GuardianOut(
            name=row.guardian_name,
            phone=row.guardian_phone if contacts else None,
            email=row.guardian_email if contacts else None,
            iin=row.guardian_iin if contacts else None,
        )
        if row.guardian_name
        else None
    )
    return RecipientOut(
        iin=row.iin,
        full_name=row.full_name,
        birth_date=row.birth_date,
        category=row.category,
        region=row.region,
        disability_group=row.disability_group,
        language=row.language,
        phone=row.phone if contacts else None,
        email=row.email if contacts else None,
        guardian=guardian,
        registered_at=row.registered_at,
        status=row.status,
        deregistered_on=row.deregistered_on,
        deregistration_reason=row.deregistration_reason,
    )


@router.post("/recipients", response_model=RecipientOut, status_code=201)
async def register_recipient(
    body: RecipientIn,
    response: Response,
    request: Request,
    principal: Principal = Security(authorize, scopes=WRITE),
    conn: Connection = Depends(connection),
) -> RecipientOut:
    """Register a recipient (201); the same recipient again is 200, a different one 409."""
    if iin_birth_date(body.iin) != body.birth_date:
        raise Problem(
            422,
            f"birth_date: {body.birth_date.isoformat()} does not agree with the IIN",
            errors=[{"field": "birth_date", "message": "does not agree with the IIN"}],
        )
    guardian = body.guardian
    command = service.RegisterRecipient(
        iin=body.iin,
        full_name=body.full_name.strip(),
        birth_date=body.birth_date,
        category=str(body.category),
        region=body.region,
        disability_group=body.disability_group,
        language=str(body.language),
        phone=body.phone,
        email=body.email,
        guardian_name=guardian.name if guardian else None,
        guardian_phone=guardian.phone if guardian else None,
        guardian_email=guardian.email if guardian else None,
        guardian_iin=guardian.iin if guardian else None,
    )
    row, created = await service.register_recipient(
        conn=conn, command=command, region_scope=principal.region, rules=_age_rules(request)
    )
    if not created:
        response.status_code = 200
    response.headers["Location"] = f"/v1/recipients/{body.iin}"
    return _recipient_out(row)


@router.get("/recipients/{iin}", response_model=RecipientOut)
async def get_recipient(
    iin: str,
    principal: Principal = Security(authorize, scopes=READ),
    conn: Connection = Depends(connection),
) -> RecipientOut:
    """A recipient; phones, emails and the guardian's IIN need `registry:read-contacts`."""
    row = await service.get_recipient(conn=conn, iin=iin, region_scope=principal.region)
    return _recipient_out(row, contacts=_sees_contacts(principal))


# Recipients over time

# The last IIN blind index of a page, in hex.
_IndexKey = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


def _index_cursor(cursor: str | None) -> bytes | None:
    after = decode_cursor(cursor, _IndexKey)
    return bytes.fromhex(after) if after else None


class RecipientPage(BaseModel):
    items: list[RecipientOut]
    next_cursor: str | None


@router.get("/recipients", response_model=RecipientPage)
async def list_recipients(
    name: Annotated[str | None, Query(min_length=1, max_length=300)] = None,
    region: RegionCode | None = None,
    category: RecipientCategory | None = None,
    status: Literal["registered", "deregistered"] | None = None,
    limit: Limit = 50,
    cursor: str | None = None,
    principal: Principal = Security(authorize, scopes=READ),
    conn: Connection = Depends(connection),
) -> RecipientPage:
    """Recipients by name (the exact full name, compared case-, space- and ё-insensitively),
    region, category and status; contacts need `registry:read-contacts`."""
    after = _index_cursor(cursor)
    rows = await service.list_recipients(
        conn=conn,
        region=_visible_region(principal, region),
        category=str(category) if category else None,
        status=status,
        name=name,
        after=after,
        limit=limit,
    )
    page = rows[:limit]
    contacts = _sees_contacts(principal)
    next_cursor = encode_cursor(page[-1].iin_index.hex()) if len(rows) > limit else None
    return RecipientPage(
        items=[_recipient_out(r, contacts=contacts) for r in page], next_cursor=next_cursor
    )


class RecipientPatchIn(BaseModel):
    """The fields to change; a field left out stays, `null` clears it (the guardian whole)."""

    model_config = ConfigDict(extra="forbid")

    phone: str | None = Field(default=None, max_length=40)
    email: str | None = Field(default=None, max_length=320)
    category: RecipientCategory | None = None
    disability_group: int | None = Field(default=None, ge=1, le=3)
    guardian: GuardianIn | None = None


def _patch_changes(body: RecipientPatchIn) -> service.RecipientPatch:
    given = body.model_fields_set
    if "category" in given and body.category is None:
        raise Problem(
            422,
            "category: cannot be null",
            errors=[{"field": "category", "message": "cannot be null"}],
        )
    fields: set[str] = {f for f in ("phone", "email", "disability_group", "category") if f in given}
    g = body.guardian
    if "guardian" in given:
        fields |= {"guardian_name", "guardian_phone", "guardian_email", "guardian_iin"}
    return service.RecipientPatch(
        given=frozenset(fields),
        phone=body.phone,
        email=body.email,
        category=str(body.category) if body.category is not None else None,
        disability_group=body.disability_group,
        guardian_name=(g.name.strip() or None) if g else None,
        guardian_phone=g.phone if g else None,
        guardian_email=g.email if g else None,
        guardian_iin=g.iin if g else None,
    )


def _age_rules(request: Request) -> domain.AgeRules:
    settings = request.app.state.runtime.settings
    return domain.AgeRules(
        pension_age_men=settings.pension_age_men, pension_age_women=settings.pension_age_women
    )


@router.patch("/recipients/{iin}", response_model=RecipientOut)
async def update_recipient(
    iin: str,
    body: RecipientPatchIn,
    request: Request,
    principal: Principal = Security(authorize, scopes=WRITE),
    conn: Connection = Depends(connection),
) -> RecipientOut:
    """Change contacts, category, disability group or guardian; each change is kept in the
    recipient's history and published as `registry.recipient.updated.v1`."""
    row = await service.update_recipient(
        conn=conn,
        iin=iin,
        changes=_patch_changes(body),
        actor=principal.actor,
        region_scope=principal.region,
        rules=_age_rules(request),
    )
    return _recipient_out(row, contacts=_sees_contacts(principal))


class HistoryEntryOut(BaseModel):
    version: int
    action: str
    fields: list[str]
    changes: dict[str, dict[str, object]] = Field(
        description="per field {from, to}; contact values are null without read-contacts"
    )
    actor: str
    changed_at: datetime


class HistoryOut(BaseModel):
    iin: str
    items: list[HistoryEntryOut]


@router.get("/recipients/{iin}/history", response_model=HistoryOut)
async def recipient_history(
    iin: str,
    principal: Principal = Security(authorize, scopes=READ),
    conn: Connection = Depends(connection),
) -> HistoryOut:
    """Every change of a recipient, oldest first: what, who and when."""
    entries = await service.recipient_history(conn=conn, iin=iin, region_scope=principal.region)
    contacts = _sees_contacts(principal)

    def shown(field: str, change: dict[str, object]) -> dict[str, object]:
        if contacts or field not in service.CONTACT_FIELDS:
            return change
        return {"from": None, "to": None}

    return HistoryOut(
        iin=iin,
        items=[
            HistoryEntryOut(
                version=e.version,
                action=e.action,
                fields=e.fields,
                changes={f: shown(f, c) for f, c in e.changes.items()},
                actor=e.actor,
                changed_at=e.changed_at,
            )
            for e in entries
        ],
    )


class DeregisterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Literal["moved", "died", "declined"]
    # `date` on the wire; a field named so would hide the type in this class.
    day: date | None = Field(default=None, alias="date", description="from when; today if left out")


@router.post("/recipients/{iin}/deregister", response_model=RecipientOut)
async def deregister_recipient(
    iin: str,
    body: DeregisterIn,
    principal: Principal = Security(authorize, scopes=WRITE),
    conn: Connection = Depends(connection),
) -> RecipientOut:
    """De-register a recipient (moved, died, declined) from a date not in the future; their
    open enrollments end on it and they cannot be enrolled again."""
    row = await service.deregister_recipient(
        conn=conn,
        iin=iin,
        reason=body.reason,
        day=body.day,
        actor=principal.actor,
        region_scope=principal.region,
    )
    return _recipient_out(row, contacts=_sees_contacts(principal))


# Enrollments


class EnrollmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    iin: Iin
    provider_bin: Bin | None = None
    site_id: str = Field(min_length=1)
    form: ServiceForm
    category: RecipientCategory | None = None
    start_date: date | None = None
    license_number: str | None = None


class EndEnrollmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    end_date: date | None = None
    reason: str = Field(default="ended", min_length=1, max_length=500)


class EnrollmentOut(BaseModel):
    id: str
    iin: str
    provider_bin: str
    license_number: str
    site_id: str
    region: str
    form: str
    category: str
    start_date: date
    end_date: date | None
    status: str
    end_reason: str | None
    disrupted_on: date | None
    alternatives: list[dict[str, object]] | None


class EnrollmentPage(BaseModel):
    items: list[EnrollmentOut]
    next_cursor: str | None


def _enrollment_out(row: service.EnrollmentRow) -> EnrollmentOut:
    alternatives = json.loads(row.alternatives) if row.alternatives else None
    return EnrollmentOut(
        id=str(row.id),
        iin=row.iin,
        provider_bin=row.provider_bin,
        license_number=row.license_number,
        site_id=row.site_id,
        region=row.region,
        form=row.form,
        category=row.category,
        start_date=row.start_date,
        end_date=row.end_date,
        status=row.status,
        end_reason=row.end_reason,
        disrupted_on=row.disrupted_on,
        alternatives=alternatives,
    )


@router.post(
    "/enrollments",
    response_model=EnrollmentOut,
    status_code=201,
    responses=refusals(domain.NO_FREE_PLACES, domain.LICENSE_NOT_ACTIVE),
)
async def enroll(
    body: EnrollmentIn,
    request: Request,
    response: Response,
    principal: Principal = Security(authorize, scopes=WRITE),
    conn: Connection = Depends(connection),
) -> EnrollmentOut:
    """Enroll a recipient at a provider's site (license active and covering the subtype,
    places never exceeded, one enrollment per form)."""
    row = await service.enroll(
        conn=conn,
        command=service.EnrollRecipient(
            iin=body.iin,
            provider_bin=body.provider_bin,
            site_id=body.site_id,
            form=str(body.form),
            category=str(body.category) if body.category else None,
            start_date=body.start_date,
            license_number=body.license_number,
        ),
        region_scope=principal.region,
        max_days_ahead=request.app.state.runtime.settings.enrollment_max_days_ahead,
    )
    response.headers["Location"] = f"/v1/enrollments/{row.id}"
    return _enrollment_out(row)


def _uuid_or_404(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise Problem(404, f"enrollment {value} not found") from None


@router.post("/enrollments/{enrollment_id}/end", response_model=EnrollmentOut)
async def end_enrollment(
    enrollment_id: str,
    body: EndEnrollmentIn | None = None,
    principal: Principal = Security(authorize, scopes=WRITE),
    conn: Connection = Depends(connection),
) -> EnrollmentOut:
    body = body or EndEnrollmentIn()
    row = await service.end_enrollment(
        conn=conn,
        enrollment_id=_uuid_or_404(enrollment_id),
        end_date=body.end_date,
        reason=body.reason,
        region_scope=principal.region,
    )
    return _enrollment_out(row)


@router.get("/enrollments/{enrollment_id}", response_model=EnrollmentOut)
async def get_enrollment(
    enrollment_id: str,
    principal: Principal = Security(authorize, scopes=READ),
    conn: Connection = Depends(connection),
) -> EnrollmentOut:
    row = await service.get_enrollment(
        conn=conn, enrollment_id=_uuid_or_404(enrollment_id), region_scope=principal.region
    )
    return _enrollment_out(row)


@router.get("/enrollments", response_model=EnrollmentPage)
async def list_enrollments(
    provider: str | None = None,
    recipient: str | None = None,
    status: EnrollmentStatus | None = None,
    region: RegionCode | None = None,
    limit: Limit = 50,
    cursor: str | None = None,
    principal: Principal = Security(authorize, scopes=READ),
    conn: Connection = Depends(connection),
) -> EnrollmentPage:
    """Enrollments by provider (BIN or license number), recipient (IIN) and status."""
    after = _enrollment_cursor(cursor)
    rows = await service.list_enrollments(
        conn=conn,
        provider=provider,
        recipient=recipient,
        status=str(status) if status else None,
        region=_visible_region(principal, region),
        after=after,
        limit=limit + 1,
    )
    page = rows[:limit]
    next_cursor = (
        encode_cursor([page[-1].created_at.isoformat(), str(page[-1].id)])
        if len(rows) > limit
        else None
    )
    return EnrollmentPage(items=[_enrollment_out(r) for r in page], next_cursor=next_cursor)


# Disruptions


class DisruptionOut(BaseModel):
    enrollment_id: str
    iin: str
    full_name: str
    region: str
    form: str
    category: str
    provider_bin: str
    provider_name: str
    license_number: str
    site_id: str
    disrupted_on: date = Field(description="since when the recipient has had no service")
    days_disrupted: int
    reason: str | None
    alternatives: list[dict[str, object]]
    addressee: dict[str, object]
    state: Literal["disrupted", "unplaced"] = Field(
        description="disrupted: the license is suspended, the place is kept; unplaced: the "
        "license was revoked and the recipient has no place until enrolled again"
    )
    unplaced_on: date | None = Field(
        default=None, description="the revocation date, for an unplaced recipient"
    )


class DisruptionPage(BaseModel):
    items: list[DisruptionOut]
    next_cursor: str | None


@router.get("/disruptions", response_model=DisruptionPage)
async def list_disruptions(
    region: RegionCode | None = None,
    limit: Limit = 100,
    cursor: str | None = None,
    principal: Principal = Security(authorize, scopes=READ),
    conn: Connection = Depends(connection),
) -> DisruptionPage:
    """Every recipient whose enrollment is disrupted (license suspended) or who is unplaced
    (license revoked) and not placed again yet; the addressee's phone and email need
    `registry:read-contacts`."""
    after = _uuid_cursor(cursor)
    contacts = _sees_contacts(principal)
    rows = await service.list_disruptions(
        conn=conn,
        region=_visible_region(principal, region),
        after=after,
        limit=limit + 1,
    )
    page = rows[:limit]
    today = domain.today()
    items = [
        DisruptionOut(
            enrollment_id=r.enrollment_id,
            iin=r.iin,
            full_name=r.full_name,
            region=r.region,
            form=r.form,
            category=r.category,
            provider_bin=r.provider_bin,
            provider_name=r.provider_name,
            license_number=r.license_number,
            site_id=r.site_id,
            disrupted_on=_without_service_since(r),
            days_disrupted=max((today - _without_service_since(r)).days, 0),
            reason=r.disruption_reason if r.state == "disrupted" else r.end_reason,
            alternatives=json.loads(r.alternatives) if r.alternatives else [],
            addressee=_addressee(domain.addressee_for(r.contact, on=today), contacts),
            state=r.state,
            unplaced_on=r.unplaced_on,
        )
        for r in page
    ]
    next_cursor = encode_cursor(page[-1].enrollment_id) if len(rows) > limit else None
    return DisruptionPage(items=items, next_cursor=next_cursor)


def _without_service_since(row: service.DisruptionRow) -> date:
    """A recipient suspended and then revoked has been without service since the suspension."""
    since = row.disrupted_on or row.unplaced_on
    assert since is not None  # the board holds the disrupted and the unplaced only
    return since


def _addressee(addressee: Addressee, contacts: bool) -> dict[str, object]:
    shown = addressee if contacts else addressee.model_copy(update={"phone": None, "email": None})
    return shown.model_dump(mode="json")


# Waiting list and offers


class WaitingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    iin: Iin
    form: ServiceForm
    category: RecipientCategory | None = Field(
        default=None, description="default: the recipient's category"
    )
    preferred_bins: list[Bin] = Field(
        default_factory=list,
        max_length=10,
        description="only these providers' sites are offered; empty: any in the region",
    )
    asked_on: date | None = Field(
        default=None,
        description="when the family asked (a paper list carried over keeps its dates); "
        "default today, never in the future",
    )


class WithdrawIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="withdrawn by the recipient", min_length=1, max_length=500)


class AcceptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start_date: date | None = Field(default=None, description="default today")


class HeldOfferOut(BaseModel):
    offer_id: str
    provider_name: str
    license_number: str
    site_id: str
    made_on: date
    expires_on: date


class WaitingOut(BaseModel):
    id: str
    iin: str
    full_name: str
    region: str
    form: str
    category: str
    preferred_bins: list[str]
    disrupted: bool
    child: bool
    group_one: bool
    asked_on: date
    days_waiting: int
    reason: str | None
    status: Literal["waiting", "placed", "withdrawn"]
    position: int | None = Field(description="place in the line of the region and subtype")
    waiting: int | None = Field(description="recipients in that line")
    offer: HeldOfferOut | None = Field(description="the place held for the recipient now")
    closed_on: date | None
    closed_reason: str | None
    enrollment_id: str | None
    addressee: dict[str, object]


class WaitingPage(BaseModel):
    items: list[WaitingOut]
    next_cursor: str | None


class OfferOut(BaseModel):
    id: str
    request_id: str
    iin: str
    full_name: str
    region: str
    form: str
    category: str
    provider_bin: str
    provider_name: str
    license_number: str
    site_id: str
    site_address: str
    made_on: date
    expires_on: date
    status: Literal["open", "accepted", "declined", "expired", "withdrawn"]
    closed_on: date | None
    enrollment_id: str | None


class OfferPage(BaseModel):
    items: list[OfferOut]
    next_cursor: str | None


def _waiting_out(entry: service.WaitingEntry, contacts: bool) -> WaitingOut:
    today = domain.today()
    row = entry.request
    offer = entry.offer
    held = (
        HeldOfferOut(
            offer_id=offer.offer_id,
            provider_name=offer.provider_name,
            license_number=offer.license_number,
            site_id=offer.site_id,
            made_on=offer.made_on,
            expires_on=offer.expires_on,
        )
        if offer is not None
        else None
    )
    return WaitingOut(
        id=row.request_id,
        iin=row.iin,
        full_name=row.full_name,
        region=row.region,
        form=row.form,
        category=row.category,
        preferred_bins=list(row.preferred_bins),
        disrupted=row.disrupted,
        child=row.child,
        group_one=row.group_one,
        asked_on=row.asked_on,
        days_waiting=max(((row.closed_on or today) - row.asked_on).days, 0),
        reason=row.reason,
        status=row.status,
        position=entry.position,
        waiting=entry.waiting,
        offer=held,
        closed_on=row.closed_on,
        closed_reason=row.closed_reason,
        enrollment_id=row.enrollment_id,
        addressee=_addressee(domain.addressee_for(row.contact, on=today), contacts),
    )


def _offer_out(row: service.OfferRow) -> OfferOut:
    request = row.request
    return OfferOut(
        id=row.offer_id,
        request_id=request.request_id,
        iin=request.iin,
        full_name=request.full_name,
        region=request.region,
        form=request.form,
        category=request.category,
        provider_bin=row.provider_bin,
        provider_name=row.provider_name,
        license_number=row.license_number,
        site_id=row.site_id,
        site_address=row.site_address,
        made_on=row.made_on,
        expires_on=row.expires_on,
        status=row.offer_status,
        closed_on=row.offer_closed_on,
        enrollment_id=row.offer_enrollment_id,
    )


def _request_id(value: str, what: str = "waiting request") -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise Problem(404, f"{what} {value} not found") from None


@router.post(
    "/waiting",
    response_model=WaitingOut,
    status_code=201,
    responses=refusals(domain.ALREADY_WAITING, domain.NO_LINE_FOR_FORM),
)
async def join_waiting(
    body: WaitingIn,
    response: Response,
    principal: Principal = Security(authorize, scopes=WRITE),
    conn: Connection = Depends(connection),
) -> WaitingOut:
    """Put a recipient on the waiting line for a place of a subtype in their region. The line
    is ordered by the registry's stated priority (SSU_REGISTRY_WAITING_PRIORITY; by default
    recipients who lost a place first, then children, then disability group 1, then by the
    date asked). A place free now is offered at once (`offer`)."""
    row = await service.join_waiting(
        conn=conn,
        command=service.JoinWaiting(
            iin=body.iin,
            form=str(body.form),
            category=str(body.category) if body.category else None,
            preferred_bins=tuple(body.preferred_bins),
            asked_on=body.asked_on,
        ),
        region_scope=principal.region,
    )
    response.headers["Location"] = f"/v1/waiting/{row.request.request_id}"
    return _waiting_out(row, _sees_contacts(principal))


@router.get("/waiting", response_model=WaitingPage)
async def list_waiting(
    region: RegionCode | None = None,
    form: ServiceForm | None = None,
    category: RecipientCategory | None = None,
    limit: Limit = 100,
    cursor: str | None = None,
    principal: Principal = Security(authorize, scopes=READ),
    conn: Connection = Depends(connection),
) -> WaitingPage:
    """The waiting lines of a region (or every region), each in its order: by form, category
    and place in line. Contacts need `registry:read-contacts`."""
    after = decode_cursor(cursor, tuple[str, str, int])
    rows = await service.list_waiting(
        conn=conn,
        region=_visible_region(principal, region),
        form=str(form) if form else None,
        category=str(category) if category else None,
        after=after,
        limit=limit + 1,
    )
    page = rows[:limit]
    last = page[-1] if page else None
    next_cursor = (
        encode_cursor([last.request.form, last.request.category, last.position])
        if last is not None and len(rows) > limit
        else None
    )
    contacts = _sees_contacts(principal)
    return WaitingPage(items=[_waiting_out(r, contacts) for r in page], next_cursor=next_cursor)


@router.get("/waiting/{request_id}", response_model=WaitingOut)
async def get_waiting(
    request_id: str,
    principal: Principal = Security(authorize, scopes=READ),
    conn: Connection = Depends(connection),
) -> WaitingOut:
    row = await service.get_waiting(
        conn=conn, request_id=_request_id(request_id), region_scope=principal.region
    )
    return _waiting_out(row, _sees_contacts(principal))


@router.post("/waiting/{request_id}/withdraw", response_model=WaitingOut)
async def withdraw_waiting(
    request_id: str,
    body: WithdrawIn | None = None,
    principal: Principal = Security(authorize, scopes=WRITE),
    conn: Connection = Depends(connection),
) -> WaitingOut:
    """The recipient no longer waits; a place held for them passes to the next in line."""
    row = await service.withdraw_waiting(
        conn=conn,
        request_id=_request_id(request_id),
        reason=(body or WithdrawIn()).reason,
        region_scope=principal.region,
    )
    return _waiting_out(row, _sees_contacts(principal))


@router.get("/offers", response_model=OfferPage)
async def list_offers(
    region: RegionCode | None = None,
    status: Literal["open", "accepted", "declined", "expired", "withdrawn"] | None = None,
    limit: Limit = 100,
    cursor: str | None = None,
    principal: Principal = Security(authorize, scopes=READ),
    conn: Connection = Depends(connection),
) -> OfferPage:
    """Places offered to waiting recipients, by region and state."""
    rows = await service.list_offers(
        conn=conn,
        region=_visible_region(principal, region),
        status=status,
        after=_uuid_cursor(cursor),
        limit=limit + 1,
    )
    page = rows[:limit]
    next_cursor = encode_cursor(page[-1].offer_id) if len(rows) > limit else None
    return OfferPage(items=[_offer_out(r) for r in page], next_cursor=next_cursor)


@router.get("/offers/{offer_id}", response_model=OfferOut)
async def get_offer(
    offer_id: str,
    principal: Principal = Security(authorize, scopes=READ),
    conn: Connection = Depends(connection),
) -> OfferOut:
    row = await service.get_offer(
        conn=conn, offer_id=_request_id(offer_id, "offer"), region_scope=principal.region
    )
    return _offer_out(row)


@router.post(
    "/offers/{offer_id}/accept",
    response_model=OfferOut,
    # Accepting enrolls: every refusal of an enrollment may answer it too.
    responses=refusals(domain.OFFER_CLOSED, domain.LICENSE_NOT_ACTIVE, domain.NO_FREE_PLACES),
)
async def accept_offer(
    offer_id: str,
    request: Request,
    body: AcceptIn | None = None,
    principal: Principal = Security(authorize, scopes=WRITE),
    conn: Connection = Depends(connection),
) -> OfferOut:
    """The family accepted: the recipient is enrolled at the offered site (409 when the offer
    is no longer open or has expired)."""
    row = await service.accept_offer(
        conn=conn,
        offer_id=_request_id(offer_id, "offer"),
        start_date=(body or AcceptIn()).start_date,
        region_scope=principal.region,
        max_days_ahead=request.app.state.runtime.settings.enrollment_max_days_ahead,
    )
    return _offer_out(row)


@router.post(
    "/offers/{offer_id}/decline", response_model=OfferOut, responses=refusals(domain.OFFER_CLOSED)
)
async def decline_offer(
    offer_id: str,
    principal: Principal = Security(authorize, scopes=WRITE),
    conn: Connection = Depends(connection),
) -> OfferOut:
    """The family declined: the place passes to the next in line; the recipient keeps their
    place in line and is not offered this site again."""
    row = await service.decline_offer(
        conn=conn, offer_id=_request_id(offer_id, "offer"), region_scope=principal.region
    )
    return _offer_out(row)


# Bulk import


class RowErrorOut(BaseModel):
    line: int
    field: str
    reason: str


class ImportOut(BaseModel):
    rows: int
    stored: int
    unchanged: int
    rejected: int = Field(description="bad rows, all of them")
    errors: list[RowErrorOut] = Field(
        description="the first bad rows by line, at most SSU_MAX_IMPORT_ERRORS (100) of them"
    )


@router.post(
    "/recipients/import",
    response_model=ImportOut,
    openapi_extra={
        "requestBody": {"content": {"text/csv": {"schema": {"type": "string"}}}, "required": True}
    },
)
async def import_recipients(
    request: Request,
    principal: Principal = Security(authorize, scopes=WRITE),
    conn: Connection = Depends(connection),
) -> ImportOut:
    """Import recipients from a CSV body (header: iin, full_name, birth_date, category, region,
    disability_group, language, guardian_name, guardian_phone, guardian_email)."""
    text = await read_csv_body(request, MAX_IMPORT_BYTES)
    result = await service.import_recipients(
        conn=conn,
        text=text,
        region_scope=principal.region,
        max_errors=request.app.state.runtime.settings.max_import_errors,
    )
    return ImportOut(
        rows=result.rows,
        stored=result.stored,
        unchanged=result.unchanged,
        rejected=result.rejected,
        errors=[RowErrorOut(line=e.line, field=e.field, reason=e.reason) for e in result.errors],
    )


# Deaths (notices of the state population register)


class DeathIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    iin: Iin
    died_on: date
    act_number: str | None = Field(
        default=None,
        max_length=domain.MAX_ACT_NUMBER,
        description="the civil registry's act record of the death",
    )


class DeathOut(BaseModel):
    outcome: Literal["recorded", "unchanged", "not_recipient"] = Field(
        description="recorded: de-registered for death now; unchanged: nothing was left to do;"
        " not_recipient: the person is no recipient"
    )
    died_on: date


@router.post("/deaths", response_model=DeathOut)
async def record_death(
    body: DeathIn,
    principal: Principal = Security(authorize, scopes=WRITE),
    conn: Connection = Depends(connection),
) -> DeathOut:
    """A notice of death: the recipient is de-registered (died) on the date, their open
    enrollments end on it (the day of death is the last date of service, so it is paid) and
    `registry.recipient.deregistered.v1` is published. National keys only."""
    outcome = await service.record_death(
        conn=conn,
        notice=domain.DeathNotice(body.iin, body.died_on, body.act_number),
        actor=principal.actor,
        region_scope=principal.region,
    )
    return DeathOut(outcome=outcome, died_on=body.died_on)  # type: ignore[arg-type]


class DeathsImportOut(BaseModel):
    rows: int
    recorded: int
    unchanged: int
    not_recipients: int = Field(description="notices of people who are no recipients")
    rejected: int = Field(description="bad rows, all of them")
    errors: list[RowErrorOut] = Field(
        description="the first bad rows by line, at most SSU_MAX_IMPORT_ERRORS (100) of them"
    )


@router.post(
    "/deaths/import",
    response_model=DeathsImportOut,
    openapi_extra={
        "requestBody": {"content": {"text/csv": {"schema": {"type": "string"}}}, "required": True}
    },
)
async def import_deaths(
    request: Request,
    principal: Principal = Security(authorize, scopes=WRITE),
    conn: Connection = Depends(connection),
) -> DeathsImportOut:
    """Record the register's notices from a CSV body (header: iin, died_on, act_number); the
    same file again changes nothing. National keys only."""
    text = await read_csv_body(request, MAX_IMPORT_BYTES)
    result = await service.import_deaths(
        conn=conn,
        text=text,
        actor=principal.actor,
        region_scope=principal.region,
        max_errors=request.app.state.runtime.settings.max_import_errors,
    )
    return DeathsImportOut(
        rows=result.rows,
        recorded=result.recorded,
        unchanged=result.unchanged,
        not_recipients=result.not_recipients,
        rejected=result.rejected,
        errors=[RowErrorOut(line=e.line, field=e.field, reason=e.reason) for e in result.errors],
    )


# Statistics


class ProviderStatusCountsOut(BaseModel):
    active: int
    suspended: int
    revoked: int


class ProviderCountsOut(BaseModel):
    """Providers licensed on the day (not revoked), by ownership, and all by status."""

    total: int = Field(description="Providers whose license is not revoked.")
    state: int
    ngo: int
    private: int
    by_status: ProviderStatusCountsOut


class PlaceCountsOut(BaseModel):
    total: int
    occupied: int
    free: int


class ServedOut(BaseModel):
    """Distinct recipients served on the day; each breakdown keyed by its code."""

    total: int
    by_form: dict[str, int] = Field(description="By service form (ServiceForm codes).")
    by_category: dict[str, int] = Field(description="By category (RecipientCategory codes).")
    by_age_band: dict[str, int] = Field(description="By age band (`0-17`, `18-64`, `65+`).")
    by_legal_form: dict[str, int] = Field(description="By the provider's ownership.")


class WaitingLineOut(BaseModel):
    form: str
    category: str
    recipients: int
    median_days: float | None


class WaitingFiguresOut(BaseModel):
    recipients: int = Field(description="Recipients waiting for a place on the day.")
    median_days: float | None = Field(description="Median days waited so far; null if none.")
    by_line: list[WaitingLineOut]


class RegionFiguresOut(BaseModel):
    region: str
    name_kk: str | None
    name_ru: str | None
    providers: ProviderCountsOut
    places: PlaceCountsOut
    recipients_served: ServedOut
    disrupted_recipients: int
    unplaced_recipients: int
    waiting: WaitingFiguresOut


class ProviderFiguresOut(BaseModel):
    license_number: str
    bin: str
    name: str
    legal_form: str
    status: str
    places: int
    recipients_served: int


class StatisticsOut(BaseModel):
    """Figures for the country (or the region asked for) as of a day, and per region; with a
    region, its names and each of its providers as well."""

    as_of: date
    region: str | None
    providers: ProviderCountsOut
    places: PlaceCountsOut
    recipients_served: ServedOut
    disrupted_recipients: int
    unplaced_recipients: int
    waiting: WaitingFiguresOut
    regions: list[RegionFiguresOut]
    name_kk: str | None = Field(default=None, description="Only with `region`.")
    name_ru: str | None = Field(default=None, description="Only with `region`.")
    by_provider: list[ProviderFiguresOut] | None = Field(
        default=None, description="Only with `region`: each provider of the region."
    )


@router.get("/statistics", response_model=StatisticsOut, response_model_exclude_unset=True)
async def statistics(
    region: RegionCode | None = None,
    as_of: Annotated[
        date | None,
        Query(
            description="the date the figures hold on (YYYY-MM-DD, not after today in "
            "Asia/Almaty); default today"
        ),
    ] = None,
    principal: Principal = Security(authorize, scopes=READ),
    conn: Connection = Depends(connection),
) -> StatisticsOut:
    """Providers by ownership, places, recipients served by form, category and age band, and
    disrupted and unplaced recipients, as of a date: for the country (or one region) and per
    region."""
    today = domain.today()
    if as_of is not None and as_of > today:
        raise field_error("query.as_of", f"must not be after today ({today.isoformat()})")
    figures = await service.statistics(
        conn=conn, region=_visible_region(principal, region), as_of=as_of
    )
    return StatisticsOut.model_validate(figures)
