"""The asyncpg pool, database creation and the plain-SQL migration runner."""

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from starlette.requests import Request

from ssu_common.logging import get_logger

log = get_logger(__name__)

# What service code receives: a plain connection or one borrowed from the pool. FastAPI reads
# annotations at run time, where asyncpg's classes are not subscriptable.
if TYPE_CHECKING:
    Connection: TypeAlias = (
        asyncpg.Connection[asyncpg.Record] | asyncpg.pool.PoolConnectionProxy[asyncpg.Record]
    )
else:
    Connection = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

COMMON_MIGRATIONS = Path(__file__).parent / "migrations"
_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
# One lock id for every service: each service has its own database, so they never contend.
_MIGRATION_LOCK = 741_852_963


async def ensure_database(dsn: str) -> None:
    """Create the database named in the DSN if it does not exist yet."""
    parts = urlsplit(dsn)
    name = parts.path.lstrip("/")
    if not _DB_NAME.match(name):
        raise ValueError(f"database name {name!r} must match {_DB_NAME.pattern}")
    admin_dsn = urlunsplit(parts._replace(path="/postgres"))
    conn = await asyncpg.connect(admin_dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            try:
                # Identifiers cannot be parameters; the name was checked against _DB_NAME above.
                await conn.execute(f'CREATE DATABASE "{name}"')
                log.info("database.created", database=name)
            except asyncpg.DuplicateDatabaseError:
                pass
    finally:
        await conn.close()


async def create_pool(
    dsn: str, *, max_size: int = 10, command_timeout: float = 60.0
) -> asyncpg.Pool:
    """A connection pool; statements time out so a stuck query cannot hold a worker forever."""
    pool = await asyncpg.create_pool(
        dsn, min_size=1, max_size=max_size, command_timeout=command_timeout
    )
    assert pool is not None
    return pool


def _migration_files(directory: Path, prefix: str) -> list[tuple[str, Path]]:
    return [(f"{prefix}{p.name}", p) for p in sorted(directory.glob("*.sql"))]


async def migrate(pool: asyncpg.Pool, service_migrations: Path) -> list[str]:
    """Apply the common and then the service's `.sql` files not yet applied, in order."""
    files = _migration_files(COMMON_MIGRATIONS, "common/") + _migration_files(
        service_migrations, ""
    )
    applied_now: list[str] = []
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
            for name, path in files:
                if name in done:
                    continue
                async with conn.transaction():
                    await conn.execute(path.read_text(encoding="utf-8"))
                    await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
                applied_now.append(name)
                log.info("migration.applied", migration=name)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
    return applied_now


async def connection(request: Request) -> AsyncIterator[Connection]:
    """FastAPI dependency: a pooled connection of the service's pool for the length of the
    request."""
    pool: asyncpg.Pool = request.app.state.runtime.pool
    async with pool.acquire() as conn:
        yield conn
