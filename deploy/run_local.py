"""`make run`: the five services (the portal among them) as processes on the local PostgreSQL
and RabbitMQ.

Checks that PostgreSQL and RabbitMQ answer (and says how to start them if not), creates the
services' broker identities (one RabbitMQ user each, ssu_common.identities, with `rabbitmqctl`)
and declares every consumer's queue before any service publishes, starts the development
mail/SMS/trace sinks when present (the services export their traces there), starts each service
as its own broker user (each creates its database and applies its migrations), waits until every
`/health/ready` answers, loads the demo data once, prints where to look, and stops everything
on Ctrl-C.
"""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from ssu_common import identities
from ssu_common.messaging import declare_suite_topology
from ssu_common.settings import amqp_vhost

ROOT = Path(__file__).resolve().parents[1]
RUN_DIR = ROOT / ".run"
SERVICES = {
    "licensing": 8081,
    "registry": 8082,
    "billing": 8083,
    "notification": 8084,
    "portal": 8085,
}
AMQP_URL = os.environ.get("SSU_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
DELIVERY_LIMIT = int(os.environ.get("SSU_DELIVERY_LIMIT", "10"))
PG_URL = os.environ.get("SSU_LICENSING_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/")

HOW_TO_START = {
    "PostgreSQL": (
        "  Debian: apt-get install postgresql && "
        "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n"
        "  Docker: docker compose -f deploy/compose.yaml up -d postgres"
    ),
    "RabbitMQ": (
        "  Debian: apt-get install rabbitmq-server && rabbitmq-server -detached\n"
        "  Docker: docker compose -f deploy/compose.yaml up -d rabbitmq"
    ),
}


def reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), timeout=2
        ):
            return True
    except OSError:
        return False


def check_infrastructure() -> None:
    missing = [
        (name, url)
        for name, url, port in (("PostgreSQL", PG_URL, 5432), ("RabbitMQ", AMQP_URL, 5672))
        if not reachable(url, port)
    ]
    for name, url in missing:
        safe = urlsplit(url)._replace(netloc=urlsplit(url).hostname or "").geturl()
        print(f"{name} cannot be reached at {safe}. Start it with:\n{HOW_TO_START[name]}")
    if missing:
        sys.exit(2)


def prepare_broker() -> None:
    """The broker identities and every consumer's queue, before any service publishes."""
    vhost = amqp_vhost(AMQP_URL)
    try:
        identities.apply(vhost)
    except (OSError, subprocess.CalledProcessError) as exc:
        # A broker elsewhere (compose, a cluster) loads the same from its definitions.
        print(f"could not create the broker users with rabbitmqctl ({exc}); assuming they exist")
    asyncio.run(declare_suite_topology(AMQP_URL, delivery_limit=DELIVERY_LIMIT))


def broker_identity_env(service: str) -> dict[str, str]:
    user = identities.broker_user(service)
    prefix = f"SSU_{service.upper()}_AMQP_"
    return {
        prefix + "USERNAME": os.environ.get(prefix + "USERNAME", user),
        prefix + "PASSWORD": os.environ.get(prefix + "PASSWORD", identities.dev_password(user)),
    }


def start(name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    RUN_DIR.mkdir(exist_ok=True)
    log = (RUN_DIR / f"{name}.log").open("ab")
    return subprocess.Popen(
        args,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, **(env or {})},
    )


async def wait_ready(procs: dict[str, subprocess.Popen[bytes]], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    pending = set(SERVICES)
    async with httpx.AsyncClient() as client:
        while pending and time.monotonic() < deadline:
            for name in sorted(pending):
                if procs[name].poll() is not None:
                    raise SystemExit(f"{name} exited; see {RUN_DIR / (name + '.log')}")
                try:
                    r = await client.get(
                        f"http://127.0.0.1:{SERVICES[name]}/health/ready", timeout=2
                    )
                    if r.status_code == 200:
                        pending.discard(name)
                        print(f"  {name:<13} ready")
                except httpx.HTTPError:
                    pass
            await asyncio.sleep(0.3)
    if pending:
        raise SystemExit(
            f"not ready after {timeout:.0f}s: {', '.join(sorted(pending))}; "
            f"see the logs in {RUN_DIR}"
        )


def main() -> None:
    check_infrastructure()
    procs: dict[str, subprocess.Popen[bytes]] = {}
    sinks = ROOT / "deploy" / "sinks.py"
    if sinks.exists():
        procs["sinks"] = start("sinks", [sys.executable, str(sinks)])
        # The sink also receives the services' traces, unless a collector is configured.
        os.environ.setdefault("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1026")
    prepare_broker()
    # The portal serves plain http on loopback here: its session cookie cannot be Secure.
    os.environ.setdefault("SSU_PORTAL_DEVELOPMENT", "true")
    for name in SERVICES:
        procs[name] = start(name, [sys.executable, "-m", f"ssu_{name}"], broker_identity_env(name))

    def stop_all(*_: object) -> None:
        print("\nstopping…")
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        sys.exit(0)

    signal.signal(signal.SIGINT, stop_all)
    signal.signal(signal.SIGTERM, stop_all)
    try:
        print("starting the ssu suite (logs in .run/)")
        asyncio.run(wait_ready(procs))
        print("loading demo data (ssu demo seed)…")
        ssu = Path(sys.executable).parent / "ssu"
        subprocess.run([str(ssu), "demo", "seed"], cwd=ROOT, check=False)
    except SystemExit as exc:
        print(exc)
        stop_all()
    print("\nssu is running. Key for every scope: Authorization: Bearer ssu-dev-admin")
    print(
        "  portal        http://127.0.0.1:8085/   (sign in: ssu-dev-east-kz for East Kazakhstan's"
        " board, ssu-dev-admin for the ministry's monitoring)"
    )
    for name, port in SERVICES.items():
        if name == "portal":
            continue
        print(
            f"  {name:<13} http://127.0.0.1:{port}/docs   metrics http://127.0.0.1:{port}/metrics"
        )
    print("  AsyncAPI      contracts/asyncapi.yaml")
    if "sinks" in procs:
        print("  mail sink     http://127.0.0.1:1026/mail   SMS sink http://127.0.0.1:1026/sms")
        print(
            "  traces        http://127.0.0.1:1026/traces (one: /traces/<trace id>; "
            f"exported to {os.environ['OTEL_EXPORTER_OTLP_ENDPOINT']})"
        )
    print("Ctrl-C stops everything.")
    while True:
        for name, proc in procs.items():
            if proc.poll() is not None:
                print(f"{name} exited with {proc.returncode}; see {RUN_DIR / (name + '.log')}")
                stop_all()
        time.sleep(1)


if __name__ == "__main__":
    main()
