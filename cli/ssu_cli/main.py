"""`ssu`: the operations command line (DESIGN §7).

Exit codes scripts can rely on: 0 done; 1 the operation failed or was refused; 2 wrong usage;
3 a check found problems (a broken audit chain); 4 a service, database or broker unreachable.
"""

import asyncio
import json
import re
import sys
from collections.abc import Coroutine
from enum import StrEnum
from typing import Any, TypeAlias, TypeVar

import asyncpg
import httpx
import typer
from ssu_common import JsonObject, outbox, seal
from ssu_common.messaging import declare_suite_topology
from ssu_common.topology import CONSUMERS

from ssu_cli import dlq
from ssu_cli.settings import SERVICES, CliSettings

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)
dlq_app = typer.Typer(help="Dead-letter queues: list, replay, purge.", no_args_is_help=True)
outbox_app = typer.Typer(help="Outboxes of every service.", no_args_is_help=True)
billing_app = typer.Typer(help="Billing runs.", no_args_is_help=True)
audit_app = typer.Typer(help="Audit trails.", no_args_is_help=True)
demo_app = typer.Typer(help="Demo data.", no_args_is_help=True)
topology_app = typer.Typer(help="The suite's queues and bindings.", no_args_is_help=True)
keys_app = typer.Typer(help="Keys of personal data at rest.", no_args_is_help=True)
for sub, name in (
    (topology_app, "topology"),
    (keys_app, "keys"),
    (dlq_app, "dlq"),
    (outbox_app, "outbox"),
    (billing_app, "billing"),
    (audit_app, "audit"),
    (demo_app, "demo"),
):
    app.add_typer(sub, name=name)

EXIT_FAILED, EXIT_PROBLEMS, EXIT_UNREACHABLE = 1, 3, 4
T = TypeVar("T")

# A JSON answer of a service or a report of ours, read by key (`body["status"]`, counts to add
# up): the service's schema is the truth, and a key read wrong fails the command at that line.
Answer: TypeAlias = dict[str, Any]  # type: ignore[explicit-any]


class Service(StrEnum):
    licensing = "licensing"
    registry = "registry"
    billing = "billing"
    notification = "notification"


def run(coro: Coroutine[object, object, T]) -> T:
    """Run a coroutine; turn an unreachable dependency into exit code 4 with a clear line."""
    try:
        return asyncio.run(coro)
    except (OSError, asyncpg.PostgresConnectionError, httpx.ConnectError) as exc:
        typer.secho(f"unreachable: {exc}", fg="red", err=True)
        raise typer.Exit(EXIT_UNREACHABLE) from exc


@dlq_app.command("list")
def dlq_list(
    service: Service, limit: int = typer.Option(100, min=1), as_json: bool = False
) -> None:
    """Show dead letters with their reason, leaving them in the queue."""
    letters = run(dlq.list_dead_letters(CliSettings().ops_broker_url(), service.value, limit))
    if as_json:
        typer.echo(dlq.as_json(letters))
        return
    if not letters:
        typer.echo(f"{service.value}: no dead letters")
    for letter in letters:
        typer.echo(
            f"{letter.message_id}  {letter.routing_key}  {letter.dead_lettered_at}\n"
            f"    reason: {letter.reason}"
        )


@dlq_app.command("replay")
def dlq_replay(service: Service, limit: int = typer.Option(10_000, min=1)) -> None:
    """Send dead letters back to the service's queue (after the cause was fixed)."""
    moved = run(dlq.replay(CliSettings().ops_broker_url(), service.value, limit))
    typer.echo(f"{service.value}: replayed {moved}")


@dlq_app.command("purge")
def dlq_purge(service: Service, yes: bool = typer.Option(False, "--yes")) -> None:
    """Delete every dead letter of a service."""
    if not yes:
        typer.confirm(f"delete every dead letter of {service.value}?", abort=True)
    purged = run(dlq.purge(CliSettings().ops_broker_url(), service.value))
    typer.echo(f"{service.value}: purged {purged}")


@outbox_app.command("status")
def outbox_status(as_json: bool = False) -> None:
    """Unpublished events per service and the age of the oldest."""
    settings = CliSettings()

    async def collect() -> dict[str, Answer]:
        result: dict[str, Answer] = {}
        for service in SERVICES:
            try:
                conn = await asyncpg.connect(settings.database_url(service), timeout=5)
            except (OSError, asyncpg.PostgresError) as exc:
                result[service] = {"error": str(exc)}
                continue
            try:
                st = await outbox.status(conn)
                result[service] = {
                    "pending": st.pending,
                    "oldest_seconds": round(st.oldest_seconds, 1),
                    "sent": st.sent,
                    "parked": st.parked,
                    "parked_types": list(st.parked_types),
                }
            finally:
                await conn.close()
        return result

    report = run(collect())
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        for service, row in report.items():
            if "error" in row:
                typer.echo(f"{service:<13} unreachable: {row['error']}")
            else:
                parked = (
                    f"  parked {row['parked']} unroutable ({', '.join(row['parked_types'])})"
                    if row["parked"]
                    else ""
                )
                typer.echo(
                    f"{service:<13} pending {row['pending']:>7}  oldest "
                    f"{row['oldest_seconds']:>8}s  sent {row['sent']}{parked}"
                )
    if any("error" in row for row in report.values()):
        raise typer.Exit(EXIT_UNREACHABLE)


@outbox_app.command("retry-parked")
def outbox_retry_parked(service: Service) -> None:
    """Hand a service's parked (unroutable) events back to its relay, once their queues exist."""
    settings = CliSettings()

    async def retry() -> int:
        conn = await asyncpg.connect(settings.database_url(service.value), timeout=5)
        try:
            return await outbox.retry_parked(conn)
        finally:
            await conn.close()

    typer.echo(f"{service.value}: {run(retry())} parked events handed back to the relay")


@topology_app.command("declare")
def topology_declare(delivery_limit: int = typer.Option(10, min=1)) -> None:
    """Declare every consumer's queues and bindings (as the deployment does before services
    start), with the administrator's credentials of SSU_AMQP_URL."""
    run(declare_suite_topology(CliSettings().amqp_url, delivery_limit=delivery_limit))
    typer.echo("declared the queues and bindings of " + ", ".join(sorted(CONSUMERS)))


BAR_WIDTH = 30


def run_progress(label: str, body: Answer) -> str:
    """One line of a billing run's progress, as GET /v1/runs/{id} reports it: a bar of the
    contracts invoiced of the run's contracts, and the phase the run is in."""
    progress = body.get("progress") or {}
    done, total = progress.get("done", 0), progress.get("total")
    status, phase = body["status"], body.get("phase")
    if status in ("completed", "approved"):
        filled = BAR_WIDTH
    elif total:
        filled = BAR_WIDTH * done // total
    else:
        filled = 0
    bar = "#" * filled + "-" * (BAR_WIDTH - filled)
    counted = f" {done}/{total} contracts" if total is not None else ""
    where = status if status in ("queued", "failed") or phase is None else phase
    return f"{label} [{bar}]{counted} {where}"


@billing_app.command("run")
def billing_run(
    period: str,
    region: str | None = typer.Option(
        None,
        help="KATO of the region to bill (AB0000000); without it a national key bills every "
        "region, a regional key its own",
    ),
    poll: float = typer.Option(0.5, min=0.05, help="seconds between looks at the run"),
) -> None:
    """Run billing for a month (YYYY-MM) through the billing service: the service accepts the
    run and bills it in the background; this shows its progress until it is done and prints
    the run (exit 1 when it was refused or failed)."""
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", period):
        typer.secho("period must be YYYY-MM", fg="red", err=True)
        raise typer.Exit(2)
    if region is not None and not re.fullmatch(r"\d{2}0{7}", region):
        typer.secho("region must be a region's KATO code (AB0000000)", fg="red", err=True)
        raise typer.Exit(2)
    settings = CliSettings()
    body = {"period": period} if region is None else {"period": period, "region": region}
    base = settings.api_url("billing")
    headers = {"Authorization": f"Bearer {settings.api_key}"}
    label = f"billing {period} {region or 'national'}"
    # on a terminal the bar is redrawn in place; in a log, a line per change
    redraw = sys.stdout.isatty()

    async def call() -> tuple[int, Answer]:
        async with httpx.AsyncClient(timeout=60) as client:
            response = await client.post(f"{base}/v1/runs", json=body, headers=headers)
            answer: Answer = response.json()
            if response.status_code not in (200, 202):
                return response.status_code, answer
            location, shown = response.headers["location"], ""
            while True:
                line = run_progress(label, answer)
                if line != shown:
                    typer.echo(f"\r{line}" if redraw else line, nl=not redraw)
                    shown = line
                if answer["status"] not in ("queued", "running"):
                    if redraw:
                        typer.echo()
                    return 200, answer
                await asyncio.sleep(poll)
                got = await client.get(f"{base}{location}", headers=headers)
                if got.status_code != 200:
                    return got.status_code, got.json()
                answer = got.json()

    status, result = run(call())
    typer.echo(json.dumps(result, ensure_ascii=False, indent=2))
    if status >= 400 or result.get("status") == "failed":
        raise typer.Exit(EXIT_FAILED)


@audit_app.command("verify")
def audit_verify(service: Service) -> None:
    """Check a service's audit log against its signed tree heads and the copies the other
    services hold; exit 3 when a record or head was edited, deleted, inserted or truncated."""
    settings = CliSettings()
    keys = seal.PublicKeys.load(settings.audit_public_keys_file)

    async def check() -> tuple[seal.Verification, list[str]]:
        conn = await asyncpg.connect(settings.database_url(service.value), timeout=5)
        try:
            records = await seal.records(conn)
            own = await seal.heads(conn, service=service.value)
        finally:
            await conn.close()
        copies: dict[str, list[seal.TreeHead]] = {}
        unreachable: list[str] = []
        for holder in SERVICES:
            if holder == service.value:
                continue
            try:
                other = await asyncpg.connect(settings.database_url(holder), timeout=5)
            except (OSError, asyncpg.PostgresError):
                unreachable.append(holder)
                continue
            try:
                copies[holder] = await seal.copies_of(other, service=service.value)
            except asyncpg.UndefinedTableError:
                unreachable.append(holder)
            finally:
                await other.close()
        result = seal.verify(
            service=service.value, records=records, own_heads=own, copies=copies, keys=keys
        )
        return result, unreachable

    result, unreachable = run(check())
    for finding in result.findings:
        typer.secho(str(finding), fg="red")
    for holder in unreachable:
        typer.secho(f"{holder}: unreachable, its copies were not checked", fg="yellow", err=True)
    typer.echo(
        f"{service.value}: {result.records} records ({result.sealed} sealed), "
        f"{result.heads} signed heads, {result.copies} copies elsewhere, "
        f"{len(result.findings)} problems"
    )
    if result.findings:
        raise typer.Exit(EXIT_PROBLEMS)


@keys_app.command("rotate")
def keys_rotate(service: Service, pause: float = typer.Option(0.0, min=0.0)) -> None:
    """Reseal a running service's personal data under its current key, a batch at a time.

    First give the service the new key (add it to its key file or environment, make it
    `current`, keep the old one) and roll it; then run this until it says done, and only then
    remove the old key. The service keeps serving throughout: it opens both keys."""
    settings = CliSettings()

    async def rotate() -> JsonObject:
        async with httpx.AsyncClient(timeout=120) as client:
            total = 0
            while True:
                response = await client.post(
                    f"{settings.api_url(service.value)}/v1/keys/rotation",
                    headers={"Authorization": f"Bearer {settings.api_key}"},
                )
                if response.status_code >= 400:
                    typer.secho(
                        f"{service.value}: {response.status_code} {response.text}",
                        fg="red",
                        err=True,
                    )
                    raise typer.Exit(EXIT_FAILED)
                step = response.json()
                moved = sum(step["resealed"].values())
                total += moved
                left = sum(step["remaining"].values())
                typer.echo(f"{service.value}: resealed {total}, remaining {left}")
                if step["done"]:
                    return {**step, "total": total}
                if moved == 0:
                    # Every remaining row is held by a writer right now: give it a moment.
                    await asyncio.sleep(max(pause, 0.5))
                elif pause:
                    await asyncio.sleep(pause)

    result = run(rotate())
    typer.echo(f"{service.value}: done, every value under key {result['key_id']}")


@keys_app.command("generate")
def keys_generate() -> None:
    """Print a new random 256-bit key (base64) for a key file."""
    from ssu_common import generate_key

    typer.echo(generate_key())


@demo_app.command("seed")
def demo_seed() -> None:
    """Load the demo region (East Kazakhstan) through the running services' APIs."""
    from ssu_cli import demo

    run(demo.seed(CliSettings()))
