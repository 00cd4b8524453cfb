"""HTTP validators on `/v1` (issue 14): an `ETag` on every JSON answer to a GET, `304 Not
Modified` for `If-None-Match`, `Cache-Control` (public reads may be cached a minute, the rest
only by the client, revalidated), and `If-Match` on every state change (`412` when the resource
changed since the client read it), so two inspectors cannot both act on what only one saw.

The tag is a digest of the GET answer's body: it changes exactly when what the client reads
changes, for every resource of every service, with no version column. `If-Match` is checked
by reading the resource the change acts on (the same path for PATCH, PUT and DELETE; for a POST
the path without its last segment, the action: `/v1/licenses/{n}/suspend` acts on
`/v1/licenses/{n}`) with the caller's own key, just before the change runs: a change racing
between the two is not caught by the tag but by the service's own rules (row locks, state
checks), as without `If-Match`.
"""

import base64
import hashlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ssu_common.jsontypes import OpenApiDocument
from ssu_common.problems import Problem

PUBLIC_MAX_AGE = 60
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_JSON = (b"application/json",)


class PreconditionFailed(Problem):
    def __init__(self, resource: str, current: str | None) -> None:
        detail = (
            f"{resource} changed since it was read (its ETag is now {current}); read it again"
            if current
            else f"{resource} has no current representation to match If-Match"
        )
        super().__init__(
            412,
            detail,
            errors=[{"field": "header.if-match", "message": detail}],
        )
        if current:
            self.extensions["current_etag"] = current


def etag_of(body: bytes) -> str:
    digest = hashlib.sha256(body).digest()[:12]
    return '"' + base64.urlsafe_b64encode(digest).decode().rstrip("=") + '"'


def _tags(header: bytes) -> list[str]:
    """Entity tags of an If-Match / If-None-Match header; weak ones compare as strong here
    (the tag is of the bytes)."""
    return [t.strip().removeprefix("W/") for t in header.decode("latin-1").split(",") if t.strip()]


def _resource_of(method: str, path: str) -> str:
    if method == "POST":
        return path.rstrip("/").rsplit("/", 1)[0]
    return path


class Conditional:
    """ASGI middleware for `/v1`: validators on GET, preconditions on writes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        headers = dict(scope.get("headers", []))
        if method == "GET":
            await self._get(scope, receive, send, headers)
            return
        if method in _WRITES and b"if-match" in headers:
            resource = _resource_of(method, path)
            status, current = await self._current_tag(scope, resource)
            wanted = _tags(headers[b"if-match"])
            if status != 200 or current is None or ("*" not in wanted and current not in wanted):
                problem = PreconditionFailed(resource, current if status == 200 else None)
                await problem.response(path)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _get(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[bytes, bytes]
    ) -> None:
        start: Message | None = None
        chunks: list[bytes] = []
        public = b"authorization" not in headers

        async def buffered(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                if not self._taggable(message):
                    await send(message)
                return
            if start is None or not self._taggable(start):
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(chunks)
            tag = etag_of(body)
            extra = [(b"etag", tag.encode())]
            # A route that says how it may be cached is followed (a page behind a secret link
            # is `no-store` though keyless).
            if not any(k.lower() == b"cache-control" for k, _ in start.get("headers", [])):
                extra.append(
                    (
                        b"cache-control",
                        f"public, max-age={PUBLIC_MAX_AGE}".encode()
                        if public
                        else b"private, no-cache",
                    )
                )
            if b"if-none-match" in headers and (
                tag in _tags(headers[b"if-none-match"]) or "*" in _tags(headers[b"if-none-match"])
            ):
                kept = [
                    (k, v)
                    for k, v in start.get("headers", [])
                    if k.lower() not in (b"content-length", b"content-type")
                ]
                await send({**start, "status": 304, "headers": kept + extra})
                await send({"type": "http.response.body", "body": b""})
                return
            await send({**start, "headers": [*start.get("headers", []), *extra]})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, buffered)

    @staticmethod
    def _taggable(start: Message) -> bool:
        if start["status"] != 200:
            return False
        names = {k.lower(): v for k, v in start.get("headers", [])}
        return b"set-cookie" not in names and names.get(b"content-type", b"").startswith(_JSON)

    async def _current_tag(self, scope: Scope, resource: str) -> tuple[int, str | None]:
        """Read the resource as the caller would (their key, no body) and tag the answer."""
        headers = [
            (k, v)
            for k, v in scope.get("headers", [])
            if k.lower()
            not in (b"if-match", b"if-none-match", b"content-length", b"content-type",
                    b"idempotency-key")
        ]  # fmt: skip
        inner: Scope = {
            **scope,
            "method": "GET",
            "path": resource,
            "raw_path": resource.encode(),
            "query_string": b"",
            "headers": headers,
        }
        status = 500
        chunks: list[bytes] = []

        async def nothing() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(inner, nothing, capture)
        return status, etag_of(b"".join(chunks)) if status == 200 else None


def document_conditional(openapi: OpenApiDocument) -> OpenApiDocument:
    """GETs answer an `ETag` and take `If-None-Match`; writes take `If-Match`; a 201 names
    its `Location`."""
    if_none_match = {
        "name": "If-None-Match",
        "in": "header",
        "required": False,
        "description": "the ETag of the answer held: 304 when it is still current",
        "schema": {"type": "string"},
    }
    if_match = {
        "name": "If-Match",
        "in": "header",
        "required": False,
        "description": "the ETag of the resource as last read: 412 when it changed since",
        "schema": {"type": "string"},
    }
    etag = {"ETag": {"description": "validator of this answer", "schema": {"type": "string"}}}
    for path, operations in openapi.get("paths", {}).items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            created = responses.get("201")
            if created is not None:
                created.setdefault("headers", {})["Location"] = {
                    "description": "where the created resource is read",
                    "schema": {"type": "string"},
                }
            if method == "get":
                operation.setdefault("parameters", []).append(if_none_match)
                ok = responses.get("200")
                if ok is not None:
                    ok.setdefault("headers", {}).update(etag)
                responses.setdefault("304", {"description": "Not modified"})
            elif method in ("post", "put", "patch", "delete"):
                operation.setdefault("parameters", []).append(if_match)
                responses.setdefault(
                    "412",
                    {"description": "If-Match named an outdated ETag"},
                )
    return openapi
