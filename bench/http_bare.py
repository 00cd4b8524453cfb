"""The bare twin of the measured ssu routes: FastAPI + asyncpg doing the same database work.

bench/http.py runs it as a process beside the real services and sends it the same requests:
the ceiling a route of this stack can reach on this machine. Same work means the same rows read
and written in the same transactions (a write: the row, its outbox row and an audit row; a state
change: the update, its outbox row and an audit row), the same JSON in and out, one uvicorn
process like each service. What it leaves out is what ssu adds on top: keys, scopes, problems,
metrics, traces, sealing of personal data, the relay publishing the outbox.

    python bench/http_bare.py <database-url> <port>
"""

import sys
from pathlib import Path

# Beside bench/http.py: run as a script this folder would come first on the path and hide
# the standard library's `http` package from everything imported after.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import uvicorn
from fastapi import FastAPI, Request
from pydantic import BaseModel

SCHEMA = """
CREATE TABLE IF NOT EXISTS licenses (
    number text PRIMARY KEY,
    state text NOT NULL,
    doc jsonb NOT NULL,
    summary jsonb NOT NULL
);
CREATE TABLE IF NOT EXISTS recipients (
    iin text PRIMARY KEY,
    full_name text NOT NULL,
    birth_date date NOT NULL,
    category text NOT NULL,
    region text NOT NULL,
    language text NOT NULL,
    phone text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS outbox (
    id uuid PRIMARY KEY,
    event_type text NOT NULL,
    envelope jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE TABLE IF NOT EXISTS audit (
    id bigserial PRIMARY KEY,
    actor text NOT NULL,
    action text NOT NULL,
    subject text NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
);
"""


async def _init(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


def build(database_url: str) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = await asyncpg.create_pool(
            database_url, min_size=2, max_size=10, init=_init
        )
        async with app.state.pool.acquire() as conn:
            await conn.execute(SCHEMA)
        yield
        await app.state.pool.close()

    app = FastAPI(lifespan=lifespan)

    class RecipientIn(BaseModel):
        iin: str
        full_name: str
        birth_date: date
        category: str
        region: str
        language: str
        phone: str | None = None

    class Suspension(BaseModel):
        reason: str

    def envelope(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": str(uuid.uuid4()),
            "type": event_type,
            "time": datetime.now(UTC).isoformat(),
            "data": data,
        }

    @app.get("/health/live")
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/licenses")
    async def licenses(request: Request, limit: int = 20) -> dict[str, Any]:
        async with request.app.state.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT number, summary FROM licenses ORDER BY number LIMIT $1", limit + 1
            )
        items = [r["summary"] for r in rows[:limit]]
        cursor = rows[limit - 1]["number"] if len(rows) > limit else None
        return {"items": items, "next_cursor": cursor}

    @app.get("/v1/licenses/{number}")
    async def license_(request: Request, number: str) -> dict[str, Any]:
        async with request.app.state.pool.acquire() as conn:
            doc: dict[str, Any] = await conn.fetchval(
                "SELECT doc FROM licenses WHERE number = $1", number
            )
        return doc

    @app.post("/v1/recipients", status_code=201)
    async def register(request: Request, body: RecipientIn) -> dict[str, Any]:
        async with request.app.state.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO recipients (iin, full_name, birth_date, category, region, language,"
                " phone) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                body.iin, body.full_name, body.birth_date, body.category, body.region,
                body.language, body.phone,
            )  # fmt: skip
            event = envelope("registry.recipient.registered.v1", {"region": body.region})
            await conn.execute(
                "INSERT INTO outbox (id, event_type, envelope) VALUES ($1, $2, $3)",
                uuid.UUID(event["id"]), event["type"], event,
            )  # fmt: skip
            await conn.execute(
                "INSERT INTO audit (actor, action, subject) VALUES ($1, $2, $3)",
                "bench", "recipient.register", body.iin[:6],
            )  # fmt: skip
        return body.model_dump(mode="json")

    async def transition(request: Request, number: str, state: str) -> dict[str, Any]:
        async with request.app.state.pool.acquire() as conn, conn.transaction():
            doc: dict[str, Any] = await conn.fetchval(
                "UPDATE licenses SET state = $2 WHERE number = $1 RETURNING doc", number, state
            )
            event = envelope(f"licensing.license.{state}.v1", {"license_number": number})
            await conn.execute(
                "INSERT INTO outbox (id, event_type, envelope) VALUES ($1, $2, $3)",
                uuid.UUID(event["id"]), event["type"], event,
            )  # fmt: skip
            await conn.execute(
                "INSERT INTO audit (actor, action, subject) VALUES ($1, $2, $3)",
                "bench", f"license.{state}", number,
            )  # fmt: skip
        return {**doc, "status": state}

    @app.post("/v1/licenses/{number}/suspend")
    async def suspend(request: Request, number: str, body: Suspension) -> dict[str, Any]:
        return await transition(request, number, "suspended")

    @app.post("/v1/licenses/{number}/reinstate")
    async def reinstate(request: Request, number: str) -> dict[str, Any]:
        return await transition(request, number, "active")

    return app


if __name__ == "__main__":
    uvicorn.run(
        build(sys.argv[1]), host="127.0.0.1", port=int(sys.argv[2]), log_config=None,
        access_log=False,
    )  # fmt: skip
