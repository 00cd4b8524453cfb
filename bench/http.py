"""Benchmark of the online path: each measured ssu route beside a bare twin doing the same work.

The services run as real processes (licensing and registry, one uvicorn process each, as
deployed) on their own databases and virtual host (`ssu_bench_http*`, removed at the end); the
twin is bench/http_bare.py, FastAPI + asyncpg with the same rows read and written in the same
transactions and nothing else. `wrk` (Debian package `wrk`, C, two threads) is the load: its own
CPU is printed so that it is seen not to be the bottleneck.

For each route, in one sitting: the maximum rate (16 connections) of ssu and of the twin, their
p50 and p99, the server's CPU per request, the ratio ssu/twin; then ssu paced at half its
maximum, whose p99 is the latency goal. Goals: ratio >= 0.7, p99 at half the maximum < 50 ms.

    python bench/http.py [--seconds 5] [--connections 16]
    python bench/http.py --quick   # make test-bench: exits 1 when a ratio falls below 0.5

Routes: `GET /health/live`; a public list `GET /v1/licenses?limit=20`; a single-object read
`GET /v1/licenses/{number}`; a write `POST /v1/recipients` with fresh IINs (row, outbox,
audit); a state change `POST /v1/licenses/{number}/suspend` and `/reinstate` in turn.
"""

import sys
from pathlib import Path

# This file is bench/http.py: run as a script its folder would come first on the path and hide
# the standard library's `http` package from everything imported after.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "licensing"))
PREFIX = "ssu_bench_http"
# The harness reads these when imported: the bench's own vhost and databases.
os.environ["SSU_TEST_VHOST"] = PREFIX
os.environ["SSU_TEST_DB_PREFIX"] = PREFIX

import asyncpg
import httpx
from harness import (
    ADMIN,
    PG_ADMIN,
    ServiceProcess,
    drop_database,
    ensure_vhost,
    free_port,
    reset_service,
    spawn_service,
    test_dsn,
    wait_ready,
)
from licensing_world import application

LICENSES = 64  # state changes go round them: suspend all, then reinstate all, and so on
OFFICIAL = "bench.official"
BARE_DB = f"{PREFIX}_bare"
THREADS = 2
RATIO_GOAL = 0.7
P99_GOAL_MS = 50.0
QUICK_FLOOR = 0.5

# One script for every route; Python fills in what differs. A thread takes every THREADS-th
# license, so that one license is never in two threads' hands at once.
LUA = r"""
local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

local mode, serial, mine, counter = "%(mode)s", 0, {}, 0
function init(args)
  serial = tonumber(args[1]) + tid * 100000
  local i = 0
  for line in io.lines("%(numbers)s") do
    if i %% %(threads)d == tid then table.insert(mine, line) end
    i = i + 1
  end
  wrk.headers["Authorization"] = "Bearer %(key)s"
  wrk.headers["X-SSU-Official"] = "%(official)s"
  wrk.headers["Content-Type"] = "application/json"
end

-- A valid IIN of a woman born on a day from 1950-01-01 on (the Kazakh check digit).
local function iin(k)
  while true do
    local day = os.time{year=1950, month=1, day=1, hour=12} + math.floor(k / 9000) * 86400
    local born = os.date("*t", day)
    local digits = string.format("%%02d%%02d%%02d4%%04d",
      born.year %% 100, born.month, born.day, k %% 9000 + 1000)
    local sum = 0
    for j = 1, 11 do sum = sum + tonumber(digits:sub(j, j)) * j end
    local check = sum %% 11
    if check == 10 then
      local w = {3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2}
      sum = 0
      for j = 1, 11 do sum = sum + tonumber(digits:sub(j, j)) * w[j] end
      check = sum %% 11
    end
    if check ~= 10 then return digits .. check, born end
    k = k + 1
    serial = serial + 1
  end
end

function request()
  local c = counter
  counter = counter + 1
  if mode == "live" then return wrk.format("GET", "/health/live") end
  if mode == "list" then return wrk.format("GET", "/v1/licenses?limit=20") end
  local n = mine[(c %% #mine) + 1]
  if mode == "read" then return wrk.format("GET", "/v1/licenses/" .. n) end
  if mode == "state" then
    if math.floor(c / #mine) %% 2 == 0 then
      return wrk.format("POST", "/v1/licenses/" .. n .. "/suspend", nil, '{"reason":"bench"}')
    end
    return wrk.format("POST", "/v1/licenses/" .. n .. "/reinstate", nil, '{}')
  end
  serial = serial + 1
  local number, born = iin(serial)
  local body = string.format('{"iin":"%%s","full_name":"Айгерим Сейтқали",'
    .. '"birth_date":"%%04d-%%02d-%%02d","category":"elderly","region":"630000000",'
    .. '"language":"kk","phone":"+77051112233"}',
    number, born.year, born.month, born.day)
  return wrk.format("POST", "/v1/recipients", nil, body)
end
%(delay)s
"""


@dataclass(frozen=True)
class Route:
    name: str
    mode: str
    service: str  # which ssu service answers it


ROUTES = [
    Route("GET /health/live", "live", "licensing"),
    Route("GET /v1/licenses?limit=20 (public)", "list", "licensing"),
    Route("GET /v1/licenses/{number}", "read", "licensing"),
    Route("POST /v1/recipients", "write", "registry"),
    Route("POST /v1/licenses/{n}/suspend|reinstate", "state", "licensing"),
]


@dataclass
class Load:
    rate: float  # requests/s answered
    requests: int
    p50_ms: float
    p99_ms: float
    errors: int  # non-2xx answers and socket errors
    server_cpu_ms: float  # per request
    wrk_cpu_share: float  # wrk's CPU over the run's wall time, in cores


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def parse_wrk(out: str) -> tuple[int, float, float, float, int]:
    """Requests, requests/s, p50 ms, p99 ms and errors from `wrk --latency` output."""
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errors = 0
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        errors += sum(int(g) for g in m.groups())
    return requests, rate, p50, p99, errors


class Bench:
    def __init__(self, work: Path, seconds: float, connections: int) -> None:
        self.work = work
        self.seconds = seconds
        self.connections = connections
        self.numbers = work / "licenses.txt"
        self.serial = 0

    def script(self, route: Route, rate: float | None) -> Path:
        # wrk paces with delay(): each connection waits connections/rate between requests.
        delay = (
            f"function delay() return {self.connections * 1000.0 / rate:.3f} end" if rate else ""
        )
        text = LUA % {
            "mode": route.mode,
            "numbers": self.numbers,
            "threads": THREADS,
            "key": ADMIN["Authorization"].split()[1],
            "official": OFFICIAL,
            "delay": delay,
        }
        path = self.work / f"{route.mode}-{'paced' if rate else 'max'}.lua"
        path.write_text(text, encoding="utf-8")
        return path

    def load(self, route: Route, url: str, pid: int, rate: float | None = None) -> Load:
        # Fresh IINs for every run: a run's block of 200,000, a thread's half of it (born
        # 1950-1960, elderly, so that the category rules hold).
        self.serial += 200_000
        script = self.script(route, rate)
        before_cpu = cpu_seconds(pid)
        before_children = resource.getrusage(resource.RUSAGE_CHILDREN)
        began = time.monotonic()
        out = subprocess.run(
            ["wrk", f"-t{THREADS}", f"-c{self.connections}",
             f"-d{max(1, round(self.seconds))}s", "--latency", "-s", str(script), url,
             "--", str(self.serial)],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        wall = time.monotonic() - began
        after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
        server_cpu = cpu_seconds(pid) - before_cpu
        wrk_cpu = (after_children.ru_utime - before_children.ru_utime) + (
            after_children.ru_stime - before_children.ru_stime
        )
        requests, answered, p50, p99, errors = parse_wrk(out)
        return Load(
            rate=answered,
            requests=requests,
            p50_ms=p50,
            p99_ms=p99,
            errors=errors,
            server_cpu_ms=server_cpu * 1000 / max(requests, 1),
            wrk_cpu_share=wrk_cpu / wall,
        )


async def seed_licenses(licensing: str) -> list[str]:
    """LICENSES licenses issued through the API, as a ministry would."""
    official = {**ADMIN, "X-SSU-Official": OFFICIAL}
    numbers = []
    async with httpx.AsyncClient(base_url=licensing, timeout=30) as client:
        for _ in range(LICENSES):
            r = await client.post("/v1/applications", json=application(), headers=official)
            r.raise_for_status()
            r = await client.post(f"/v1/applications/{r.json()['id']}/approve", headers=official)
            r.raise_for_status()
            numbers.append(r.json()["number"])
    return sorted(numbers)


async def seed_bare(bare_url: str, licensing: str, numbers: list[str]) -> None:
    """The twin's licenses table holds the very documents ssu answers with: each license, and
    its summary as the list shows it."""
    async with httpx.AsyncClient(base_url=licensing, timeout=30) as client:
        docs = [(await client.get(f"/v1/licenses/{n}")).text for n in numbers]
        page = (await client.get("/v1/licenses", params={"limit": len(numbers)})).json()
    summaries = {item["number"]: json.dumps(item, ensure_ascii=False) for item in page["items"]}
    async with httpx.AsyncClient(timeout=30) as client:
        (await client.get(f"{bare_url}/health/live")).raise_for_status()
    conn = await asyncpg.connect(test_dsn("bare"))
    try:
        await conn.executemany(
            "INSERT INTO licenses (number, state, doc, summary)"
            " VALUES ($1, 'active', $2::jsonb, $3::jsonb)",
            [(n, doc, summaries[n]) for n, doc in zip(numbers, docs, strict=True)],
        )
    finally:
        await conn.close()


async def reinstate_all(licensing: str, numbers: list[str]) -> None:
    """Every license active again, so that a state-change run starts from a known state."""
    official = {**ADMIN, "X-SSU-Official": OFFICIAL}
    async with httpx.AsyncClient(base_url=licensing, timeout=30) as client:
        for n in numbers:
            if (await client.get(f"/v1/licenses/{n}")).json()["status"] == "suspended":
                r = await client.post(f"/v1/licenses/{n}/reinstate", json={}, headers=official)
                r.raise_for_status()


async def create_bare_database() -> None:
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{BARE_DB}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{BARE_DB}"')
    finally:
        await admin.close()


async def wait_live(url: str, proc: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            if proc.poll() is not None:
                raise SystemExit("the bare twin exited")
            try:
                if (await client.get(f"{url}/health/live")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit("the bare twin did not start")


def print_table(rows: list[tuple[Route, Load, Load, Load]]) -> bool:
    print(
        f"\n{'route':<42} {'ssu req/s':>9} {'p50':>6} {'p99':>6} {'cpu ms':>6}"
        f" | {'bare req/s':>10} {'p50':>6} {'p99':>6} {'cpu ms':>6} | {'ratio':>5}"
        f" | {'half-rate req/s':>15} {'p99':>6}"
    )
    met = True
    for route, ssu, bare, half in rows:
        ratio = ssu.rate / bare.rate
        ok = ratio >= RATIO_GOAL and half.p99_ms < P99_GOAL_MS
        met &= ok
        print(
            f"{route.name:<42} {ssu.rate:>9.0f} {ssu.p50_ms:>6.1f} {ssu.p99_ms:>6.1f}"
            f" {ssu.server_cpu_ms:>6.2f} | {bare.rate:>10.0f} {bare.p50_ms:>6.1f}"
            f" {bare.p99_ms:>6.1f} {bare.server_cpu_ms:>6.2f} | {ratio:>5.2f}"
            f" | {half.rate:>15.0f} {half.p99_ms:>6.1f}  {'met' if ok else 'NOT met'}"
        )
    errors = [(r.name, s.errors, b.errors, h.errors) for r, s, b, h in rows if s.errors + b.errors]
    for name, s_err, b_err, h_err in errors:
        print(f"  errors on {name}: ssu {s_err}, bare {b_err}, half-rate {h_err}")
    wrk_share = max(max(s.wrk_cpu_share, b.wrk_cpu_share) for _, s, b, _ in rows)
    print(
        f"\nload generator: wrk, {THREADS} threads; its CPU at most {wrk_share:.2f} cores of"
        f" {os.cpu_count()}; ms = milliseconds; cpu ms = server CPU per request"
    )
    print(
        f"goals: ratio >= {RATIO_GOAL} and p99 < {P99_GOAL_MS:.0f} ms at half the maximum:"
        f" {'all met' if met else 'NOT all met'}"
    )
    return met


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="short runs; exit 1 on ratio < 0.5")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    seconds = 2.0 if args.quick else args.seconds

    work = Path(tempfile.mkdtemp(prefix="ssu-bench-http-"))
    ensure_vhost()
    for service in ("licensing", "registry"):
        await reset_service(service)
    await create_bare_database()
    procs = {name: spawn_service(name, log_dir=work) for name in ("licensing", "registry")}
    bare_port = free_port()
    with (work / "bare.log").open("ab") as log:
        # The driver blocks on purpose: nothing else of it runs while wrk measures.
        bare = subprocess.Popen(  # noqa: ASYNC220
            [sys.executable, str(ROOT / "bench" / "http_bare.py"), test_dsn("bare"),
             str(bare_port)],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    bare_url = f"http://127.0.0.1:{bare_port}"
    try:
        for proc in procs.values():
            await wait_ready(proc)
        await wait_live(bare_url, bare)
        licensing = procs["licensing"].url
        numbers = await seed_licenses(licensing)
        text = "\n".join(numbers) + "\n"
        (work / "licenses.txt").write_text(text, encoding="utf-8")
        await seed_bare(bare_url, licensing, numbers)

        bench = Bench(work, seconds, args.connections)
        rows = []
        for route in ROUTES:
            svc: ServiceProcess = procs[route.service]
            if route.mode == "state":
                await reinstate_all(licensing, numbers)
            ssu = bench.load(route, svc.url, svc.process.pid)
            bare_load = bench.load(route, bare_url, bare.pid)
            if route.mode == "state":
                await reinstate_all(licensing, numbers)
            half = bench.load(route, svc.url, svc.process.pid, rate=ssu.rate / 2)
            rows.append((route, ssu, bare_load, half))
            print(f"  [{route.name}: done]", file=sys.stderr)
        met = print_table(rows)
        if args.quick:
            low = [r.name for r, s, b, _ in rows if s.rate / b.rate < QUICK_FLOOR]
            if low:
                print(f"REGRESSION: ratio below {QUICK_FLOOR} on {', '.join(low)}")
                return 1
            return 0
        return 0 if met else 1
    finally:
        for proc in procs.values():
            proc.stop()
        bare.terminate()
        bare.wait(timeout=15)
        for service in ("licensing", "registry", "bare"):
            await drop_database(service)
        subprocess.run(  # noqa: ASYNC221
            ["rabbitmqctl", "-q", "delete_vhost", PREFIX], capture_output=True
        )
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
