"""A small service built only from libs/common, to test the shared machinery on its own."""

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Security
from harness import identity_settings, settings_for
from pydantic import BaseModel
from ssu_common import (
    Connection,
    DomainGauge,
    GaugeRows,
    PermanentError,
    Principal,
    Problem,
    ServiceRuntime,
    ServiceSettings,
    audit,
    authorize,
    connection,
    emit,
)
from ssu_contracts import Bin, Envelope, RecipientRegisteredV1

SERVICE = "probe"


# Names whose next n applications fail as a bug or an outage would (tests of retries).
FAIL_TIMES: dict[str, int] = {}


async def on_registered(conn: Connection, envelope: Envelope, data: Any) -> None:
    assert isinstance(data, RecipientRegisteredV1)
    if data.full_name == "refuse me":
        raise PermanentError("this recipient is refused by a domain rule")
    if data.full_name == "conflict me":
        # A domain error of the kind service code raises (a problem, not a PermanentError).
        raise Problem(409, "the recipient is already enrolled for this form")
    if data.full_name == "duplicate me":
        await conn.execute("INSERT INTO things (id, note) VALUES ('dup', 'x'), ('dup', 'x')")
    if data.full_name.startswith("too slow"):
        await conn.execute("SET LOCAL statement_timeout = '50ms'")
        await conn.execute("SELECT pg_sleep(2)")
    if FAIL_TIMES.get(data.full_name, 0) > 0:
        FAIL_TIMES[data.full_name] -= 1
        await conn.execute(
            "INSERT INTO effects (event_id, note) VALUES ($1, $2)", envelope.id, "half-done"
        )
        raise RuntimeError("a failure that the next delivery does not meet")
    await conn.execute(
        "INSERT INTO effects (event_id, note) VALUES ($1, $2)", envelope.id, data.full_name
    )


async def on_revoked(conn: Connection, envelope: Envelope, data: Any) -> None:
    await conn.execute(
        "INSERT INTO effects (event_id, note) VALUES ($1, $2)", envelope.id, "revoked"
    )


HANDLERS = {
    "registry.recipient.registered.v1": on_registered,
    "licensing.license.revoked.v1": on_revoked,
}


router = APIRouter(prefix="/v1")


class NewThing(BaseModel):
    bin: Bin
    places: int
    reason: str | None = None


@router.post("/things", status_code=201)
async def create_thing(
    body: NewThing,
    principal: Principal = Security(authorize, scopes=["licensing:write"]),
    conn: Connection = Depends(connection),
) -> dict[str, Any]:
    # A change and its audit record in one transaction, as service code does it; the 409 is
    # raised after both, so the rollback must take the record with it.
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO things (id, note) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
            f"{body.bin}/{body.places}",
            "created",
        )
        await audit.record(
            conn,
            aggregate=audit.Aggregate("thing", f"{body.bin}/{body.places}"),
            action="thing.created",
            reason=body.reason,
        )
        if body.places > 100:
            raise Problem(409, "too many places", current_places=100)
    return {"bin": body.bin, "client": principal.client}


@router.get("/things")
async def list_things(
    principal: Principal = Security(authorize, scopes=["registry:write|billing:approve"]),
) -> dict[str, Any]:
    return {"client": principal.client}


async def things_by_note(conn: Connection) -> GaugeRows:
    rows = await conn.fetch("SELECT note, count(*) AS n FROM things GROUP BY note")
    return [({"note": r["note"]}, float(r["n"])) for r in rows]


def build(*, publishes_as: str | None = None, **overrides: Any) -> ServiceRuntime:
    """The probe (consuming as `guest`, a user of no service, so its own events are refused);
    with `publishes_as`, a producer `probe_<service>` of its own database that consumes
    nothing and whose events go out as that service's (broker identity and CloudEvents
    source), so that consumers trust them."""
    service = SERVICE
    if publishes_as is not None:
        service = f"{SERVICE}_{publishes_as}"
        overrides = {**identity_settings(publishes_as), **overrides}
    settings = settings_for(ServiceSettings, service, service=service, **overrides)
    runtime = ServiceRuntime(
        settings=settings,
        migrations=Path(__file__).parent / "migrations",
        handlers=HANDLERS if publishes_as is None else {},
        routers=[router],
        gauges=[DomainGauge("ssu_probe_things", "Things by note", ("note",), things_by_note)],
    )
    return runtime


async def write_thing_and_event(conn: Connection, thing_id: str, event: Any) -> Envelope:
    """A state change and its event in one transaction, as service code does it."""
    async with conn.transaction():
        await conn.execute("INSERT INTO things (id, note) VALUES ($1, $2)", thing_id, "x")
        return await emit(conn, event, subject=thing_id)
