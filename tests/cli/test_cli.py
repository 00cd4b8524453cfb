"""The `ssu` command as scripts use it: real process, real broker and database, exit codes."""

import asyncio
import json
import os
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import aio_pika
import asyncpg
from harness import (
    AMQP_URL,
    ROOT,
    delete_queues,
    drop_database,
    processes,
    reset_service,
    spawn_service,
    test_dsn,
    wait_ready,
)
from prometheus_client import CollectorRegistry
from ssu_cli.main import run_progress
from ssu_common import audit, seal
from ssu_common.db import create_pool, ensure_database, migrate
from ssu_common.messaging import create_broker, declare_topology

SSU = str(Path(sys.executable).parent / "ssu")


async def ssu(*args: str, **env: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        SSU,
        *args,
        env={**os.environ, "SSU_AMQP_URL": AMQP_URL, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_dlq_list_replay_purge() -> None:
    # The billing service's queues, declared as the service declares them.
    await delete_queues("billing.events", "billing.events.dlq")
    broker = create_broker(url=AMQP_URL, service="billing", registry=CollectorRegistry())
    await broker.connect()
    await declare_topology(broker, "billing", delivery_limit=5, event_types=["cli.test.v1"])
    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel()
        await (await channel.get_queue("billing.events")).purge()
        dlq = await channel.get_queue("billing.events.dlq")
        await dlq.purge()
        for i in range(3):
            await channel.default_exchange.publish(
                aio_pika.Message(
                    f'{{"n": {i}}}'.encode(),
                    message_id=f"m{i}",
                    headers={
                        "x-ssu-dead-letter-reason": f"invalid message: n={i}",
                        "x-ssu-original-routing-key": "cli.test.v1",
                    },
                ),
                routing_key="billing.events.dlq",
            )
        code, out = await ssu("dlq", "list", "billing", "--as-json")
        assert code == 0, out
        listed = json.loads(out)
        assert [d["message_id"] for d in listed] == ["m0", "m1", "m2"]
        assert listed[1]["reason"] == "invalid message: n=1"
        assert listed[1]["routing_key"] == "cli.test.v1"

        code, out = await ssu("dlq", "replay", "billing", "--limit", "2")
        assert (code, out.strip()) == (0, "billing: replayed 2")
        work = await channel.declare_queue("billing.events", passive=True)
        assert work.declaration_result.message_count == 2
        replayed = await work.get(no_ack=True)
        assert replayed.body == b'{"n": 0}'
        assert replayed.headers["x-ssu-replayed"] is True
        assert "x-ssu-dead-letter-reason" not in replayed.headers

        code, out = await ssu("dlq", "purge", "billing", "--yes")
        assert (code, out.strip()) == (0, "billing: purged 1")
    finally:
        channel = await connection.channel()
        await channel.queue_delete("billing.events")
        await channel.queue_delete("billing.events.dlq")
        await connection.close()
        await broker.stop()


async def test_audit_verify_exit_codes(tmp_path: Path) -> None:
    await drop_database("cli_audit")
    dsn = test_dsn("cli_audit")
    await ensure_database(dsn)
    pool = await create_pool(dsn)
    try:
        await migrate(pool, tmp_path)
        async with pool.acquire() as conn:
            for i in range(3):
                async with conn.transaction():
                    await audit.record(
                        conn, aggregate=audit.Aggregate("thing", f"t{i}"), action="thing.created"
                    )
            signer = seal.Signer.load(ROOT / "deploy" / "audit-keys" / "dev" / "registry.pem")
            await seal.seal_once(conn, service="registry", signer=signer)
        nowhere = "postgresql://postgres@127.0.0.1:1/none"
        env = {
            "SSU_REGISTRY_DATABASE_URL": dsn,
            **{f"SSU_{s}_DATABASE_URL": nowhere for s in ("LICENSING", "BILLING", "NOTIFICATION")},
        }
        code, out = await ssu("audit", "verify", "registry", **env)
        assert (code, out.splitlines()[-1]) == (
            0,
            "registry: 3 records (3 sealed), 1 signed heads, 0 copies elsewhere, 0 problems",
        )
        assert "licensing: unreachable, its copies were not checked" in out
        await pool.execute("UPDATE audit_records SET action = 'thing.deleted' WHERE id = 2")
        code, out = await ssu("audit", "verify", "registry", **env)
        assert code == 3
        assert "record 2: edited after it was sealed (its leaf hash differs)" in out
    finally:
        await pool.close()


async def test_usage_and_unreachable_exit_codes() -> None:
    code, _ = await ssu("billing", "run", "2026-13")
    assert code == 2
    code, out = await ssu(
        "outbox", "status", SSU_LICENSING_DATABASE_URL="postgresql://postgres@127.0.0.1:1/x"
    )
    assert code == 4
    assert out.startswith("licensing     unreachable:")


def test_the_progress_bar_of_a_run() -> None:
    label = "billing 2026-03 national"
    queued = {"status": "queued", "phase": None, "progress": {"done": 0, "total": None}}
    assert run_progress(label, queued) == f"{label} [{'-' * 30}] queued"
    checks = {"status": "running", "phase": "checks", "progress": {"done": 0, "total": 120}}
    assert run_progress(label, checks) == f"{label} [{'-' * 30}] 0/120 contracts checks"
    midway = {"status": "running", "phase": "invoices", "progress": {"done": 40, "total": 120}}
    assert run_progress(label, midway) == (
        f"{label} [{'#' * 10}{'-' * 20}] 40/120 contracts invoices"
    )
    done = {"status": "completed", "phase": "done", "progress": {"done": 120, "total": 120}}
    assert run_progress(label, done) == f"{label} [{'#' * 30}] 120/120 contracts done"
    failed = {"status": "failed", "phase": "amounts", "progress": {"done": 0, "total": None}}
    assert run_progress(label, failed) == f"{label} [{'-' * 30}] failed"


async def test_billing_run_of_a_region_and_a_future_month(tmp_path: Path) -> None:
    await reset_service("billing")
    proc = spawn_service("billing", log_dir=tmp_path)
    with processes(proc):
        await wait_ready(proc)
        env = {"SSU_BILLING_URL": proc.url}
        today = datetime.now(ZoneInfo("Asia/Almaty")).date()
        last_month = (today.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
        label = f"billing {last_month} 630000000"
        # a run that fails (its completion refused, as a constraint would): exit 1, and why
        db = await asyncpg.connect(test_dsn("billing"))
        try:
            await db.execute(
                "CREATE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$"
                " BEGIN RAISE EXCEPTION 'completion refused'; END $$;"
                " CREATE TRIGGER test_refuse BEFORE UPDATE ON runs FOR EACH ROW"
                " WHEN (NEW.status = 'completed') EXECUTE FUNCTION test_refuse()"
            )
            code, out = await ssu("billing", "run", last_month, "--region", "630000000", **env)
            assert code == 1, out
            bars = out[: out.index("{")].splitlines()
            assert bars[-1] == f"{label} [{'-' * 30}] 0/0 contracts failed"
            failed = json.loads(out[out.index("{") :])
            # it failed completing, after its (no) invoices were written
            assert (failed["status"], failed["phase"]) == ("failed", "invoices")
            assert "completion refused" in failed["error"]
            await db.execute("DROP TRIGGER test_refuse ON runs; DROP FUNCTION test_refuse")
        finally:
            await db.close()

        code, out = await ssu("billing", "run", last_month, "--region", "630000000", **env)
        assert code == 0, out
        bars = out[: out.index("{")].splitlines()
        # a line per change of the bar (no terminal here), from accepted to done
        assert bars[0] in (f"{label} [{'-' * 30}] queued", f"{label} [{'-' * 30}] loading")
        assert bars[-1] == f"{label} [{'#' * 30}] 0/0 contracts done"
        assert len(bars) == len(set(bars))
        result = json.loads(out[out.index("{") :])
        assert (result["period"], result["region"], result["invoices"], result["status"]) == (
            last_month,
            "630000000",
            0,
            "completed",
        )
        assert result["id"] != failed["id"]
        next_month = (today.replace(day=28) + timedelta(days=4)).strftime("%Y-%m")
        code, out = await ssu("billing", "run", next_month, **env)
        assert code == 1
        assert json.loads(out[out.index("{") :])["errors"][0]["field"] == "period"
        code, _ = await ssu("billing", "run", last_month, "--region", "63", **env)
        assert code == 2
