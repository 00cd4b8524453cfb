"""Assembly of one service process: settings, logging, database, broker, relay, consumer, HTTP
(its operations routes in ssu_common.operations, its loops in ssu_common.background)."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import uvicorn
from fastapi import APIRouter, Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from faststream.rabbit import RabbitBroker
from prometheus_client import Gauge
from ssu_contracts import AUDIT_SEALED, AuditSealedV1, Envelope, Event

from ssu_common import audit, background, idempotency, inbox, outbox, seal, tracing
from ssu_common.auth import ApiKeys
from ssu_common.broker import create_broker, declare_topology, dlq_name, queue_depth
from ssu_common.conditional import Conditional, document_conditional
from ssu_common.consumer import Consumer, EventHandler
from ssu_common.crypto import FieldCipher
from ssu_common.db import Connection, connection, create_pool, ensure_database, migrate
from ssu_common.idempotency import Idempotency, document_idempotency
from ssu_common.jsontypes import OpenApiDocument
from ssu_common.keyrotation import SealedTable
from ssu_common.limits import BodyLimit
from ssu_common.logging import configure_logging, get_logger
from ssu_common.metrics import DomainGauge, Metrics
from ssu_common.observe import UNTRACED_PATHS, Observe
from ssu_common.operations import install_operations_routes
from ssu_common.problems import document_problems, install_problem_handlers
from ssu_common.publisher import OutboxPublisher
from ssu_common.queryparams import refuse_unknown_query, remember_declared_names
from ssu_common.settings import ServiceSettings

__all__ = ["BackgroundJob", "Readiness", "ServiceRuntime", "connection"]

log = get_logger(__name__)


BackgroundJob = Callable[["ServiceRuntime"], Coroutine[object, object, None]]


@dataclass(frozen=True)
class Readiness:
    ready: bool
    checks: dict[str, str]
    degraded: list[str]


_DEGRADED = {
    "broker": "broker: events wait in the outbox and are not consumed until RabbitMQ is back",
}


class ServiceRuntime:
    """Everything one service process holds; built once in `main.py`."""

    def __init__(
        self,
        *,
        settings: ServiceSettings,
        migrations: Path,
        handlers: Mapping[str, EventHandler] | None = None,
        routers: Sequence[APIRouter] = (),
        background: Sequence[BackgroundJob] = (),
        gauges: Sequence[DomainGauge] = (),
        cipher: FieldCipher | None = None,
        sealed: Sequence[SealedTable] = (),
        title: str | None = None,
        version: str = "1.0.0",
    ) -> None:
        self.settings = settings
        self.service = settings.service
        self.migrations = migrations
        self.handlers = dict(handlers or {})
        self.public_keys = (
            seal.PublicKeys.load(settings.audit_public_keys_file)
            if settings.audit_public_keys_file.exists()
            else seal.PublicKeys({})
        )
        key_file = settings.signing_key_path()
        self.signer = seal.Signer.load(key_file) if key_file.exists() else None
        if self.service in AUDIT_SEALED:
            # Every service keeps a copy of the heads every other service signs (before its
            # own handler of the type, if it has one: notification passes them to webhooks).
            for other, model in AUDIT_SEALED.items():
                if other != self.service:
                    own = self.handlers.get(model.event_type)
                    self.handlers[model.event_type] = (
                        _then(self._keep_head_copy, own) if own else self._keep_head_copy
                    )
        self.routers = routers
        self.background = background
        self.cipher = cipher
        self.sealed = tuple(sealed)
        self.title = title or f"ssu {self.service}"
        self.version = version
        self.metrics = Metrics(self.service)
        self.domain_gauges = [
            (g, Gauge(g.name, g.help, ["service", *g.labels], registry=self.metrics.registry))
            for g in gauges
        ]
        self.broker: RabbitBroker = create_broker(
            url=settings.broker_url(),
            service=self.service,
            registry=self.metrics.registry,
            prefetch=settings.prefetch,
        )
        self.consumer: Consumer | None = None
        self._pool: asyncpg.Pool | None = None
        self._audit_pool: asyncpg.Pool | None = None
        self.relay: outbox.OutboxRelay | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("the service has not started")
        return self._pool

    async def _patiently(self, what: str, step: Callable[[], Awaitable[None]]) -> None:
        """Run a start-up step, retrying while its dependency is not reachable yet (a database
        or broker restarting, or starting after us) until the start-up timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.startup_timeout_seconds
        delay = 0.5
        while True:
            try:
                # The broker client itself reconnects until it succeeds: bound it here.
                await asyncio.wait_for(step(), timeout=max(0.1, deadline - loop.time()))
                return
            except Exception as exc:
                if loop.time() + delay > deadline:
                    log.error("service.dependency_unavailable", dependency=what)
                    raise
                log.warning(
                    "service.waiting", dependency=what, error=repr(exc)[:300], retry_in=delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _open_database(self) -> None:
        await ensure_database(self.settings.database_url)
        if self._pool is None:
            self._pool = await create_pool(
                self.settings.database_url,
                max_size=self.settings.db_pool_max,
                command_timeout=self.settings.db_command_timeout,
            )
        if self._audit_pool is None:
            # Access records of refused writes come from their own small pool, so a flood of
            # refused requests never takes the connections that real writes need.
            self._audit_pool = await create_pool(
                self.settings.database_url,
                max_size=2,
                command_timeout=self.settings.db_command_timeout,
            )
        await migrate(self._pool, self.migrations)

    async def _open_broker(self) -> None:
        await self.broker.connect()
        # Bindings exist before the first message is consumed or published.
        await declare_topology(
            self.broker,
            self.service,
            delivery_limit=self.settings.declared_delivery_limit,
            event_types=sorted(self.handlers),
        )
        await self.broker.start()

    async def start(self) -> None:
        """Prepare the database, connect the broker, start consuming and relaying."""
        await self._patiently("database", self._open_database)
        if self.handlers:
            self.consumer = Consumer(
                service=self.service,
                pool=self.pool,
                broker=self.broker,
                handlers=self.handlers,
                on_outcome=self._count_event,
                on_received=self._observe_age,
                batch_size=max(1, min(self.settings.consumer_batch, self.settings.prefetch)),
            )
            self.consumer.subscribe(
                self.settings.delivery_limit, declared=not self.settings.queue_policies
            )
        await self._patiently("broker", self._open_broker)
        if self.consumer is not None:
            self._tasks.append(asyncio.create_task(self.consumer.run(), name="consumer"))
        self.relay = outbox.OutboxRelay(
            pool=self.pool,
            dsn=self.settings.database_url,
            publish=OutboxPublisher(
                self.broker,
                user_id=self.settings.broker_user(),
                on_published=self.metrics.outbox_published.labels(self.service).inc,
            ),
            batch_size=self.settings.outbox_batch,
            poll_seconds=self.settings.outbox_poll_seconds,
        )
        self._tasks.append(asyncio.create_task(self.relay.run(), name="outbox-relay"))
        self._tasks.append(asyncio.create_task(background.retention(self), name="retention"))
        if self.signer is None:
            log.warning("audit.sealer_disabled", reason="no signing key")
        else:
            self._tasks.append(
                asyncio.create_task(background.seal_periodically(self), name="sealer")
            )
        for job in self.background:
            self._tasks.append(asyncio.create_task(job(self), name=getattr(job, "__name__", "job")))
        self._tasks.append(asyncio.create_task(background.watch_readiness(self), name="readiness"))
        log.info("service.started", port=self.settings.port)

    def _observe_age(self, envelope: Envelope) -> None:
        age = (datetime.now(UTC) - envelope.time).total_seconds()
        self.metrics.event_age.labels(self.service, envelope.type).observe(max(age, 0.0))

    async def prune(self) -> tuple[int, int]:
        """Delete published outbox rows and inbox ids past their retention; how many of each."""
        async with self.pool.acquire() as conn:
            sent = await outbox.prune(
                conn, older_than=timedelta(seconds=self.settings.outbox_retention_seconds)
            )
            seen = await inbox.prune(
                conn, older_than=timedelta(seconds=self.settings.inbox_retention_seconds)
            )
            await idempotency.prune(conn)
        if sent or seen:
            log.info("retention.pruned", outbox=sent, inbox=seen)
        return sent, seen

    async def seal_audit(self) -> seal.TreeHead | None:
        """Seal the audit records committed since the last head (if this replica leads)."""
        if self.signer is None:
            return None
        async with self.pool.acquire() as conn:
            return await seal.seal_once(conn, service=self.service, signer=self.signer)

    async def _keep_head_copy(self, conn: Connection, envelope: Envelope, data: Event) -> None:
        assert isinstance(data, AuditSealedV1)
        if data.service != envelope.type.split(".", 1)[0]:
            raise seal.ForgedHead(f"a {envelope.type} event carries a head of {data.service}")
        await seal.keep_copy(conn, head=seal.TreeHead.from_event(data), keys=self.public_keys)

    def _count_event(self, event_type: str, outcome: str) -> None:
        self.metrics.events.labels(self.service, event_type, outcome).inc()
        if outcome == "dead_lettered":
            self.metrics.dead_lettered.labels(self.service).inc()

    async def stop(self) -> None:
        if self.relay is not None:
            self.relay.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        try:
            await self.broker.stop()
        except Exception as exc:
            # A broker that is already gone must not keep the process from stopping.
            log.warning("broker.stop_failed", error=repr(exc))
        if self._audit_pool is not None:
            await self._audit_pool.close()
            self._audit_pool = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        tracing.flush()
        log.info("service.stopped")

    async def readiness(self) -> Readiness:
        """Which dependencies answer, and whether this process can serve its API without the
        ones that do not (DESIGN §7: the broker is needed by the relay and the consumers, not
        by the API, whose writes wait in the outbox)."""
        checks: dict[str, str] = {}
        try:
            async with self.pool.acquire(timeout=2.0) as conn:
                await conn.fetchval("SELECT 1", timeout=2.0)
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"unavailable: {type(exc).__name__}"
        connection = getattr(self.broker, "_connection", None)
        # A robust connection that is reconnecting is not closed, only not connected.
        up = connection is not None and not connection.is_closed and connection.connected.is_set()
        checks["broker"] = "ok" if up else "unavailable"
        required = set(self.settings.ready_requires)
        failing = sorted(name for name, state in checks.items() if state != "ok")
        readiness = Readiness(
            ready=not required.intersection(failing),
            checks=checks,
            degraded=[_DEGRADED.get(name, name) for name in failing if name not in required],
        )
        self.metrics.ready.labels(self.service).set(1 if readiness.ready else 0)
        for name, state in checks.items():
            self.metrics.dependency_up.labels(self.service, name).set(1 if state == "ok" else 0)
        return readiness

    async def refresh_gauges(self) -> None:
        """Update the gauges that are read from the database and the broker at scrape time."""
        with contextlib.suppress(Exception):
            async with self.pool.acquire(timeout=2.0) as conn:
                st = await outbox.status(conn)
            self.metrics.outbox_pending.labels(self.service).set(st.pending)
            self.metrics.outbox_oldest.labels(self.service).set(st.oldest_seconds)
            self.metrics.outbox_parked.labels(self.service).set(st.parked)
        for spec, gauge in self.domain_gauges:
            try:
                async with self.pool.acquire(timeout=2.0) as conn:
                    rows = await spec.collect(conn)
            except Exception as exc:
                log.warning("metrics.gauge_failed", gauge=spec.name, error=repr(exc))
                continue
            gauge.clear()
            for labels, value in rows:
                gauge.labels(service=self.service, **labels).set(value)
        if self.handlers:
            depth = await queue_depth(self.broker, dlq_name(self.service))
            if depth is not None:
                self.metrics.dlq_messages.labels(self.service).set(depth)

    def create_app(self) -> FastAPI:
        runtime = self

        @asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[None]:
            await runtime.start()
            try:
                yield
            finally:
                await runtime.stop()

        tracing.configure(self.service, self.settings.otlp_endpoint)
        # Swagger UI and ReDoc from assets the service serves itself (/docs, /redoc): a closed
        # government network cannot reach the CDN that FastAPI's own pages load them from.
        service = self.service

        def operation_id(route: APIRoute) -> str:
            # `licensing.suspend_license`, not FastAPI's `suspend_license_v1_licenses__number__
            # suspend_post`: what a generated client names its methods by.
            return f"{service}.{route.name}"

        app = FastAPIOffline(
            title=self.title,
            version=self.version,
            lifespan=lifespan,
            static_url="/docs/assets",
            generate_unique_id_function=operation_id,
            # One schema per model, not an -Input and an -Output of the same title: a client
            # generator names its classes by title and drops answers whose titles collide.
            separate_input_output_schemas=False,
        )
        app.state.runtime = self
        app.state.api_keys = ApiKeys.load(self.settings.api_keys_file)
        install_problem_handlers(app)
        # Innermost: validators on GET, If-Match on writes (its own read of the resource runs
        # inside every guard, unseen by `observe`).
        app.add_middleware(Conditional)
        # A POST retried under the same Idempotency-Key gets the first answer (the body
        # already limited, the key already known to `observe`), before any precondition.
        app.add_middleware(Idempotency, pool=lambda: runtime.pool)
        # Added first, so it runs inside `observe`: its refusals are counted and audited, and
        # a write without a known key is answered by `observe` before the body is read at all.
        app.add_middleware(
            BodyLimit,
            json_limit=self.settings.max_body_bytes,
            file_limit=self.settings.max_file_bytes,
        )
        self._install_middleware(app)
        if self.settings.cors_origins:
            # Outermost: a browser's preflight is answered before any key is asked for. Reads
            # only, without credentials: what a keyless caller may read anyway.
            app.add_middleware(
                CORSMiddleware,
                allow_origins=self.settings.cors_origins,
                allow_methods=["GET"],
                allow_headers=["If-None-Match", "Accept-Language"],
                expose_headers=["ETag", "X-Correlation-ID"],
                allow_credentials=False,
                max_age=600,
            )
        install_operations_routes(app, self)
        for router in self.routers:
            app.include_router(router, dependencies=[Depends(refuse_unknown_query)])
        remember_declared_names(
            app, [*app.routes, *(r for router in self.routers for r in router.routes)]
        )
        generate = app.openapi

        def openapi() -> OpenApiDocument:
            if app.openapi_schema is None:
                # Problems last: it gives every error response, whoever added it, its body.
                app.openapi_schema = document_problems(
                    document_conditional(document_idempotency(generate()))
                )
            return app.openapi_schema

        app.openapi = openapi  # type: ignore[method-assign]
        tracing.instrument_app(app, excluded=UNTRACED_PATHS)
        self.metrics.initialise(
            event_types=sorted(self.handlers),
            routes=[
                (method, route.path)
                # Included routers are kept apart from app.routes (FastAPI 0.16x): both.
                for route in [*app.routes, *(r for router in self.routers for r in router.routes)]
                if isinstance(route, APIRoute)
                for method in sorted(route.methods or ())
            ],
        )
        return app

    async def record_refused(
        self, *, method: str, route: str, status: int, correlation_id: str
    ) -> None:
        """An access record of a refused write: no change was made, so nothing to roll back
        with it; a failure to keep it is logged and the refusal stands."""
        try:
            async with (self._audit_pool or self.pool).acquire() as conn:
                await audit.record_refused(
                    conn,
                    method=method,
                    route=route,
                    status=status,
                    correlation_id=correlation_id,
                )
        except Exception as exc:
            log.error("audit.access_record_failed", error=repr(exc), route=route)

    def _install_middleware(self, app: FastAPI) -> None:
        runtime = self

        async def record_refused(method: str, route: str, status: int, correlation_id: str) -> None:
            await runtime.record_refused(
                method=method, route=route, status=status, correlation_id=correlation_id
            )

        app.add_middleware(
            Observe,
            service=self.service,
            keys=app.state.api_keys,
            metrics=self.metrics,
            # The services' routes as declared (FastAPI keeps included routers unflattened).
            write_routes=[route for router in self.routers for route in router.routes],
            record_refused=record_refused,
        )

    def serve(self, app: FastAPI) -> None:
        """Run the service in this process until interrupted."""
        configure_logging(self.service, self.settings.log_level)
        uvicorn.run(
            app,
            host=self.settings.host,
            port=self.settings.port,
            log_config=None,
            access_log=False,
            # Named, not left to "auto", so that a missing wheel fails loudly at start.
            loop="uvloop",
            http="httptools",
        )


def _then(first: EventHandler, second: EventHandler) -> EventHandler:
    async def both(conn: Connection, envelope: Envelope, data: Event) -> None:
        await first(conn, envelope, data)
        await second(conn, envelope, data)

    return both
