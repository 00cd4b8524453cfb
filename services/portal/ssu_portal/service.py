"""Use cases of the portal: the read model kept from events, the pages' reads, sessions, and
acting through the other services with the signed-in operator's key."""

import hashlib
import io
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import qrcode
import qrcode.image.svg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fpdf import FPDF
from fpdf.enums import XPos, YPos
from ssu_common import ApiKeys, Connection, get_logger
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
    LicenseSuspendedV1,
    RecipientRegisteredV1,
    name_of,
    region_of,
)

from ssu_portal import domain, store
from ssu_portal.domain import Forbidden, NotFound, PortalError, SignInRequired
from ssu_portal.upstream import Disruption, RequirementSetInfo, Upstream, WaitingEntry

log = get_logger(__name__)

# Events in


async def apply_license_event(conn: Connection, *, envelope: Envelope, event: LicenseEvent) -> None:
    """Keep the newest snapshot of a license, its sites and a line of its history."""
    async with conn.transaction():
        reason = getattr(event, "reason", None)
        await store.record_license_history(
            conn,
            number=event.license_number,
            seq=event.seq,
            event_type=envelope.type.removeprefix("licensing.license.").removesuffix(".v1"),
            status=str(event.status),
            effective_date=event.effective_date,
            reason=reason,
        )
        newer = await store.upsert_license(
            conn,
            number=event.license_number,
            bin=event.bin,
            provider_name=event.provider_name,
            legal_form=str(event.legal_form),
            region=event.region,
            status=str(event.status),
            seq=event.seq,
            effective_date=event.effective_date,
            status_reason=reason,
            suspended_until=event.until if isinstance(event, LicenseSuspendedV1) else None,
            subtypes=[{"form": str(s.form), "category": str(s.category)} for s in event.subtypes],
            step_free_access=event.step_free_access,
            shelter=domain.is_shelter(event.subtypes),
        )
        if newer:
            await store.replace_sites(
                conn,
                number=event.license_number,
                region_of_site=[region_of(s.kato) for s in event.sites],
                sites=[s.model_dump() for s in event.sites],
            )


async def apply_recipient_registered(
    conn: Connection, *, secret: str, event: RecipientRegisteredV1, on: date
) -> None:
    await store.upsert_recipient(
        conn, key=domain.recipient_key(secret, event.iin), region=event.region, registered_on=on
    )


async def apply_enrollment_started(
    conn: Connection, *, secret: str, event: EnrollmentStartedV1
) -> None:
    await store.start_enrollment(
        conn,
        enrollment_id=event.enrollment_id,
        key=domain.recipient_key(secret, event.iin),
        license_number=event.license_number,
        site_id=event.site_id,
        region=event.region,
        form=str(event.form),
        start_date=event.start_date,
    )


async def apply_enrollment_moved(
    conn: Connection,
    *,
    secret: str,
    event: EnrollmentEndedV1 | EnrollmentDisruptedV1 | EnrollmentResumedV1,
) -> None:
    status = {
        EnrollmentEndedV1: "ended",
        EnrollmentDisruptedV1: "disrupted",
        EnrollmentResumedV1: "active",
    }[type(event)]
    await store.set_enrollment_status(
        conn,
        enrollment_id=event.enrollment_id,
        key=domain.recipient_key(secret, event.iin),
        region=event.region,
        form=str(event.form),
        status=status,
        end_date=event.end_date if isinstance(event, EnrollmentEndedV1) else None,
    )


async def apply_application_submitted(conn: Connection, *, event: ApplicationSubmittedV1) -> None:
    places = [s.places for s in event.sites if s.places is not None]
    await store.upsert_application(
        conn,
        application_id=event.application_id,
        bin=event.bin,
        provider_name=event.provider_name,
        region=event.region,
        places=sum(places) if places else None,
        requirement_set=event.requirement_set,
        submitted_at=event.submitted_at,
    )


async def apply_application_rejected(conn: Connection, *, event: ApplicationRejectedV1) -> None:
    async with conn.transaction():
        await store.upsert_application(
            conn,
            application_id=event.application_id,
            bin=event.bin,
            provider_name=event.provider_name,
            region=event.region,
            rejected_at=event.decided_at,
        )
        await store.insert_refusals(
            conn,
            application_id=event.application_id,
            findings=[
                (f.requirement_id, f.kind, f.core, f.title_kk, f.title_ru)
                for f in event.findings
                if not f.met
            ],
        )


async def apply_invoice_issued(conn: Connection, *, event: InvoiceIssuedV1) -> None:
    await store.upsert_invoice(
        conn,
        invoice_id=event.invoice_id,
        provider_bin=event.provider_bin,
        region=event.region,
        period=event.period,
        total=event.total,
    )


# Public pages


@dataclass(frozen=True)
class PublicSite:
    """A site as a public page may show it: a shelter's address is left out."""

    site_id: str
    address: str | None
    district: str
    region: str
    places: int | None
    free_places: int | None


@dataclass(frozen=True)
class LicenseDetail:
    license: store.LicenseRow
    sites: list[PublicSite]
    history: list[store.HistoryRow]


def _public_site(row: store.SiteRow | store.CatalogueRow, *, shelter: bool) -> PublicSite:
    return PublicSite(
        site_id=row.site_id,
        address=domain.public_address(row.address, row.kato, shelter=shelter),
        district=domain.district_of(row.kato),
        region=row.region,
        places=row.places,
        free_places=row.free_places,
    )


async def find_licenses(conn: Connection, *, query: str) -> list[store.LicenseRow]:
    """Licenses by number, BIN or a part of the provider's name."""
    q = domain.normalise_query(query)
    if not q:
        return []
    if domain.looks_like_bin(q):
        return await store.find_licenses(conn, number=None, bin=q, name=None, limit=100)
    by_number = await store.find_licenses(conn, number=q, bin=None, name=None, limit=1)
    if by_number:
        return by_number
    return await store.find_licenses(conn, number=None, bin=None, name=q, limit=100)


async def license_detail(conn: Connection, *, number: str) -> LicenseDetail:
    lic = await store.get_license(conn, number)
    if lic is None:
        raise NotFound("license_not_found", number)
    sites = [_public_site(s, shelter=lic.shelter) for s in await store.sites_of(conn, number)]
    return LicenseDetail(
        license=lic, sites=sites, history=await store.license_history(conn, number)
    )


@dataclass(frozen=True)
class CatalogueEntry:
    license_number: str
    provider_name: str
    legal_form: str
    subtypes: list[dict[str, str]]
    step_free_access: bool | None
    shelter: bool
    site: PublicSite


@dataclass(frozen=True)
class CataloguePage:
    entries: list[CatalogueEntry]
    total: int
    page: int
    pages: int


@dataclass(frozen=True)
class CatalogueFilters:
    """What the catalogue was asked for; unknown codes were dropped by the page already."""

    region: str | None
    form: str | None
    category: str | None
    free: bool
    step_free: bool
    sort: str


async def catalogue(
    conn: Connection, *, filters: CatalogueFilters, page: int, per_page: int = 50
) -> CataloguePage:
    rows, total = await store.catalogue(
        conn,
        region=filters.region,
        form=filters.form,
        category=filters.category,
        free_only=filters.free,
        step_free_only=filters.step_free,
        sort=filters.sort,
        limit=per_page,
        offset=(page - 1) * per_page,
    )
    entries = [
        CatalogueEntry(
            license_number=r.license_number,
            provider_name=r.provider_name,
            legal_form=r.legal_form,
            subtypes=r.subtypes,
            step_free_access=r.step_free_access,
            shelter=r.shelter,
            site=_public_site(r, shelter=r.shelter),
        )
        for r in rows
    ]
    return CataloguePage(
        entries=entries, total=total, page=page, pages=max(1, -(-total // per_page))
    )


def verification_url(public_url: str, number: str) -> str:
    return f"{public_url.rstrip('/')}/licenses/{number}"


def qr_svg(url: str) -> str:
    """The QR code of a URL as inline SVG (a path, no external resource)."""
    image = qrcode.make(url, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    return str(image.to_string(encoding="unicode"))


def _line(pdf: FPDF, height: float, text: str, *, align: str = "L") -> None:
    """A text block from the left margin, the next one below it (fpdf2 keeps x otherwise)."""
    pdf.multi_cell(0, height, text, align=align, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def certificate_pdf(
    *, detail: LicenseDetail, lang: str, messages: dict[str, str], url: str, font_dir: Path
) -> bytes:
    """The license certificate as PDF, Kazakh or Russian text in an embedded DejaVu font."""
    lic = detail.license
    pdf = FPDF(format="A4")
    pdf.set_title(f"{messages['certificate_title']} {lic.number}")
    pdf.set_lang(lang)
    pdf.add_font("DejaVu", "", str(font_dir / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(font_dir / "DejaVuSans-Bold.ttf"))
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 18)
    _line(pdf, 10, messages["certificate_title"], align="C")
    pdf.ln(4)
    rows = [
        (messages["license_number"], lic.number),
        (messages["provider"], lic.provider_name),
        (messages["bin"], lic.bin),
        (messages["legal_form"], name_of("legal_form", lic.legal_form, lang)),
        (messages["region"], name_of("region", lic.region, lang)),
        (messages["status"], name_of("license_status", lic.status, lang)),
        (messages["issued_on"], lic.issued_on.isoformat()),
    ]
    for label, value in rows:
        pdf.set_font("DejaVu", "B", 11)
        pdf.cell(60, 8, label)
        pdf.set_font("DejaVu", "", 11)
        _line(pdf, 8, value)
    pdf.ln(2)
    pdf.set_font("DejaVu", "B", 12)
    _line(pdf, 8, messages["subtypes"])
    pdf.set_font("DejaVu", "", 11)
    for s in lic.subtypes:
        _line(
            pdf,
            7,
            f"• {name_of('form', s['form'], lang)}: {name_of('category', s['category'], lang)}",
        )
    pdf.ln(2)
    pdf.set_font("DejaVu", "B", 12)
    _line(pdf, 8, messages["sites"])
    pdf.set_font("DejaVu", "", 11)
    for site in detail.sites:
        where = site.address or f"{messages['district']} {site.district}"
        places = f" — {messages['places']}: {site.places}" if site.places is not None else ""
        _line(pdf, 7, f"• {where}{places}")
    png = io.BytesIO()
    qrcode.make(url, box_size=8, border=2).save(png)
    png.seek(0)
    pdf.ln(4)
    pdf.image(png, w=45)
    pdf.set_font("DejaVu", "", 10)
    _line(pdf, 6, f"{messages['verify_at']} {url}")
    return bytes(pdf.output())


# Monitoring


@dataclass(frozen=True)
class Refusals:
    rejected: int
    rejected_small: int
    by_requirement: list[store.RefusalCount]


@dataclass(frozen=True)
class Monitoring:
    by_region_status: dict[str, dict[str, int]]
    refusals: Refusals
    months: list[store.MonthFigures]
    registered: dict[str, int]
    first: date
    last: date


def _month_back(today: date, months: int) -> date:
    year, month = today.year, today.month - months
    while month < 1:
        month += 12
        year -= 1
    return date(year, month, 1)


async def monitoring(
    conn: Connection, *, small_places: int, region: str | None, today: date, months: int = 6
) -> Monitoring:
    counts: dict[str, dict[str, int]] = {}
    for row in await store.licenses_by_region_and_status(conn):
        if region is None or row.region == region:
            counts.setdefault(row.region, {})[row.status] = row.licenses
    rejected, small = await store.rejected_applications(
        conn, small_places=small_places, region=region
    )
    first = _month_back(today, months - 1)
    last = today.replace(day=1)
    return Monitoring(
        by_region_status=counts,
        refusals=Refusals(
            rejected=rejected,
            rejected_small=small,
            by_requirement=await store.refusals_by_requirement(
                conn, small_places=small_places, region=region
            ),
        ),
        months=await store.recipients_and_payments(conn, first=first, last=last, region=region),
        registered=await store.registered_recipients_by_region(conn),
        first=first,
        last=last,
    )


def total_invoiced(months: list[store.MonthFigures]) -> Decimal:
    return sum((m.invoiced for m in months), Decimal("0"))


# Sessions


@dataclass(frozen=True)
class Operator:
    """A signed-in department or ministry operator."""

    client: str
    region: str | None
    scopes: frozenset[str]
    api_key: str
    csrf_token: str

    @property
    def national(self) -> bool:
        return self.region is None


def _token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _aead(secret: str) -> AESGCM:
    return AESGCM(hashlib.sha256(b"ssu-portal-session-key:" + secret.encode()).digest())


def _seal(secret: str, plain: str) -> bytes:
    nonce = secrets.token_bytes(12)
    return nonce + _aead(secret).encrypt(nonce, plain.encode(), b"portal-session")


def _unseal(secret: str, sealed: bytes) -> str:
    return _aead(secret).decrypt(sealed[:12], sealed[12:], b"portal-session").decode()


async def sign_in(
    conn: Connection, *, keys: ApiKeys, presented: str, secret: str, hours: float
) -> str:
    """Check an operator's key against the key file and open a session; the cookie's token."""
    key = keys.lookup(presented.strip()) if presented.strip() else None
    if key is None:
        raise SignInRequired("key_unknown")
    token = secrets.token_urlsafe(32)
    await store.delete_expired_sessions(conn)
    await store.insert_session(
        conn,
        token_sha256=_token_hash(token),
        client=key.client,
        region=key.region,
        scopes=sorted(key.scopes),
        sealed_key=_seal(secret, presented.strip()),
        csrf_token=secrets.token_urlsafe(32),
        expires_at=datetime.now(UTC) + timedelta(hours=hours),
    )
    log.info("portal.signed_in", client=key.client, region=key.region)
    return token


async def operator_of(conn: Connection, *, token: str | None, secret: str) -> Operator | None:
    if not token:
        return None
    row = await store.get_session(conn, _token_hash(token))
    if row is None:
        return None
    try:
        api_key = _unseal(secret, row.sealed_key)
    except InvalidTag:
        # Sealed under another secret (rotated): the operator signs in again.
        return None
    return Operator(
        client=row.client,
        region=row.region,
        scopes=frozenset(row.scopes),
        api_key=api_key,
        csrf_token=row.csrf_token,
    )


async def sign_out(conn: Connection, *, token: str) -> None:
    await store.delete_session(conn, _token_hash(token))


def require(operator: Operator | None, *scopes: str) -> Operator:
    if operator is None:
        raise SignInRequired("sign_in_required")
    missing = [s for s in scopes if s not in operator.scopes]
    if missing:
        raise Forbidden("scope_missing", ", ".join(missing))
    return operator


def require_national(operator: Operator | None, *scopes: str) -> Operator:
    operator = require(operator, *scopes)
    if not operator.national:
        raise Forbidden("national_only")
    return operator


# The regional board


async def board(*, upstream: Upstream, operator: Operator) -> list[Disruption]:
    """Every disrupted recipient the operator's region has, longest waiting first."""
    items = await upstream.disruptions(key=operator.api_key, region=operator.region)
    return sorted(items, key=lambda d: (-d.days_disrupted, d.enrollment_id))


async def waiting_lines(*, upstream: Upstream, operator: Operator) -> list[WaitingEntry]:
    """The operator's region's waiting lines, each in its order (registry states the order)."""
    return await upstream.waiting(key=operator.api_key, region=operator.region)


OFFER_ANSWERS = ("accept", "decline")


async def answer_offer(
    *, upstream: Upstream, operator: Operator, offer_id: str, answer: str
) -> None:
    """The family answered the department: accepted (registry enrolls them under every rule of
    an enrollment) or declined (the place passes to the next in line)."""
    if answer not in OFFER_ANSWERS:
        raise PortalError("not_an_answer", answer)
    await upstream.answer_offer(key=operator.api_key, offer_id=offer_id, answer=answer)
    log.info("portal.offer_answered", client=operator.client, offer=offer_id, answer=answer)


async def enroll_with_alternative(
    *, upstream: Upstream, operator: Operator, enrollment_id: str, site_id: str, bin: str
) -> str:
    """Enroll a disrupted recipient at one of the alternatives registry offered them; the
    new enrollment's id. Registry checks places, license and region again."""
    current = await upstream.enrollment(key=operator.api_key, enrollment_id=enrollment_id)
    if current.status != "disrupted":
        raise PortalError("not_disrupted", current.status)
    chosen = next(
        (a for a in current.alternatives or [] if a.site_id == site_id and a.bin == bin), None
    )
    if chosen is None:
        raise PortalError("not_an_alternative", site_id)
    body: dict[str, str] = {
        "iin": current.iin,
        "provider_bin": chosen.bin,
        "site_id": chosen.site_id,
        "form": current.form,
        "category": current.category,
    }
    if chosen.license_number:
        body["license_number"] = chosen.license_number
    created = await upstream.enroll(key=operator.api_key, body=body)
    log.info("portal.enrolled", client=operator.client, enrollment=created.id)
    return created.id


async def requirement_sets(*, upstream: Upstream, operator: Operator) -> list[RequirementSetInfo]:
    return await upstream.requirement_sets(key=operator.api_key)


@dataclass(frozen=True)
class ImpactRow:
    kind: str
    key: str
    provider_name: str
    region: str
    places: int
    recipients: int
    passes_in_force: bool
    passes_simulated: bool
    unmet_simulated: list[str]


@dataclass(frozen=True)
class Impact:
    version: str
    in_force: str
    rows: list[ImpactRow]
    totals: dict[str, dict[str, int]]
    change: dict[str, int]


async def simulate(
    *, upstream: Upstream, operator: Operator, version: str, region: str | None
) -> Impact:
    answer = await upstream.impact(key=operator.api_key, version=version, region=region)
    rows = [
        ImpactRow(
            kind=r.kind,
            key=r.key,
            provider_name=r.provider_name,
            region=r.region,
            places=r.places,
            recipients=r.recipients,
            passes_in_force=r.passes_in_force,
            passes_simulated=r.passes_simulated,
            unmet_simulated=list(r.unmet_blocking_simulated),
        )
        for r in [*answer.licensees, *answer.applications]
    ]
    change = answer.change
    return Impact(
        version=answer.version,
        in_force=answer.in_force,
        rows=rows,
        totals=answer.totals,
        change={
            "providers": change.providers,
            "places": change.places,
            "recipients": change.recipients,
            "newly_passing": len(change.newly_passing),
            "newly_failing": len(change.newly_failing),
        },
    )
