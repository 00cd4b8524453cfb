"""Write latency of a service while a flood of anonymous (401) writes hits it.

Registry runs as a real process (`python -m ssu_registry`) on its own database; this process
sends `--writes` recipient registrations one after another with a valid key, first alone and
then while `--flood` concurrent clients keep posting without a key, and prints the write
latency percentiles of both. With the old audit chain every refused write took the one
advisory lock per database that every write's record also needed; now writers only insert.

`--source` runs the service from another checkout (e.g. `git archive main | tar -x -C /tmp/m`)
to measure the code before a change on the same machine, with this checkout's virtualenv.

    python bench/audit_contention.py [--writes 200] [--flood 300] [--source DIR]
"""

# bench/http.py sits beside this script: with the script's folder first on the path it would
# hide the standard library's `http` from everything imported after (httpx, asyncpg, uvicorn).
import sys
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]


import argparse
import asyncio
import multiprocessing as mp
import os
import statistics
import subprocess
import tempfile
import time
from datetime import date
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from harness import ADMIN, ServiceProcess, free_port, wait_ready
from ssu_contracts import make_iin

PG = "postgresql://postgres@127.0.0.1:5432"
DATABASE = "ssu_bench_audit_registry"
VHOST = "ssu_bench_audit"
AMQP_URL = f"amqp://guest:guest@127.0.0.1:5672/{VHOST}"


def _vhost(create: bool) -> None:
    """The bench's own virtual host (rabbitmqctl is local), so no one else's queues are met."""
    if create:
        subprocess.run(["rabbitmqctl", "-q", "add_vhost", VHOST], capture_output=True, check=False)
        subprocess.run(
            ["rabbitmqctl", "-q", "set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*"],
            capture_output=True,
            check=True,
        )
    else:
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", VHOST], capture_output=True)


def _body(serial: int) -> dict[str, object]:
    birth = date(1940 + serial % 60, 1 + serial % 12, 1 + serial % 28)
    return {
        "iin": make_iin(birth, "female", serial=serial // 720),
        "full_name": "Айгерим Сейтқали",
        "birth_date": birth.isoformat(),
        "category": "elderly",
        "region": "630000000",
        "language": "kk",
    }


async def _reset_database() -> None:
    conn = await asyncpg.connect(f"{PG}/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    finally:
        await conn.close()


def _spawn(source: Path, log_dir: Path) -> ServiceProcess:
    port = free_port()
    paths = [source / "libs" / "common", source / "services" / "registry", source / "contracts"]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(str(p) for p in paths),
        "SSU_REGISTRY_DATABASE_URL": f"{PG}/{DATABASE}",
        "SSU_REGISTRY_PORT": str(port),
        "SSU_AMQP_URL": AMQP_URL,
        "SSU_LOG_LEVEL": "WARNING",
    }
    log_path = log_dir / "registry.log"
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "ssu_registry"],
            env=env,
            cwd=source,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    return ServiceProcess(service="registry", port=port, process=process, log_path=log_path)


async def _writes(client: httpx.AsyncClient, first: int, count: int) -> list[float]:
    latencies = []
    for serial in range(first, first + count):
        started = time.perf_counter()
        r = await client.post("/v1/recipients", json=_body(serial), headers=ADMIN)
        latencies.append((time.perf_counter() - started) * 1000)
        assert r.status_code == 201, r.text
    return latencies


async def _flood(url: str, clients: int, stop: Any) -> tuple[int, int]:
    """`clients` concurrent anonymous writers until `stop` is set: (answered 401, failed)."""
    body = _body(999_999)
    counts = [0, 0]
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def one(client: httpx.AsyncClient) -> None:
        while not stop.is_set():
            try:
                r = await client.post("/v1/recipients", json=body)
            except httpx.HTTPError:
                counts[1] += 1  # the server could not keep up
                continue
            assert r.status_code == 401, r.text
            counts[0] += 1

    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        await asyncio.gather(*(one(client) for _ in range(clients)))
    return counts[0], counts[1]


def _flood_process(url: str, clients: int, stop: Any, out: Any) -> None:
    # Its own process, so the flood's coroutines do not delay the measured writer's loop.
    out.put(asyncio.run(_flood(url, clients, stop)))


def _summary(name: str, ms: list[float]) -> str:
    q = statistics.quantiles(ms, n=100)
    return (
        f"{name:<28} n={len(ms):>4}  p50 {q[49]:7.1f} ms  p95 {q[94]:7.1f} ms  "
        f"p99 {q[98]:7.1f} ms  mean {statistics.fmean(ms):7.1f} ms"
    )


async def main(writes: int, flood: int, source: Path) -> None:
    _vhost(create=True)
    await _reset_database()
    with tempfile.TemporaryDirectory() as tmp:
        proc = _spawn(source, Path(tmp))
        try:
            await wait_ready(proc)
            async with (
                httpx.AsyncClient(base_url=proc.url, timeout=300) as writer,
            ):
                await _writes(writer, 0, 20)  # warm up
                alone = await _writes(writer, 20, writes)
                results: Any = mp.Queue()
                stop = mp.Event()
                flooder = mp.Process(target=_flood_process, args=(proc.url, flood, stop, results))
                flooder.start()
                await asyncio.sleep(2.0)  # let the flood build up
                started = time.perf_counter()
                flooded = await _writes(writer, 20 + writes, writes)
                elapsed = time.perf_counter() - started
                stop.set()
                answered, failed = await asyncio.to_thread(results.get)
                flooder.join()
            print(f"source: {source}")
            print(_summary("writes alone", alone))
            print(_summary(f"writes under {flood} x 401", flooded))
            print(f"{'refused requests answered':<28} {answered:8d}")
            print(f"{'flood requests failed':<28} {failed:8d}")
            print(f"{'flooded writes took':<28} {elapsed:8.1f} s")
        except Exception:
            print(proc.log_path.read_text(encoding="utf-8")[-3000:], file=sys.stderr)
            raise
        finally:
            proc.stop()
            await _reset_database()
            _vhost(create=False)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--flood", type=int, default=300)
    parser.add_argument("--source", type=Path, default=ROOT)
    args = parser.parse_args()
    asyncio.run(main(args.writes, args.flood, args.source.resolve()))
