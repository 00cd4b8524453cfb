"""Benchmark of the reliable event path as the services run it, beside the broker's ceiling.

Reliable: a producer process (tests/faults/pair_service.py) commits a row and its outbox event
in one transaction per request (`POST /v1/things/bulk`, paced by this process), its relay
publishes with confirms, and a consumer process applies each event through the inbox (one
`effects` row per event). Latency is the event's `time` (set in the producer's transaction)
to the moment the consumer's handler applied it.

Raw: bench/pipeline_raw.py as a publisher process (aio-pika, persistent messages, confirms)
and a consumer process (manual acks), same message size, same kind of queue: the ceiling.

Each offered rate runs for a few seconds and is drained before the next. Then: the reliable
maximum against the raw maximum, the p99 at half the reliable maximum, events lost and
duplicated over the whole run, and the HTTP write path alone (`POST /v1/things`, one event per
request, N concurrent clients). Uses its own virtual host and databases (`ssu_bench*`),
removed at the end; loopback only.

    python bench/pipeline.py [--seconds 3] [--clients 16]
"""

# bench/http.py sits beside this script: with the script's folder first on the path it would
# hide the standard library's `http` from everything imported after (httpx, asyncpg, uvicorn).
import sys
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]


import argparse
import asyncio
import contextlib
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "faults"))

import pair_service
from harness import ADMIN, ServiceProcess, free_port, wait_ready

VHOST = "ssu_bench"
AMQP = f"amqp://guest:guest@127.0.0.1:5672/{VHOST}"
PG = "postgresql://postgres@127.0.0.1:5432"
PRODUCER = "bench_producer"
CONSUMER = "bench_consumer"
RATES: list[float] = [250, 500, 1000, 2000, 4000, 0]  # 0: unthrottled
UNTHROTTLED_EVENTS = 6_000
MAX_STEP_EVENTS = 6_000  # keeps the drain of the fast steps, and the run, short
TICK = 0.025  # the paced producer sends one bulk request per tick


@dataclass
class Step:
    offered: float  # events/s asked for (0: as fast as possible)
    achieved: float  # events/s actually offered
    events: int
    sustained: float  # events/s end to end
    p50_ms: float
    p99_ms: float
    duplicated: int = 0
    relay_p50_ms: float | None = None  # outbox row committed → published and marked
    relay_p99_ms: float | None = None


def rate_label(rate: float) -> str:
    return f"{rate:>7.0f}" if rate else "  unthr"


def print_table(title: str, steps: list[Step]) -> None:
    print(f"\n{title}")
    relay = steps[0].relay_p50_ms is not None
    print(
        "  offered/s  achieved/s  events  sustained/s   p50 ms   p99 ms"
        + ("   (of which outbox→published p50/p99 ms)" if relay else "")
    )
    for s in steps:
        print(
            f"  {rate_label(s.offered):>9}  {s.achieved:>10.0f}  {s.events:>6}"
            f"  {s.sustained:>11.0f}  {s.p50_ms:>7.1f}  {s.p99_ms:>7.1f}"
            + (f"   {s.relay_p50_ms:>7.1f} / {s.relay_p99_ms:.1f}" if relay else "")
        )


def run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


def fresh_vhost() -> None:
    subprocess.run(["rabbitmqctl", "-q", "delete_vhost", VHOST], capture_output=True)
    for attempt in range(10):
        try:
            run("rabbitmqctl", "-q", "add_vhost", VHOST)
            run("rabbitmqctl", "-q", "set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*")
            return
        except subprocess.CalledProcessError:
            if attempt == 9:
                raise
            time.sleep(1.0)


async def drop_databases() -> None:
    admin = await asyncpg.connect(f"{PG}/postgres")
    try:
        for name in (PRODUCER, CONSUMER):
            await admin.execute(f'DROP DATABASE IF EXISTS "ssu_bench_{name}" WITH (FORCE)')
    finally:
        await admin.close()


def dsn(service: str) -> str:
    return f"{PG}/ssu_bench_{service}"


def spawn(role: str, service: str, log_dir: Path, env: dict[str, str]) -> ServiceProcess:
    port = free_port()
    log_path = log_dir / f"{service}.log"
    process = pair_service.spawn(
        role,
        service=service,
        database_url=dsn(service),
        amqp_url=AMQP,
        port=port,
        log_path=log_path,
        env=env,
    )
    return ServiceProcess(service=service, port=port, process=process, log_path=log_path)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


# raw aio-pika


class Raw:
    def __init__(self, body: bytes, prefetch: int, work: Path) -> None:
        self.body_file = work / "body.json"
        self.body_file.write_bytes(body)
        self.prefetch = prefetch
        self.received: dict[int, tuple[float, float]] = {}
        self.duplicates = 0

    async def start(self) -> None:
        script = str(ROOT / "bench" / "pipeline_raw.py")
        self.consumer = await asyncio.create_subprocess_exec(
            sys.executable, script, "consumer", AMQP, str(self.prefetch),
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert self.consumer.stdout is not None
        assert (await self.consumer.stdout.readline()).strip() == b"ready"
        self._reader = asyncio.create_task(self._read())
        self.publisher = await asyncio.create_subprocess_exec(
            sys.executable, script, "publisher", AMQP, str(self.body_file),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip

    async def _read(self) -> None:
        assert self.consumer.stdout is not None
        while line := await self.consumer.stdout.readline():
            seq, published, received = line.split()
            if int(seq) in self.received:
                self.duplicates += 1
            self.received[int(seq)] = (int(published) / 1e6, int(received) / 1e6)

    async def step(self, rate: float, count: int, first: int) -> Step:
        assert self.publisher.stdin is not None and self.publisher.stdout is not None
        began = time.monotonic()
        self.publisher.stdin.write(f"{rate} {count} {first}\n".encode())
        await self.publisher.stdin.drain()
        done = (await self.publisher.stdout.readline()).split()
        seconds = float(done[3])
        deadline = time.monotonic() + 60
        seqs = range(first, first + count)
        while time.monotonic() < deadline:
            if all(s in self.received for s in seqs):
                break
            await asyncio.sleep(0.05)
        got = [self.received[s] for s in seqs if s in self.received]
        latencies = sorted((r - p) * 1000 for p, r in got)
        span = max(r for _, r in got) - min(p for p, _ in got)
        print(f"  [raw {rate:g}/s done in {time.monotonic() - began:.1f} s]", file=sys.stderr)
        return Step(
            offered=rate,
            achieved=count / seconds,
            events=len(got),
            sustained=len(got) / span,
            p50_ms=percentile(latencies, 0.5),
            p99_ms=percentile(latencies, 0.99),
        )

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            assert self.publisher.stdin is not None
            self.publisher.stdin.write(b"quit\n")
            await self.publisher.stdin.drain()
            await asyncio.wait_for(self.publisher.wait(), 5)
        for proc in (self.publisher, self.consumer):
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        self._reader.cancel()


# reliable path


class Reliable:
    def __init__(self, producer: ServiceProcess) -> None:
        self.url = producer.url
        self.http = httpx.AsyncClient(headers=ADMIN, timeout=30)
        self.failed = 0

    async def _post(self, first: int, count: int) -> None:
        while True:
            try:
                r = await self.http.post(
                    f"{self.url}/v1/things/bulk", json={"first_seq": first, "count": count}
                )
                if r.status_code == 201:
                    return
            except httpx.HTTPError:
                pass
            self.failed += 1
            await asyncio.sleep(0.1)

    async def offer(self, rate: float, count: int, first: int) -> float:
        """Post `count` events from `first` on at `rate` events/s; returns the seconds taken."""
        started = time.monotonic()
        if rate:
            tasks: list[asyncio.Task[None]] = []
            sent = 0
            tick = 0
            while sent < count:
                tick += 1
                due = min(count, round(tick * TICK * rate)) - sent
                if due > 0:
                    tasks.append(asyncio.create_task(self._post(first + sent, due)))
                    sent += due
                await asyncio.sleep(max(0.0, started + tick * TICK - time.monotonic()))
            await asyncio.gather(*tasks)
        else:
            chunk = 250
            starts = iter(range(first, first + count, chunk))

            async def client() -> None:
                for s in starts:
                    await self._post(s, min(chunk, first + count - s))

            await asyncio.gather(*(client() for _ in range(3)))
        return time.monotonic() - started

    async def step(
        self,
        consumer_db: asyncpg.Connection,
        producer_db: asyncpg.Connection,
        rate: float,
        count: int,
        first: int,
    ) -> Step:
        began = time.monotonic()
        seconds = await self.offer(rate, count, first)
        last = first + count
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            done = await consumer_db.fetchval(
                "SELECT count(DISTINCT seq) FROM effects WHERE seq >= $1 AND seq < $2", first, last
            )
            if done >= count:
                break
            await asyncio.sleep(0.1)
        row = await consumer_db.fetchrow(
            "SELECT count(DISTINCT event_id) AS events, count(*) - count(DISTINCT event_id) AS dup,"
            " extract(epoch FROM max(applied_at) - min(event_time)) AS span,"
            " percentile_cont(0.5) WITHIN GROUP (ORDER BY applied_at - event_time) AS p50,"
            " percentile_cont(0.99) WITHIN GROUP (ORDER BY applied_at - event_time) AS p99"
            " FROM effects WHERE seq >= $1 AND seq < $2",
            first,
            last,
        )
        relay = await producer_db.fetchrow(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY sent_at - created_at) AS p50,"
            " percentile_cont(0.99) WITHIN GROUP (ORDER BY sent_at - created_at) AS p99"
            " FROM outbox WHERE subject::bigint >= $1 AND subject::bigint < $2",
            first,
            last,
        )
        assert row is not None and relay is not None
        print(f"  [reliable {rate:g}/s done in {time.monotonic() - began:.1f} s]", file=sys.stderr)
        return Step(
            offered=rate,
            achieved=count / seconds,
            events=row["events"],
            sustained=row["events"] / float(row["span"]),
            p50_ms=row["p50"].total_seconds() * 1000,
            p99_ms=row["p99"].total_seconds() * 1000,
            duplicated=row["dup"],
            relay_p50_ms=relay["p50"].total_seconds() * 1000,
            relay_p99_ms=relay["p99"].total_seconds() * 1000,
        )

    async def http_write_path(
        self, clients: int, seconds: float, first: int
    ) -> tuple[int, float, float, int]:
        """`POST /v1/things` (one row, one event per request) from `clients` at once."""
        latencies: list[float] = []
        errors = 0
        next_seq = first
        stop_at = time.monotonic() + seconds

        async def client() -> None:
            nonlocal next_seq, errors
            while time.monotonic() < stop_at:
                seq, next_seq = next_seq, next_seq + 1
                t0 = time.perf_counter()
                r = await self.http.post(f"{self.url}/v1/things", json={"seq": seq})
                latencies.append(time.perf_counter() - t0)
                if r.status_code != 201:
                    errors += 1

        started = time.monotonic()
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.monotonic() - started
        ordered = sorted(latencies)
        return len(ordered), len(ordered) / elapsed, percentile(ordered, 0.99) * 1000, errors

    async def close(self) -> None:
        await self.http.aclose()


async def lost_and_duplicated() -> tuple[int, int, int]:
    producer = await asyncpg.connect(dsn(PRODUCER))
    consumer = await asyncpg.connect(dsn(CONSUMER))
    try:
        sent = {r[0] for r in await producer.fetch("SELECT event_id FROM outbox")}
        rows = await consumer.fetch("SELECT event_id, count(*) AS n FROM effects GROUP BY event_id")
    finally:
        await producer.close()
        await consumer.close()
    applied = {r["event_id"] for r in rows}
    return len(sent), len(sent - applied), sum(1 for r in rows if r["n"] > 1)


async def wait_drained(total: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sent, lost, _ = await lost_and_duplicated()
        if sent >= total and lost == 0:
            return
        await asyncio.sleep(0.25)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per offered rate")
    parser.add_argument("--clients", type=int, default=16, help="for the HTTP write path")
    parser.add_argument("--rates", default=",".join(str(int(r)) for r in RATES))
    parser.add_argument("--unthrottled-events", type=int, default=UNTHROTTLED_EVENTS)
    parser.add_argument("--skip-raw", action="store_true")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    # SSU_PREFETCH, SSU_CONSUMER_BATCH, SSU_OUTBOX_BATCH, SSU_LOG_LEVEL pass through.
    env: dict[str, str] = {}
    began = time.monotonic()

    fresh_vhost()
    await drop_databases()
    work = Path(tempfile.mkdtemp(prefix="ssu-bench-pipeline-"))
    consumer = spawn("consumer", CONSUMER, work, env)
    producer: ServiceProcess | None = None
    raw: Raw | None = None
    try:
        await wait_ready(consumer)
        producer = spawn("producer", PRODUCER, work, env)
        await wait_ready(producer)
        reliable = Reliable(producer)
        consumer_db = await asyncpg.connect(dsn(CONSUMER))
        producer_db = await asyncpg.connect(dsn(PRODUCER))
        print(
            f"ssu pipeline benchmark — {time.strftime('%Y-%m-%d %H:%M:%S')}, "
            f"{len(os.sched_getaffinity(0))} CPUs, {args.seconds:g} s per rate"
        )
        settings = pair_service.PairSettings()
        print(
            f"settings: prefetch={settings.prefetch} consumer_batch={settings.consumer_batch}"
            f" outbox_batch={settings.outbox_batch} log_level={settings.log_level}"
        )

        # One event first, to warm up and to take a real message body for the raw path.
        await reliable.offer(0, 1, 0)
        await wait_drained(1)
        pconn = await asyncpg.connect(dsn(PRODUCER))
        body = (await pconn.fetchval("SELECT body FROM outbox LIMIT 1")).encode()
        await pconn.close()
        print(f"message: {len(body)} bytes (a CloudEvents envelope), persistent, quorum queue")

        raw_steps: list[Step] = []
        if not args.skip_raw:
            raw = Raw(body, settings.prefetch, work)
            await raw.start()
            first = 0
            await raw.step(0, 500, 10_000_000)  # warm-up
            raw_pids = (raw.publisher.pid, raw.consumer.pid)
            raw_cpu = [cpu_seconds(pid) for pid in raw_pids]
            for rate in rates:
                count = (
                    min(int(rate * args.seconds), MAX_STEP_EVENTS)
                    if rate
                    else args.unthrottled_events
                )
                raw_steps.append(await raw.step(rate, count, first))
                first += count
            raw_cpu = [cpu_seconds(pid) - c for pid, c in zip(raw_pids, raw_cpu, strict=True)]
            await raw.stop()
            print_table("raw aio-pika (publish with confirms → consume with ack):", raw_steps)

        steps: list[Step] = []
        first = 1
        pids = (producer.process.pid, consumer.process.pid)
        cpu = [cpu_seconds(pid) for pid in pids]
        for rate in rates:
            count = (
                min(int(rate * args.seconds), MAX_STEP_EVENTS) if rate else args.unthrottled_events
            )
            steps.append(await reliable.step(consumer_db, producer_db, rate, count, first))
            first += count
        print_table(
            "reliable (service transaction → outbox → relay → RabbitMQ → inbox → effect):", steps
        )

        cpu = [cpu_seconds(pid) - c for pid, c in zip(pids, cpu, strict=True)]
        swept = first - 1
        reliable_max = max(s.sustained for s in steps)
        half = round(reliable_max / 2)
        count = int(half * args.seconds)
        at_half = await reliable.step(consumer_db, producer_db, half, count, first)
        first += count
        print_table("reliable at half its maximum:", [at_half])

        requests, rps, p99, errors = await reliable.http_write_path(
            args.clients, args.seconds, first
        )
        first += requests
        print(
            f"\nHTTP write path alone: POST /v1/things (one row + one event per request),"
            f" {args.clients} concurrent clients: {rps:.0f} requests/s, p99 {p99:.1f} ms,"
            f" {errors} errors"
        )

        await wait_drained(first - 1)
        sent, lost, duplicated = await lost_and_duplicated()
        await consumer_db.close()
        await producer_db.close()
        await reliable.close()

        print("\nsummary")
        if raw_steps:
            raw_max = max(s.sustained for s in raw_steps)
            print(f"  raw aio-pika max:     {raw_max:>7.0f} events/s")
            print(
                f"  reliable path max:    {reliable_max:>7.0f} events/s"
                f" = {100 * reliable_max / raw_max:.0f}% of raw (target >= 50%)"
            )
        per = 1e6 / swept
        print(
            f"  CPU per event: producer process {cpu[0] * per:.0f} µs (HTTP, transaction, relay),"
            f" consumer process {cpu[1] * per:.0f} µs (inbox, handler, ack)"
        )
        if raw_steps:
            rper = 1e6 / sum(s.events for s in raw_steps)
            print(
                f"  CPU per message, raw: publisher {raw_cpu[0] * rper:.0f} µs,"
                f" consumer {raw_cpu[1] * rper:.0f} µs"
            )
        print(
            f"  p99 at {half}/s (half the reliable max): {at_half.p99_ms:.1f} ms (target < 50 ms)"
        )
        print(f"  end of run: {sent} events in the outbox, lost={lost} duplicated={duplicated}")
        print(f"  wall time {time.monotonic() - began:.0f} s; logs in {work}")
        return 0 if lost == 0 and duplicated == 0 else 1
    finally:
        if raw is not None:
            with contextlib.suppress(Exception):
                await raw.stop()
        for proc in (producer, consumer):
            if proc is not None:
                proc.stop()
        with contextlib.suppress(Exception):
            await drop_databases()
        await asyncio.to_thread(
            subprocess.run, ["rabbitmqctl", "-q", "delete_vhost", VHOST], capture_output=True
        )


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
