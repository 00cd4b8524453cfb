"""Builds the test world on the real PostgreSQL and RabbitMQ of this machine.

Tests use their own databases (`ssu_test_<service>`) and their own RabbitMQ virtual host
(`ssu_test`), so a `make run` on the same machine is left alone.
"""

import asyncio
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import httpx
from ssu_common import ServiceRuntime, ServiceSettings, identities
from ssu_contracts import is_valid_iin

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN = os.environ.get("SSU_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
# Parallel runs (several developers on one machine) set these to keep out of each other's way.
VHOST = os.environ.get("SSU_TEST_VHOST", "ssu_test")
DB_PREFIX = os.environ.get("SSU_TEST_DB_PREFIX", "ssu_test")
AMQP_URL = f"amqp://guest:guest@127.0.0.1:5672/{VHOST}"
ADMIN_KEY = "ssu-dev-admin"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def test_dsn(service: str) -> str:
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{DB_PREFIX}_{service}"


test_dsn.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def ensure_vhost() -> None:
    """Create the tests' virtual host once (rabbitmqctl is local and we run as root), with the
    services' broker identities and their permissions in it (ssu_common.identities). `guest`
    stays the tests' own administrator there: probes, dead-letter queues, foreign publishers."""
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", VHOST], capture_output=True, check=False)
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*"],
        capture_output=True,
        check=True,
    )
    identities.apply(VHOST)


def identity_url(user: str) -> str:
    """The tests' vhost as one broker user (with its development password)."""
    return f"amqp://{user}:{identities.dev_password(user)}@127.0.0.1:5672/{VHOST}"


def identity_settings(service: str) -> dict[str, str]:
    """Settings values that make a service connect as its own broker identity."""
    if service not in identities.SERVICES:
        return {}
    user = identities.broker_user(service)
    return {"amqp_username": user, "amqp_password": identities.dev_password(user)}


def identity_env(service: str) -> dict[str, str]:
    upper = service.upper()
    return {f"SSU_{upper}_{k.upper()}": v for k, v in identity_settings(service).items()}


async def drop_database(service: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        name = test_dsn(service).rsplit("/", 1)[1]
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def delete_queues(*names: str) -> None:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        for name in names:
            channel = await connection.channel()
            with contextlib.suppress(Exception):
                await channel.queue_delete(name)
            with contextlib.suppress(Exception):
                await channel.close()


async def reset_service(service: str) -> None:
    """A fresh database and no leftover queues for one service."""
    await drop_database(service)
    await delete_queues(f"{service}.events", f"{service}.events.dlq")


def settings_for(cls: type[ServiceSettings], db_service: str, **overrides: Any) -> ServiceSettings:
    values: dict[str, Any] = {
        "database_url": test_dsn(db_service),
        "amqp_url": AMQP_URL,
        **identity_settings(db_service),
        "api_keys_file": ROOT / "deploy" / "api-keys.dev.yaml",
        "outbox_poll_seconds": 0.5,
        "delivery_limit": 5,
        # Tests seal when they mean to (`runtime.seal_audit()`), so no head event surprises one.
        "audit_seal_seconds": 3600.0,
    }
    values.update(overrides)
    return cls(**values)


@dataclass
class RunningService:
    runtime: ServiceRuntime
    client: httpx.AsyncClient

    @property
    def pool(self) -> asyncpg.Pool:
        return self.runtime.pool


@asynccontextmanager
async def running_service(runtime: ServiceRuntime) -> AsyncIterator[RunningService]:
    """Start a service in this process (real database and broker) with an HTTP client on it."""
    app = runtime.create_app()
    await runtime.start()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield RunningService(runtime=runtime, client=client)
    finally:
        await runtime.stop()


@dataclass
class EventProbe:
    """A private queue bound to `ssu.events` that records what is published."""

    queue: aio_pika.abc.AbstractQueue
    connection: aio_pika.abc.AbstractRobustConnection
    received: list[dict[str, Any]] = field(default_factory=list)

    async def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], *, timeout: float = 10.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for event in self.received:
                if predicate(event):
                    return event
            if time.monotonic() > deadline:
                types = [e.get("type") for e in self.received]
                raise AssertionError(f"no matching event within {timeout}s; got {types}")
            await self.pull(wait=0.1)

    async def pull(self, wait: float = 0.0) -> None:
        if wait:
            await asyncio.sleep(wait)
        while True:
            message = await self.queue.get(fail=False, no_ack=True)
            if message is None:
                return
            self.received.append(json.loads(message.body))

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        return [e for e in self.received if e["type"] == event_type]


@asynccontextmanager
async def event_probe(*binding_keys: str) -> AsyncIterator[EventProbe]:
    connection = await aio_pika.connect_robust(AMQP_URL)
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange("ssu.events", "topic", durable=True)
        queue = await channel.declare_queue(f"probe-{uuid.uuid4()}", exclusive=True)
        for key in binding_keys or ("#",):
            await queue.bind(exchange, routing_key=key)
        yield EventProbe(queue=queue, connection=connection)
    finally:
        await connection.close()


async def publish_raw(
    body: bytes,
    *,
    routing_key: str,
    message_id: str | None = None,
    headers: dict[str, Any] | None = None,
    as_user: str | None = None,
) -> None:
    """Publish bytes to `ssu.events` as another publisher (or an attacker) would.

    By default as the broker identity of the service that owns the routing key, setting its
    `user_id` as the outbox relay does (`as_user="guest"`: a user that is no service's). The
    message id is the envelope's id when the body has one, as the outbox relay sets it.
    """
    if message_id is None:
        try:
            message_id = str(json.loads(body)["id"])
        except (ValueError, KeyError, TypeError):
            message_id = str(uuid.uuid4())
    user = as_user or identities.broker_user(routing_key.split(".", 1)[0])
    if user != "guest" and identities.service_of_user(user) is None:
        user = "guest"  # a routing key of no service of the suite
    connection = await aio_pika.connect(AMQP_URL if user == "guest" else identity_url(user))
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange("ssu.events", "topic", durable=True)
        await exchange.publish(
            aio_pika.Message(
                body,
                message_id=message_id or str(uuid.uuid4()),
                headers=headers,
                user_id=user,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=routing_key,
        )


async def read_dlq(service: str, *, expect: int, timeout: float = 10.0) -> list[Any]:
    """Take `expect` messages from a service's dead-letter queue, failing after the timeout."""
    connection = await aio_pika.connect(AMQP_URL)
    taken: list[Any] = []
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(f"{service}.events.dlq", passive=True)
        deadline = time.monotonic() + timeout
        while len(taken) < expect and time.monotonic() < deadline:
            message = await queue.get(fail=False, no_ack=True)
            if message is None:
                await asyncio.sleep(0.1)
                continue
            taken.append(message)
    return taken


async def eventually(
    check: Callable[[], Any], *, timeout: float = 10.0, interval: float = 0.1
) -> Any:
    """Await `check()` until it returns something truthy; fail with its last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last value {last!r})")


# A billing run's states in which it still moves (POST /v1/runs answers 202 and bills later).
RUN_UNFINISHED = ("queued", "running")


async def run_to_end(
    send: Callable[..., Awaitable[httpx.Response]],
    url: str,
    *,
    json: dict[str, Any],
    headers: dict[str, str] | None = None,
    expect: int = 202,
    timeout: float = 120.0,
    seen: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """POST a billing run to `url` (`.../v1/runs`) with `send` (`client.request`, or any
    `send(method, url, **kw)`), assert the answer is `expect`, then poll its `Location` until
    the run is completed or failed; its last body (with the POST's `repeated`), or a refusal's
    problem body. `seen` collects every body polled, for tests of the progress."""
    r = await send("POST", url, json=json, headers=headers)
    assert r.status_code == expect, r.text
    answer: dict[str, Any] = r.json()
    if r.status_code not in (200, 202):
        return answer
    location = r.headers["location"]
    assert location == f"/v1/runs/{answer['id']}", location
    body = answer
    deadline = time.monotonic() + timeout
    while body["status"] in RUN_UNFINISHED:
        assert time.monotonic() < deadline, f"run {answer['id']} not done in {timeout}s: {body}"
        await asyncio.sleep(0.05)
        got = await send("GET", url.removesuffix("/v1/runs") + location, headers=headers)
        assert got.status_code == 200, got.text
        body = got.json()
        if seen is not None:
            seen.append(body)
    return {**body, "repeated": answer["repeated"]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServiceProcess:
    service: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()


def spawn_service(
    service: str, *, log_dir: Path, env: dict[str, str] | None = None, port: int | None = None
) -> ServiceProcess:
    """Start `python -m ssu_<service>` as a real process against the test database and vhost."""
    port = port or free_port()
    upper = service.upper()
    full_env = {
        **os.environ,
        f"SSU_{upper}_DATABASE_URL": test_dsn(service),
        f"SSU_{upper}_PORT": str(port),
        "SSU_AMQP_URL": AMQP_URL,
        **identity_env(service),
        "SSU_OUTBOX_POLL_SECONDS": "0.5",
        **(env or {}),
    }
    log_path = log_dir / f"{service}-{port}.log"
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", f"ssu_{service}"],
            env=full_env,
            cwd=ROOT,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    return ServiceProcess(service=service, port=port, process=process, log_path=log_path)


async def wait_ready(proc: ServiceProcess, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if proc.process.poll() is not None:
                raise AssertionError(f"{proc.service} exited:\n{proc.log_path.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                r = await client.get(f"{proc.url}/health/ready", timeout=2.0)
                if r.status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise AssertionError(f"{proc.service} not ready:\n{proc.log_path.read_text()[-3000:]}")


@contextlib.contextmanager
def processes(*procs: ServiceProcess) -> Iterator[None]:
    try:
        yield
    finally:
        for p in procs:
            p.stop()


class TcpProxy:
    """A TCP relay in front of RabbitMQ that a test can cut and restore: a network partition
    between one service and the broker, without disturbing anyone else on the machine."""

    def __init__(self, target_host: str = "127.0.0.1", target_port: int = 5672) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def amqp_url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/{VHOST}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def cut(self) -> None:
        """Refuse new connections and drop the open ones."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def restore(self) -> None:
        await self.start()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers.update({writer, up_writer})

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.difference_update({writer, up_writer})


# Twelve digits standing alone: a run inside a hex digest or key id (blind indexes, audit
# hashes, bytea printed as hex) is not an IIN, however its checksum falls (a CI run once met a
# digest holding the valid-looking "881009175355").
_IIN_LIKE = re.compile(r"(?<![0-9A-Za-z])\d{12}(?![0-9A-Za-z])")
# A phone stands alone too: not the decimals of a number (a span's float attribute once gave
# "…0.87343677042" in a CI run, read as 8 734 367 70 42).
_PHONE_LIKE = re.compile(
    r"(?<![\w*.])(?:\+?7|8)[\s(-]*7\d{2}[\s)-]*\d{3}[\s-]*\d{2}[\s-]*\d{2}(?!\d)"
)
_EMAIL_LIKE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")


def find_pii(text: str) -> list[str]:
    """Full IINs, phone numbers and email addresses in a text (masked forms do not count)."""
    found = [m for m in _IIN_LIKE.findall(text) if is_valid_iin(m)]
    found += _PHONE_LIKE.findall(text)
    found += [m for m in _EMAIL_LIKE.findall(text) if not m.split("@")[0].endswith("***")]
    return found


async def probe_liveness(http: httpx.AsyncClient, url: str, done: asyncio.Event) -> list[float]:
    """Latencies of /health/live asked every 10 ms (a kubelet asks every few seconds) until
    `done`: dense enough that even a fast import overlaps several probes, and a blocked loop
    cannot fall between two of them."""
    latencies: list[float] = []
    while not done.is_set():
        started = time.perf_counter()
        r = await http.get(f"{url}/health/live")
        latencies.append(time.perf_counter() - started)
        assert r.status_code == 200
        await asyncio.sleep(0.01)
    return latencies
