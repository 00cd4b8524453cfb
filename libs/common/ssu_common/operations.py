"""The routes every service answers besides its own: problem types, health, audit trail, key
rotation and metrics, each documented with the schema of what it returns."""

from typing import TYPE_CHECKING, Literal

from fastapi import Depends, FastAPI, Query, Response, Security
from fastapi.responses import HTMLResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field

from ssu_common import audit, errors_page
from ssu_common.auth import Principal, authorize
from ssu_common.db import Connection, connection
from ssu_common.keyrotation import reseal_batch, stale_counts
from ssu_common.logging import get_logger
from ssu_common.paging import Seq, decode_cursor, encode_cursor
from ssu_common.problems import Problem

if TYPE_CHECKING:
    from ssu_common.runtime import ServiceRuntime

log = get_logger(__name__)

# The Prometheus text exposition format (what `/metrics` answers), as its scrapers ask for it.
PROMETHEUS_TEXT = "text/plain; version=0.0.4"

_METRICS_EXAMPLE = (
    "# HELP ssu_ready Whether the service can serve its API (1) or not (0)\n"
    "# TYPE ssu_ready gauge\n"
    'ssu_ready{service="registry"} 1.0\n'
)


class PrometheusText(Response):
    """Documents `/metrics` as the exposition format, not JSON."""

    media_type = PROMETHEUS_TEXT


class Liveness(BaseModel):
    """The process answers HTTP; says nothing of its dependencies (see `/health/ready`)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})

    status: Literal["ok"] = Field(description="Always `ok` when the process answers.")


class ReadinessReport(BaseModel):
    """Whether this process can serve its API, and the state of each dependency."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"status": "ok", "checks": {"database": "ok", "broker": "ok"}},
                {
                    "status": "degraded",
                    "checks": {"database": "ok", "broker": "unavailable"},
                    "degraded": [
                        "broker: events wait in the outbox and are not consumed until "
                        "RabbitMQ is back"
                    ],
                },
            ]
        }
    )

    status: Literal["ok", "degraded", "unavailable"] = Field(
        description="`ok`: all dependencies answer; `degraded`: the API serves while an "
        "optional dependency is away; `unavailable`: a required one is away (answered 503)."
    )
    checks: dict[str, str] = Field(
        description="Each dependency (`database`, `broker`) and `ok` or why it is unavailable."
    )
    degraded: list[str] | None = Field(
        default=None,
        description="What does not work meanwhile, one line per unavailable optional "
        "dependency; absent when nothing is degraded.",
    )


class AuditRecordOut(BaseModel):
    """One access record: who changed (or was refused a change to) what, and its Merkle leaf."""

    id: int = Field(description="Position in the trail, increasing.", examples=[42])
    at: str = Field(
        description="When, in UTC with microseconds, as the leaf hashes it.",
        examples=["2026-03-01T09:30:00.123456Z"],
    )
    client: str = Field(description="The API client (key name) that acted.", examples=["cbd"])
    official: str | None = Field(
        description="The official named by the client (X-Official), if any.",
        examples=["inspector-7"],
    )
    aggregate_type: str = Field(description="The kind of thing acted on.", examples=["license"])
    aggregate_id: str = Field(description="Its identifier.", examples=["KZ-LIC-000123"])
    action: str = Field(description="What was done.", examples=["license.suspended"])
    reason: str | None = Field(description="The reason given, if any.")
    correlation_id: str = Field(description="The request's correlation id.")
    causation_id: str | None = Field(description="The event that caused it, if any.")
    leaf_index: int | None = Field(description="Its leaf in the sealed tree; null until sealed.")
    leaf_hash: str | None = Field(description="The leaf's SHA-256, hex; null until sealed.")


class AuditPage(BaseModel):
    """A page of the audit trail, oldest first."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "id": 42,
                            "at": "2026-03-01T09:30:00.123456Z",
                            "client": "cbd",
                            "official": "inspector-7",
                            "aggregate_type": "license",
                            "aggregate_id": "KZ-LIC-000123",
                            "action": "license.suspended",
                            "reason": "inspection found no qualified staff",
                            "correlation_id": "9b2f4c1e-2d7a-4f0e-8a51-3c6d2b7e9f10",
                            "causation_id": "0b6f7d2c-5a4e-4c1b-9e3f-7a8d6c5b4e3a",
                            "leaf_index": 41,
                            "leaf_hash": "5f0c" + "0" * 60,
                        }
                    ],
                    "next_cursor": "NDI",
                }
            ]
        }
    )

    items: list[AuditRecordOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


class KeyRotationStep(BaseModel):
    """One batch of resealing under the current data key; call again until `done`."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "key_id": "k2",
                    "resealed": {"recipients": 500},
                    "remaining": {"recipients": 1200},
                    "done": False,
                }
            ]
        }
    )

    key_id: str = Field(description="The current data key, under which rows are resealed.")
    resealed: dict[str, int] = Field(description="Rows resealed by this call, per sealed table.")
    remaining: dict[str, int] = Field(description="Rows still under an older key, per table.")
    done: bool = Field(description="Nothing is left under an older key.")


def install_operations_routes(app: FastAPI, runtime: "ServiceRuntime") -> None:
    """Add the operations routes to a service's app."""

    @app.get("/problems", response_class=HTMLResponse, tags=["operations"])
    async def problem_types() -> HTMLResponse:
        """Every problem type this service answers, each linking to its page."""
        return HTMLResponse(errors_page.index_page(runtime.title))

    @app.get("/problems/{slug}", response_class=HTMLResponse, tags=["operations"])
    async def problem_type(slug: str) -> HTMLResponse:
        """What a problem type means and what to do, in Kazakh, Russian and English."""
        page = errors_page.kind_page(slug)
        if page is None:
            raise Problem(404, f"no problem type {slug!r}")
        return HTMLResponse(page)

    @app.get("/health/live", tags=["operations"], response_model=Liveness)
    async def live() -> Liveness:
        """The process is alive (for a liveness probe)."""
        return Liveness(status="ok")

    @app.get(
        "/health/ready",
        tags=["operations"],
        response_model=ReadinessReport,
        response_model_exclude_none=True,
        responses={
            503: {
                "model": ReadinessReport,
                "description": "A dependency the API requires does not answer",
            }
        },
    )
    async def ready(response: Response) -> ReadinessReport:
        """Ready when the dependencies the API needs answer; `degraded` names what does
        not work meanwhile (events waiting in the outbox, consumers paused)."""
        readiness = await runtime.readiness()
        status: Literal["ok", "degraded", "unavailable"] = (
            "unavailable" if not readiness.ready else "degraded" if readiness.degraded else "ok"
        )
        response.status_code = 200 if readiness.ready else 503
        return ReadinessReport(
            status=status, checks=readiness.checks, degraded=readiness.degraded or None
        )

    @app.get("/v1/audit", tags=["audit"], response_model=AuditPage)
    async def audit_trail(
        principal: Principal = Security(authorize, scopes=["audit:read"]),
        conn: Connection = Depends(connection),
        limit: int = Query(100, ge=1, le=1000),
        cursor: str | None = None,
        client: str | None = None,
    ) -> AuditPage:
        """The audit records, oldest first; `next_cursor` pages on."""
        after = decode_cursor(cursor, Seq) or 0
        records = await audit.page(conn, after_id=after, limit=limit, client=client)
        items = [
            AuditRecordOut(
                id=r.id,
                # As the leaf hashes it (SECURITY.md), so anyone can recompute the tree.
                at=audit.canonical_time(r.at),
                client=r.client,
                official=r.official,
                aggregate_type=r.aggregate_type,
                aggregate_id=r.aggregate_id,
                action=r.action,
                reason=r.reason,
                correlation_id=r.correlation_id,
                causation_id=r.causation_id,
                leaf_index=r.leaf_index,
                leaf_hash=r.leaf_hash.hex() if r.leaf_hash is not None else None,
            )
            for r in records
        ]
        next_cursor = encode_cursor(records[-1].id) if len(records) == limit else None
        return AuditPage(items=items, next_cursor=next_cursor)

    if runtime.sealed and runtime.cipher is not None:
        cipher, sealed = runtime.cipher, runtime.sealed

        @app.post("/v1/keys/rotation", tags=["operations"], response_model=KeyRotationStep)
        async def rotate_keys(
            principal: Principal = Security(authorize, scopes=["keys:rotate"]),
            conn: Connection = Depends(connection),
        ) -> KeyRotationStep:
            """Reseal one batch of rows per sealed table under the current data key; call
            again until `remaining` is 0 (`ssu keys rotate`)."""
            moved: dict[str, int] = {}
            for table in sealed:
                async with conn.transaction():
                    step = await reseal_batch(
                        conn, cipher, table, batch=runtime.settings.rotation_batch
                    )
                moved[table.table] = step.resealed
            remaining = await stale_counts(conn, cipher, sealed)
            log.info(
                "keys.resealed",
                key_id=cipher.current_key_id,
                resealed=sum(moved.values()),
                remaining=sum(remaining.values()),
            )
            return KeyRotationStep(
                key_id=cipher.current_key_id,
                resealed=moved,
                remaining=remaining,
                done=not any(remaining.values()),
            )

    @app.get(
        "/metrics",
        tags=["operations"],
        response_class=PrometheusText,
        responses={
            200: {
                "description": "The service's metrics in the Prometheus text exposition format",
                "content": {
                    PROMETHEUS_TEXT: {"schema": {"type": "string"}, "example": _METRICS_EXAMPLE}
                },
            }
        },
    )
    async def metrics() -> Response:
        """Counters and gauges for Prometheus to scrape."""
        await runtime.refresh_gauges()
        return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)
