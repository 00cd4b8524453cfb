"""A producer and a consumer built only from libs/common, run as real processes.

The fault tests and `bench/pipeline.py` drive the shared reliable event path with them:
the producer commits a row and its event in one transaction (`ssu_common.emit`), the relay
publishes it, and the consumer applies it through the inbox, adding one `effects` row per
applied event (no unique constraint, so a duplicate effect is visible).

    SSU_PAIR_ROLE=producer|consumer SSU_PAIR_SERVICE=<name> SSU_PAIR_DATABASE_URL=... \\
    SSU_PAIR_PORT=... SSU_AMQP_URL=... python tests/faults/pair_service.py

The event is `notification.delivery.failed.v1`, a type no service of the suite consumes, so
the streams reach only this consumer's queue even on a virtual host shared with other tests.
Its `delivery_id` carries the sequence number.
"""

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Security
from pydantic import BaseModel, Field
from pydantic_settings import SettingsConfigDict
from ssu_common import (
    Connection,
    Principal,
    ServiceRuntime,
    ServiceSettings,
    audit,
    authorize,
    connection,
    emit,
    emit_many,
    identities,
)
from ssu_contracts import DeliveryFailedV1, Envelope

EVENT_TYPE = DeliveryFailedV1.event_type
PUBLISHES_AS = "notification"
MIGRATIONS = Path(__file__).parent / "migrations"
SCOPE = "licensing:write"


class PairSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SSU_PAIR_", extra="ignore", populate_by_name=True)

    service: str = "pair"
    role: str = "producer"  # producer | consumer


def producer_identity() -> dict[str, str]:
    user = identities.broker_user(PUBLISHES_AS)
    return {"SSU_PAIR_AMQP_USERNAME": user, "SSU_PAIR_AMQP_PASSWORD": identities.dev_password(user)}


def thing_event(seq: int) -> DeliveryFailedV1:
    return DeliveryFailedV1(
        delivery_id=str(seq),
        event_id=str(uuid.uuid4()),
        failed_event_type="licensing.license.issued.v1",
        channel="email",
        attempts=3,
        last_error="550 mailbox unavailable (a stream event of the fault tests)",
    )


# producer

router = APIRouter(prefix="/v1")


class NewThing(BaseModel):
    seq: int = Field(ge=0)


class NewThings(BaseModel):
    first_seq: int = Field(ge=0)
    count: int = Field(ge=1, le=5000)


@router.post("/things", status_code=201)
async def create_thing(
    body: NewThing,
    principal: Principal = Security(authorize, scopes=[SCOPE]),
    conn: Connection = Depends(connection),
) -> dict[str, Any]:
    """One thing and its event in one transaction; a repeated seq is a no-op (safe retries)."""
    async with conn.transaction():
        inserted = await conn.fetchval(
            "INSERT INTO things (seq) VALUES ($1) ON CONFLICT DO NOTHING RETURNING true", body.seq
        )
        if not inserted:
            return {"created": 0}
        await audit.record(
            conn, aggregate=audit.Aggregate("thing", str(body.seq)), action="thing.created"
        )
        await emit(conn, thing_event(body.seq), subject=str(body.seq))
    return {"created": 1}


@router.post("/things/bulk", status_code=201)
async def create_things(
    body: NewThings,
    principal: Principal = Security(authorize, scopes=[SCOPE]),
    conn: Connection = Depends(connection),
) -> dict[str, Any]:
    """`count` things from `first_seq` on, with their events, in one transaction."""
    async with conn.transaction():
        rows = await conn.fetch(
            "INSERT INTO things (seq) SELECT generate_series($1::bigint, $1::bigint + $2 - 1)"
            " ON CONFLICT DO NOTHING RETURNING seq",
            body.first_seq,
            body.count,
        )
        seqs = sorted(r["seq"] for r in rows)
        await audit.record_many(
            conn,
            aggregates=[audit.Aggregate("thing", str(s)) for s in seqs],
            action="thing.created",
        )
        await emit_many(conn, [(thing_event(s), str(s)) for s in seqs])
    return {"created": len(seqs)}


# consumer


async def on_thing(conn: Connection, envelope: Envelope, data: Any) -> None:
    assert isinstance(data, DeliveryFailedV1)
    await conn.execute(
        "INSERT INTO effects (event_id, seq, event_time) VALUES ($1, $2, $3)",
        envelope.id,
        int(data.delivery_id),
        envelope.time,
    )


def build(settings: PairSettings) -> ServiceRuntime:
    if settings.role not in ("producer", "consumer"):
        raise ValueError(f"SSU_PAIR_ROLE must be producer or consumer, not {settings.role!r}")
    consumer = settings.role == "consumer"
    runtime = ServiceRuntime(
        settings=settings,
        migrations=MIGRATIONS,
        handlers={EVENT_TYPE: on_thing} if consumer else {},
        routers=[] if consumer else [router],
        title=f"ssu pair {settings.role}",
    )
    return runtime


def spawn(
    role: str,
    *,
    service: str,
    database_url: str,
    amqp_url: str,
    port: int,
    log_path: Path,
    env: dict[str, str] | None = None,
) -> "subprocess.Popen[bytes]":
    """Start one side of the pair as its own process, logging to `log_path`."""
    full_env = {
        **os.environ,
        "SSU_PAIR_ROLE": role,
        "SSU_PAIR_SERVICE": service,
        "SSU_PAIR_DATABASE_URL": database_url,
        "SSU_PAIR_PORT": str(port),
        "SSU_AMQP_URL": amqp_url,
        **(producer_identity() if role == "producer" else {}),
        "SSU_OUTBOX_POLL_SECONDS": "0.5",
        **(env or {}),
    }
    with log_path.open("ab") as log_file:
        return subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve())],
            env=full_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )


if __name__ == "__main__":
    runtime = build(PairSettings())
    runtime.serve(runtime.create_app())
