"""RFC 9457 problem details for every error an API returns."""

from collections.abc import Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ssu_common.errors import (
    GENERAL,
    KINDS,
    DomainError,
    Language,
    ProblemKind,
    general,
    language_of,
)
from ssu_common.jsontypes import Json, JsonObject, OpenApiDocument
from ssu_common.logging import get_logger

log = get_logger(__name__)

PROBLEM_JSON = "application/problem+json"
_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class Problem(Exception):
    """An error answered as problem details; extra keyword arguments become members."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        type_: str | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Json,
    ) -> None:
        super().__init__(detail)
        self.headers = headers
        self.status = status
        self.detail = detail
        self.title = title
        self.type = type_
        self.extensions: JsonObject = extensions

    def response(self, instance: str, language: Language = "en") -> JSONResponse:
        """This problem as an `application/problem+json` response about `instance`."""
        return problem_response(
            self.status,
            self.detail,
            title=self.title,
            type_=self.type,
            instance=instance,
            headers=self.headers,
            language=language,
            **self.extensions,
        )


def field_error(field: str, message: str, status: int = 422) -> Problem:
    """A problem naming the one field at fault."""
    return Problem(status, f"{field}: {message}", errors=[{"field": field, "message": message}])


def problem_response(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    type_: str | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    language: Language = "en",
    **extensions: Json,
) -> JSONResponse:
    """A problem body; without a type of its own, the general kind of its status (errors.py),
    whose title is given in the language asked for."""
    kind = KINDS.get(type_.removeprefix("/problems/")) if type_ else general(status)
    body: JsonObject = {
        "type": type_ or (kind.type if kind else "about:blank"),
        "title": title or (kind.title.pick(language) if kind else _TITLES.get(status, "Error")),
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(extensions)
    answer_headers = {**(headers or {}), "Content-Language": language}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=answer_headers)


def domain_problem(exc: DomainError, *, instance: str, language: Language) -> JSONResponse:
    """A domain refusal answered once for HTTP: its kind's type and title, `detail` in the
    language asked for, the field at fault in `errors`."""
    detail = exc.texts.pick(language)
    extensions: JsonObject = dict(exc.extra)
    if exc.field:
        extensions["errors"] = [{"field": exc.field, "message": detail}]
    return problem_response(
        exc.kind.status,
        detail,
        title=exc.kind.title.pick(language),
        type_=exc.kind.type,
        instance=instance,
        headers=None,
        language=language,
        **extensions,
    )


def _language(request: Request) -> Language:
    return language_of(request.headers.get("accept-language"))


def _field_of(loc: Sequence[int | str]) -> str:
    parts = [str(p) for p in loc]
    # "body" alone names the whole document (malformed JSON); otherwise drop the prefix.
    if len(parts) > 1 and parts[0] in {"body", "query", "path", "header"}:
        return ".".join(parts[1:]) if parts[0] == "body" else f"{parts[0]}.{'.'.join(parts[1:])}"
    return ".".join(parts)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return exc.response(request.url.path, _language(request))

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        return domain_problem(exc, instance=request.url.path, language=_language(request))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        found = [
            (_field_of(e.get("loc", ())), e.get("msg", "invalid"), e.get("type", "value_error"))
            for e in exc.errors()
        ]
        errors: list[Json] = [
            {"field": field, "message": message, "type": type_} for field, message, type_ in found
        ]
        detail = "; ".join(f"{field}: {message}" for field, message, _ in found[:5])
        return problem_response(
            422, detail, instance=request.url.path, language=_language(request), errors=errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(
            exc.status_code,
            str(exc.detail),
            instance=request.url.path,
            headers=dict(exc.headers) if exc.headers else None,
            language=_language(request),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("http.unhandled", path=request.url.path)
        return problem_response(
            500, "unexpected error; it has been logged", instance=request.url.path
        )


PROBLEM_SCHEMA: JsonObject = {
    "title": "Problem",
    "description": "RFC 9457 problem details; `errors` names each field at fault.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
    "additionalProperties": True,
}


def _example(kind: ProblemKind) -> JsonObject:
    return {
        "summary": kind.title.en,
        "value": {
            "type": kind.type,
            "title": kind.title.en,
            "status": kind.status,
            "detail": kind.explanation.en,
        },
    }


def refusals(*kinds: ProblemKind) -> dict[int | str, JsonObject]:
    """The `responses=` of a route that may refuse with these kinds: one response per status,
    each kind an example under it, so a generated client and its reader see every problem type
    the operation answers (`document_problems` adds the schema and the general 401/403/404)."""
    descriptions: dict[int, str] = {}
    examples: dict[int, JsonObject] = {}
    for k in kinds:
        if k.status in descriptions:
            descriptions[k.status] = f"{descriptions[k.status]}; {k.title.en}"
        else:
            descriptions[k.status], examples[k.status] = k.title.en, {}
        examples[k.status][k.slug] = _example(k)
    return {
        status: {
            "description": description,
            "content": {PROBLEM_JSON: {"examples": examples[status]}},
        }
        for status, description in descriptions.items()
    }


# What FastAPI documents for its 422 by default; ours is a problem.
_FASTAPI_INVALID = {"$ref": "#/components/schemas/HTTPValidationError"}


def _answers_other_body(response: OpenApiDocument) -> bool:
    """An error response that declares a body of its own (the report of `/health/ready`'s 503),
    not a problem."""
    return any(
        media != PROBLEM_JSON and body.get("schema") != _FASTAPI_INVALID
        for media, body in response.get("content", {}).items()
    )


def document_problems(openapi: OpenApiDocument) -> OpenApiDocument:
    """Describe every error response as what it is: `application/problem+json`, with the
    problem types it may carry as examples. An operation behind a key documents 401 and 403;
    one whose path names a resource documents 404."""
    components = openapi.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = PROBLEM_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    ref = {"$ref": "#/components/schemas/Problem"}
    for path, operations in openapi.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if operation.get("security"):
                for status in (401, 403):
                    responses.setdefault(str(status), {"description": GENERAL[status].title.en})
            if "{" in path:
                responses.setdefault("404", {"description": GENERAL[404].title.en})
            if (
                operation.get("security")
                or operation.get("parameters")
                or operation.get("requestBody")
            ):
                responses.setdefault("422", {"description": "Invalid input"})
            for status, response in responses.items():
                if status.startswith(("4", "5")) and not _answers_other_body(response):
                    declared = response.get("content", {}).get(PROBLEM_JSON, {})
                    examples = declared.get("examples") or {}
                    general_kind = GENERAL.get(int(status)) if status.isdigit() else None
                    if not examples and general_kind is not None:
                        examples = {general_kind.slug: _example(general_kind)}
                    body: OpenApiDocument = {"schema": ref}
                    if examples:
                        body["examples"] = examples
                    response["content"] = {PROBLEM_JSON: body}
    return openapi
