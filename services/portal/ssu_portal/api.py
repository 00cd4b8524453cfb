"""Pages: parse the request, check the session and its CSRF token, call the service, render.

Public pages need no key and no JavaScript. Operators sign in with their API key; the session
is kept server-side (`sessions`), the cookie holds only a random token.
"""

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from ssu_common import Connection, connection
from ssu_contracts import REGIONS, RecipientCategory, ServiceForm

from ssu_portal import domain, pages, service
from ssu_portal.domain import CATALOGUE_SORTS, Forbidden, PortalError
from ssu_portal.settings import Settings
from ssu_portal.upstream import Upstream

router = APIRouter(include_in_schema=False)

SESSION_COOKIE = "ssu_portal_session"
# Before sign-in there is no session to hold the CSRF token: the sign-in form's token is
# also set as a cookie and the two must agree (double submit).
SIGNIN_CSRF_COOKIE = "ssu_portal_signin_csrf"
LANG_COOKIE = "lang"
YEAR = 365 * 24 * 3600

# Pages take nothing from elsewhere: a closed network must be able to serve them whole.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'none'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

Db = Annotated[Connection, Depends(connection)]


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.runtime.settings
    return settings


def upstream_of(request: Request) -> Upstream:
    upstream: Upstream = request.app.state.upstream
    return upstream


def language(request: Request) -> str:
    return domain.choose_language(
        request.query_params.get("lang"),
        request.cookies.get(LANG_COOKIE),
        request.headers.get("accept-language"),
    )


def _cookie_secure(request: Request) -> bool:
    return not settings_of(request).development


def html(
    request: Request,
    template: str,
    *,
    status: int = 200,
    operator: service.Operator | None = None,
    **context: object,
) -> HTMLResponse:
    """Render a page in the person's language and keep that choice in a cookie."""
    lang = language(request)
    query = {k: v for k, v in request.query_params.items() if k != "lang"}
    body = pages.render(
        template,
        lang=lang,
        path=request.url.path,
        query=query,
        operator=operator,
        **context,
    )
    response = HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)
    response.set_cookie(
        LANG_COOKIE,
        lang,
        max_age=YEAR,
        httponly=True,
        samesite="lax",
        secure=_cookie_secure(request),
    )
    return response


def error_page(request: Request, exc: PortalError, operator: service.Operator | None) -> Response:
    return html(
        request,
        "error.html",
        status=exc.status,
        operator=operator,
        error_key=exc.key,
        detail=exc.detail,
        upstream_status=getattr(exc, "upstream_status", None),
    )


async def current_operator(request: Request, conn: Db) -> service.Operator | None:
    return await service.operator_of(
        conn, token=request.cookies.get(SESSION_COOKIE), secret=settings_of(request).secret
    )


Operator = Annotated[service.Operator | None, Depends(current_operator)]


def check_csrf(operator: service.Operator, presented: str) -> None:
    if not hmac.compare_digest(operator.csrf_token.encode(), presented.encode()):
        raise Forbidden("csrf")


# Public


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, operator: Operator) -> Response:
    return html(request, "home.html", operator=operator)


@router.get("/licenses", response_class=HTMLResponse)
async def search_licenses(
    request: Request,
    conn: Db,
    operator: Operator,
    q: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    found = await service.find_licenses(conn, query=q)
    return html(request, "licenses.html", operator=operator, q=q, found=found)


@router.get("/licenses/{number}", response_class=HTMLResponse)
async def license_page(request: Request, number: str, conn: Db, operator: Operator) -> Response:
    try:
        detail = await service.license_detail(conn, number=number)
    except PortalError as exc:
        return error_page(request, exc, operator)
    return html(request, "license.html", operator=operator, d=detail)


@router.get("/licenses/{number}/certificate", response_class=HTMLResponse)
async def certificate(request: Request, number: str, conn: Db, operator: Operator) -> Response:
    try:
        detail = await service.license_detail(conn, number=number)
    except PortalError as exc:
        return error_page(request, exc, operator)
    url = service.verification_url(settings_of(request).public_url, number)
    return html(
        request,
        "certificate.html",
        operator=operator,
        d=detail,
        verify_url=url,
        qr=service.qr_svg(url),
    )


@router.get("/licenses/{number}/certificate.pdf")
async def certificate_pdf(request: Request, number: str, conn: Db, operator: Operator) -> Response:
    try:
        detail = await service.license_detail(conn, number=number)
    except PortalError as exc:
        return error_page(request, exc, operator)
    settings = settings_of(request)
    lang = language(request)
    url = service.verification_url(settings.public_url, number)
    body = service.certificate_pdf(
        detail=detail, lang=lang, messages=pages.messages(lang), url=url, font_dir=settings.font_dir
    )
    return Response(
        body,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="license-{number}-{lang}.pdf"'},
    )


def _choice(value: str | None, allowed: frozenset[str] | tuple[str, ...]) -> str | None:
    """A filter's value when it is one of the known codes; anything else means no filter."""
    return value if value in allowed else None


_FORMS = frozenset(str(f) for f in ServiceForm)
_CATEGORIES = frozenset(str(c) for c in RecipientCategory)
_REGIONS = frozenset(REGIONS)


@router.get("/providers", response_class=HTMLResponse)
async def providers(
    request: Request,
    conn: Db,
    operator: Operator,
    region: str | None = None,
    form: str | None = None,
    category: str | None = None,
    free: str | None = None,
    step_free: str | None = None,
    sort: str = "free",
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    filters = service.CatalogueFilters(
        region=_choice(region, _REGIONS),
        form=_choice(form, _FORMS),
        category=_choice(category, _CATEGORIES),
        free=free == "1",
        step_free=step_free == "1",
        sort=_choice(sort, CATALOGUE_SORTS) or "free",
    )
    result = await service.catalogue(conn, filters=filters, page=page)
    return html(
        request,
        "providers.html",
        operator=operator,
        result=result,
        f=filters,
        sorts=CATALOGUE_SORTS,
    )


# Sign in and out


@router.get("/signin", response_class=HTMLResponse)
async def signin_form(request: Request, operator: Operator) -> Response:
    return _signin_page(request, operator)


def _signin_page(
    request: Request,
    operator: service.Operator | None,
    *,
    error_key: str | None = None,
    status: int = 200,
) -> Response:
    token = secrets.token_urlsafe(32)
    response = html(
        request, "signin.html", status=status, operator=operator, csrf=token, error_key=error_key
    )
    response.set_cookie(
        SIGNIN_CSRF_COOKIE,
        token,
        max_age=3600,
        httponly=True,
        samesite="strict",
        secure=_cookie_secure(request),
        path="/signin",
    )
    return response


@router.post("/signin")
async def signin(
    request: Request,
    conn: Db,
    operator: Operator,
    api_key: Annotated[str, Form(max_length=500)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    expected = request.cookies.get(SIGNIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected.encode(), csrf.encode()):
        return _signin_page(request, operator, error_key="csrf", status=403)
    settings = settings_of(request)
    try:
        token = await service.sign_in(
            conn,
            keys=request.app.state.api_keys,
            presented=api_key,
            secret=settings.secret,
            hours=settings.session_hours,
        )
    except PortalError as exc:
        return _signin_page(request, operator, error_key=exc.key, status=exc.status)
    signed_in = await service.operator_of(conn, token=token, secret=settings.secret)
    target = "/monitoring" if signed_in is not None and signed_in.national else "/board"
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(settings.session_hours * 3600),
        httponly=True,
        samesite="lax",
        secure=_cookie_secure(request),
    )
    response.delete_cookie(SIGNIN_CSRF_COOKIE, path="/signin")
    return response


@router.post("/signout")
async def signout(
    request: Request,
    conn: Db,
    operator: Operator,
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    if operator is not None:
        check_csrf(operator, csrf)
        await service.sign_out(conn, token=request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


# The regional board


@router.get("/board", response_class=HTMLResponse)
async def board(
    request: Request,
    operator: Operator,
    done: str | None = None,
    answered: str | None = None,
) -> Response:
    try:
        who = service.require(operator, "registry:read")
        items = await service.board(upstream=upstream_of(request), operator=who)
        waiting = await service.waiting_lines(upstream=upstream_of(request), operator=who)
    except PortalError as exc:
        return error_page(request, exc, operator)
    return html(
        request,
        "board.html",
        operator=who,
        items=items,
        waiting=waiting,
        done=done is not None,
        answered=answered if answered in service.OFFER_ANSWERS else None,
        today=domain.almaty_today(),
    )


@router.post("/board/enroll")
async def enroll_from_board(
    request: Request,
    operator: Operator,
    enrollment_id: Annotated[str, Form(max_length=64)],
    alternative: Annotated[str, Form(max_length=200)],
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    try:
        who = service.require(operator, "registry:read", "registry:write")
        check_csrf(who, csrf)
        bin_, _, site_id = alternative.partition("/")
        await service.enroll_with_alternative(
            upstream=upstream_of(request),
            operator=who,
            enrollment_id=enrollment_id,
            site_id=site_id,
            bin=bin_,
        )
    except PortalError as exc:
        return error_page(request, exc, operator)
    # Post/redirect/get: a reload does not enroll twice.
    return RedirectResponse("/board?done=1", status_code=303)


@router.post("/board/offers")
async def answer_offer_from_board(
    request: Request,
    operator: Operator,
    offer_id: Annotated[str, Form(max_length=64)],
    answer: Annotated[str, Form(max_length=16)],
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """The department records the family's answer to a place offered to them."""
    try:
        who = service.require(operator, "registry:read", "registry:write")
        check_csrf(who, csrf)
        await service.answer_offer(
            upstream=upstream_of(request), operator=who, offer_id=offer_id, answer=answer
        )
    except PortalError as exc:
        return error_page(request, exc, operator)
    return RedirectResponse(f"/board?answered={answer}", status_code=303)


# Ministry monitoring


@router.get("/monitoring", response_class=HTMLResponse)
async def monitoring(
    request: Request,
    conn: Db,
    operator: Operator,
    region: str | None = None,
) -> Response:
    try:
        who = service.require_national(operator, "licensing:read")
    except PortalError as exc:
        return error_page(request, exc, operator)
    chosen = _choice(region, _REGIONS)
    figures = await service.monitoring(
        conn,
        small_places=settings_of(request).small_centre_places,
        region=chosen,
        today=domain.almaty_today(),
    )
    return html(
        request,
        "monitoring.html",
        operator=who,
        m=figures,
        region=chosen,
        small=settings_of(request).small_centre_places,
        total_invoiced=service.total_invoiced(figures.months),
    )


@router.get("/monitoring/impact", response_class=HTMLResponse)
async def impact_form(request: Request, operator: Operator) -> Response:
    try:
        who = service.require_national(operator, "licensing:read", "licensing:norms")
        sets = await service.requirement_sets(upstream=upstream_of(request), operator=who)
    except PortalError as exc:
        return error_page(request, exc, operator)
    return html(
        request,
        "impact.html",
        operator=who,
        sets=sets,
        impact=None,
        chart=None,
        chosen=None,
        region=None,
    )


@router.post("/monitoring/impact", response_class=HTMLResponse)
async def impact(
    request: Request,
    operator: Operator,
    version: Annotated[str, Form(max_length=50)],
    region: Annotated[str, Form(max_length=9)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    try:
        who = service.require_national(operator, "licensing:read", "licensing:norms")
        check_csrf(who, csrf)
        upstream = upstream_of(request)
        sets = await service.requirement_sets(upstream=upstream, operator=who)
        if version not in {s.version for s in sets}:
            raise PortalError("unknown_requirement_set", version)
        chosen_region = _choice(region, _REGIONS)
        result = await service.simulate(
            upstream=upstream, operator=who, version=version, region=chosen_region
        )
    except PortalError as exc:
        return error_page(request, exc, operator)
    t = pages.messages(language(request))
    chart = domain.bar_chart_svg(
        title=f"{t['impact_chart_title']} {result.in_force} / {result.version}",
        series=[f"{t['in_force']} {result.in_force}", f"{t['simulated']} {result.version}"],
        bars=[
            domain.Bar(
                t["providers_passing"],
                (
                    result.totals["in_force"]["providers_passing"],
                    result.totals["simulated"]["providers_passing"],
                ),
            ),
            domain.Bar(
                t["places_passing"],
                (
                    result.totals["in_force"]["places_passing"],
                    result.totals["simulated"]["places_passing"],
                ),
            ),
            domain.Bar(
                t["recipients_passing"],
                (
                    result.totals["in_force"]["recipients_passing"],
                    result.totals["simulated"]["recipients_passing"],
                ),
            ),
        ],
    )
    return html(
        request,
        "impact.html",
        operator=who,
        sets=sets,
        impact=result,
        chart=chart,
        chosen=version,
        region=chosen_region,
    )


async def on_portal_error(request: Request, exc: Exception) -> Response:
    """A refusal raised outside a page's own handling, shown as a page in the person's language."""
    assert isinstance(exc, PortalError)
    return error_page(request, exc, None)
