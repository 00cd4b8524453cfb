"""What every HTTP request goes through first: its correlation id, who acts (the audit context),
the refusal of a keyless write (but to a route marked `x-ssu-public`) before its body is read,
metrics, the access line, and an access record of each refused write.

A plain ASGI middleware, not Starlette's `BaseHTTPMiddleware`: that one runs the app in a task
group behind memory streams, which cost about 40 % of the CPU of a `GET /health/live` on this
stack (py-spy, bench/http.py). Here the app runs in the request's own task, so the context
variables set here (correlation id, actor) are the app's without copying.
"""

import time
import uuid
from collections.abc import Awaitable, Callable, Sequence

from starlette.datastructures import Headers
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ssu_common import audit, tracing
from ssu_common.auth import ApiKeys, Principal, bearer_token, identify
from ssu_common.context import work_context
from ssu_common.logging import get_logger
from ssu_common.metrics import Metrics
from ssu_common.problems import Problem, field_error

access_log = get_logger("ssu.access")

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Probes and scrapes every few seconds are not requests anyone follows.
UNTRACED_PATHS = ("/metrics", "/health/live", "/health/ready")
# Any token is a valid HTTP method; as a label each new one would be a new time series.
METHODS = frozenset({"GET", "HEAD", "OPTIONS", *WRITES})
_CORRELATION = b"x-correlation-id"
PUBLIC = "x-ssu-public"

RecordRefused = Callable[[str, str, int, str], Awaitable[None]]


def matching_route(routes: Sequence[BaseRoute], scope: Scope) -> str:
    """The template of the route a request would reach, without running it."""
    for candidate in routes:
        match, _ = candidate.matches(scope)
        if match is Match.FULL:
            return str(getattr(candidate, "path", "unmatched"))
    return "unmatched"


def route_template(scope: Scope) -> str:
    """The template of the route that answered (routing leaves it in the shared scope)."""
    return str(getattr(scope.get("route"), "path", "unmatched"))


class Observe:
    def __init__(
        self,
        app: ASGIApp,
        *,
        service: str,
        keys: ApiKeys,
        metrics: Metrics,
        write_routes: Sequence[BaseRoute],
        record_refused: RecordRefused,
    ) -> None:
        self.app = app
        self.service = service
        self.keys = keys
        self.metrics = metrics
        self.write_routes = write_routes
        # Writes declared public (`x-ssu-public`: a person answering with a code they hold).
        self.public_writes = [
            r for r in write_routes if (getattr(r, "openapi_extra", None) or {}).get(PUBLIC)
        ]
        self.record_refused = record_refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        correlation_id = headers.get("x-correlation-id") or str(uuid.uuid4())
        started = time.perf_counter()
        method: str = scope["method"]
        path: str = scope["path"]
        write = method in WRITES and path.startswith("/v1/")
        token = bearer_token(headers.get("authorization"))
        key = self.keys.lookup(token) if token else None
        refusal: Problem | None = None
        try:
            official = audit.official_from_header(headers.get(audit.OFFICIAL_HEADER))
        except audit.BadOfficial as exc:
            official = None
            refusal = field_error(f"header.{audit.OFFICIAL_HEADER}", str(exc))
        actor = (
            audit.Actor(client=key.client, official=official)
            if key is not None
            else audit.ANONYMOUS
        )
        status = 500  # what an exception that escapes the app becomes (ServerErrorMiddleware)
        stamp = [(_CORRELATION, correlation_id.encode("latin-1"))]

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() != _CORRELATION]
                message = {**message, "headers": [*kept, *stamp]}
            await send(message)

        with work_context(correlation_id=correlation_id), audit.acting_as(actor):
            if (
                write
                and key is None
                and refusal is None
                and matching_route(self.public_writes, scope) == "unmatched"
            ):
                # No other write route is public: refuse before a byte of the body is read.
                try:
                    identify(self.keys, token)
                except Problem as problem:
                    refusal = problem
            try:
                if refusal is not None:
                    route = matching_route(self.write_routes, scope)
                    await refusal.response(path)(scope, receive, observed_send)
                else:
                    try:
                        await self.app(scope, receive, observed_send)
                    finally:
                        route = route_template(scope)
                if write and 400 <= status < 500:
                    await self.record_refused(method, route, status, correlation_id)
            finally:
                self._observe(scope, method, route, status, started, correlation_id)

    def _observe(
        self,
        scope: Scope,
        method: str,
        route: str,
        status: int,
        started: float,
        correlation_id: str,
    ) -> None:
        elapsed = time.perf_counter() - started
        label = method if method in METHODS else "other"
        self.metrics.http_latency.labels(self.service, label, route).observe(elapsed)
        self.metrics.http_requests.labels(self.service, label, route, str(status)).inc()
        # Set by `authorize` on the request's state (auth.py), absent on an anonymous call.
        principal: Principal | None = scope.get("state", {}).get("principal")
        client = scope.get("client")
        # The access line (uvicorn's own is off): the route template, never the path, which can
        # hold an IIN.
        (access_log.debug if route in UNTRACED_PATHS else access_log.info)(
            "http.request",
            method=method,
            route=route,
            status=status,
            duration_ms=round(elapsed * 1000, 2),
            trace_id=tracing.current_trace_id(),
            correlation_id=correlation_id,
            client=principal.client if principal is not None else "anonymous",
            peer=client[0] if client else None,
        )
