"""Benchmark of the billing run on a national month (issue 6).

100,000 recipients across 600 providers in all 20 regions, about 2.2 million attendance dates,
5% of providers suspended for part of the month, a tariff change inside the month in some
regions. The data is loaded with COPY into a fresh database; the billing service runs as its
own process and the run is started through its HTTP API (`POST /v1/runs`). Beside it, one plain
SQL query computes the same per-provider totals (the lower bound); both must agree to the tiyn.

    .venv/bin/python bench/billing_run.py [--recipients 100000] [--providers 600]
"""

# bench/http.py sits beside this script: with the script's folder first on the path it would
# hide the standard library's `http` from everything imported after (httpx, asyncpg, uvicorn).
import sys
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]


import argparse
import asyncio
import os
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import date, timedelta
from decimal import Decimal

import asyncpg
import httpx
from ssu_billing.settings import Settings
from ssu_common import identities
from ssu_contracts import REGIONS, make_bin, make_iin

ROOT = Path(__file__).resolve().parents[1]
PG = os.environ.get("SSU_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
DB = os.environ.get("SSU_BENCH_DB", "ssu_bench_billing")
VHOST = os.environ.get("SSU_BENCH_VHOST", "ssu_bench_billing")
PERIOD = "2026-03"
FIRST = date(2026, 3, 1)
DAYS = 31
CHANGE_ON = date(2026, 3, 16)
SUSPEND_FROM, REINSTATE_ON = date(2026, 3, 10), date(2026, 3, 20)
FORMS = ["stationary", "stationary", "semi_stationary", "home", "home", "temporary_stay"]
CATEGORIES = [
    "child_disability",
    "adult_disability",
    "elderly",
    "domestic_violence",
    "homeless",
    "other",
]
# (unit, rate) per form, and the rate from CHANGE_ON in the regions that change it.
TARIFFS = {
    "stationary": ("day", Decimal("12500.00"), Decimal("13750.50")),
    "semi_stationary": ("day", Decimal("6400.00"), Decimal("7040.25")),
    "home": ("month", Decimal("95000.00"), Decimal("104500.00")),
    "temporary_stay": ("day", Decimal("9300.00"), Decimal("10230.75")),
}
ELDERLY_STATIONARY = Decimal("14100.00")

# The lower bound: the per-provider totals by one plain query that writes nothing (no invoices,
# no lines, no dates kept), with the dates of the month as bits as the service computes them.
LOWER_BOUND = """
WITH lic AS (
    SELECT l.license_number,
           coalesce(bit_or(1::bigint << (g::date - $1::date))
                    FILTER (WHERE l.active @> g::date), 0) AS mask
    FROM licenses l CROSS JOIN generate_series($1::date, $2::date, interval '1 day') g
    GROUP BY l.license_number
),
tday AS (
    SELECT k.region, k.form, k.category, n,
           (SELECT t.id FROM tariffs t
            WHERE t.region = k.region AND t.form = k.form AND t.category IN (k.category, '*')
              AND t.effective_from <= $1::date + n
            ORDER BY t.category = '*', t.effective_from DESC LIMIT 1) AS tariff_id
    FROM (SELECT DISTINCT region, form, category FROM enrollments) k
    CROSS JOIN generate_series(0, $3 - 1) n
),
seg AS (
    SELECT s.region, s.form, s.category, t.rate, t.unit, s.mask
    FROM (SELECT region, form, category, tariff_id, bit_or(1::bigint << n) AS mask
          FROM tday WHERE tariff_id IS NOT NULL GROUP BY 1, 2, 3, 4) s
    JOIN tariffs t ON t.id = s.tariff_id
),
att AS (
    SELECT enrollment_id, bit_or(1::bigint << (day - $1::date)) AS mask
    FROM attendance WHERE day BETWEEN $1 AND $2 GROUP BY enrollment_id
),
cov AS (
    SELECT e.enrollment_id, e.provider_bin, e.region, e.form, e.category,
           cv.covered & coalesce(l.mask, 0) AS eligible,
           cv.covered & coalesce(a.mask, 0) AS attended
    FROM enrollments e
    JOIN contracts c ON c.provider_bin = e.provider_bin AND c.region = e.region
        AND c.year = extract(year FROM $1::date)
    CROSS JOIN LATERAL (SELECT ((1::bigint << (least(e.end_date, $2::date) - $1::date + 1)) - 1)
        & ~((1::bigint << greatest(e.start_date - $1::date, 0)) - 1) AS covered) cv
    LEFT JOIN lic l ON l.license_number = e.license_number
    LEFT JOIN att a ON a.enrollment_id = e.enrollment_id
    WHERE e.start_date <= $2 AND (e.end_date IS NULL OR e.end_date >= $1)
),
lines AS (
    SELECT c.provider_bin, round(
        coalesce(sum(s.rate * bit_count((c.eligible & c.attended & s.mask)::bit(64)))
                 FILTER (WHERE s.unit = 'day'), 0)
        + CASE WHEN c.attended <> 0
               THEN coalesce(sum(s.rate * bit_count((c.eligible & s.mask)::bit(64)))
                             FILTER (WHERE s.unit = 'month'), 0) / $3
               ELSE 0 END, 2) AS amount
    FROM cov c
    LEFT JOIN seg s ON s.region = c.region AND s.form = c.form AND s.category = c.category
    GROUP BY c.enrollment_id, c.provider_bin, c.attended
)
SELECT provider_bin, sum(amount) AS total, count(*) AS lines FROM lines GROUP BY provider_bin
"""

# An independent check of the amounts: one row per enrollment and date (no bit tricks), the
# tariff of each date from validity ranges instead of a latest-effective lookup.
DAY_BY_DAY = """
WITH tr AS (
    SELECT t.*, daterange(t.effective_from, lead(t.effective_from) OVER (
        PARTITION BY t.region, t.form, t.category ORDER BY t.effective_from)) AS during
    FROM tariffs t
),
td AS (
    SELECT k.region, k.form, k.category, g::date AS day,
           coalesce(te.rate, ts.rate) AS rate,
           CASE WHEN te.id IS NOT NULL THEN te.unit ELSE ts.unit END AS unit
    FROM (SELECT DISTINCT region, form, category FROM enrollments) k
    CROSS JOIN generate_series($1::date, $2::date, interval '1 day') g
    LEFT JOIN tr te ON te.region = k.region AND te.form = k.form AND te.category = k.category
        AND te.during @> g::date
    LEFT JOIN tr ts ON ts.region = k.region AND ts.form = k.form AND ts.category = '*'
        AND ts.during @> g::date
),
x AS (
    SELECT e.enrollment_id, e.provider_bin, d.day,
           coalesce(l.active @> d.day, false) AS eligible, a.day IS NOT NULL AS attended,
           td.rate, td.unit
    FROM enrollments e
    JOIN contracts c ON c.provider_bin = e.provider_bin AND c.region = e.region
        AND c.year = extract(year FROM $1::date)
    CROSS JOIN LATERAL generate_series(greatest(e.start_date, $1::date),
        least(coalesce(e.end_date, $2::date), $2::date), interval '1 day') AS d0
    CROSS JOIN LATERAL (SELECT d0::date AS day) d
    LEFT JOIN licenses l ON l.license_number = e.license_number
    LEFT JOIN attendance a ON a.enrollment_id = e.enrollment_id AND a.day = d.day
    LEFT JOIN td ON td.region = e.region AND td.form = e.form AND td.category = e.category
        AND td.day = d.day
),
lines AS (
    SELECT provider_bin, round(
        coalesce(sum(rate) FILTER (WHERE unit = 'day' AND eligible AND attended), 0)
        + CASE WHEN bool_or(attended)
               THEN coalesce(sum(rate) FILTER (WHERE unit = 'month' AND eligible), 0) / $3
               ELSE 0 END, 2) AS amount
    FROM x GROUP BY enrollment_id, provider_bin
)
SELECT provider_bin, sum(amount) AS total, count(*) AS lines FROM lines GROUP BY provider_bin
"""


SERVICE_TOTALS = """
SELECT i.provider_bin, sum(l.amount) AS total, count(*) AS lines
FROM invoices i JOIN invoice_lines l ON l.invoice_id = i.id
WHERE i.period = $1 GROUP BY i.provider_bin
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_vhost() -> None:
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", VHOST], capture_output=True, check=False)
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*"],
        capture_output=True,
        check=False,
    )
    identities.apply(VHOST)  # billing runs as its own broker user, as in production


def start_service(env: dict[str, str], log_path: Path) -> "subprocess.Popen[bytes]":
    """The billing service as its own process, as it runs in production."""
    with log_path.open("wb") as log_file:
        return subprocess.Popen(
            [sys.executable, "-m", "ssu_billing"],
            env=env,
            cwd=ROOT,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )


async def recreate_database() -> None:
    conn = await asyncpg.connect(f"{PG}/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{DB}"')
    finally:
        await conn.close()


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class World:
    """The generated month: providers, licenses, enrollments, tariffs, contracts, attendance."""

    def __init__(self, recipients: int, providers: int) -> None:
        self.regions = sorted(REGIONS)
        self.providers = [
            (make_bin(date(2015, 1 + i % 12, 1), 1000 + i), self.regions[i % len(self.regions)])
            for i in range(providers)
        ]
        self.suspended = {bin_ for k, (bin_, _) in enumerate(self.providers) if k % 20 == 7}
        self.small_budget = {bin_ for k, (bin_, _) in enumerate(self.providers) if k % 60 == 11}
        self.changing_regions = set(self.regions[::4])
        self.recipients = recipients

    def provider_rows(self) -> list[tuple[object, ...]]:
        return [
            (
                bin_,
                f"Provider {bin_}",
                "ngo",
                region,
                '{"language": "ru"}',
                f"L-{bin_}",
                "active",
                3 if bin_ in self.suspended else 1,
            )
            for bin_, region in self.providers
        ]

    def license_rows(self) -> list[tuple[object, ...]]:
        return [
            (f"L-{bin_}", bin_, "active", 3 if bin_ in self.suspended else 1, "[]")
            for bin_, _ in self.providers
        ]

    def transition_rows(self) -> list[tuple[object, ...]]:
        rows: list[tuple[object, ...]] = []
        for bin_, _ in self.providers:
            rows.append((f"L-{bin_}", 1, "active", date(2025, 1, 1), "issued"))
            if bin_ in self.suspended:
                rows.append((f"L-{bin_}", 2, "suspended", SUSPEND_FROM, "suspended"))
                rows.append((f"L-{bin_}", 3, "active", REINSTATE_ON, "reinstated"))
        return rows

    def tariff_rows(self) -> list[tuple[object, ...]]:
        rows: list[tuple[object, ...]] = []
        for region in self.regions:
            for form, (unit, rate, changed) in TARIFFS.items():
                rows.append((region, form, "*", date(2026, 1, 1), rate, unit, "decree 2026/1"))
                if region in self.changing_regions:
                    rows.append((region, form, "*", CHANGE_ON, changed, unit, "decree 2026/2"))
            rows.append(
                (
                    region,
                    "stationary",
                    "elderly",
                    date(2026, 1, 1),
                    ELDERLY_STATIONARY,
                    "day",
                    "decree 2026/1e",
                )
            )
        return rows

    def contract_rows(self) -> list[tuple[object, ...]]:
        return [
            (
                f"C-{bin_}",
                bin_,
                region,
                2026,
                Decimal("5000000.00") if bin_ in self.small_budget else Decimal("900000000.00"),
            )
            for bin_, region in self.providers
        ]

    def enrollments(self) -> Iterator[tuple[str, str, str, str, str, str, str, date, date | None]]:
        per_sex = 9000
        for i in range(self.recipients):
            bin_, region = self.providers[i % len(self.providers)]
            birth = date(1940, 1, 1) + timedelta(days=(i // (2 * per_sex)) * 7)
            iin = make_iin(birth, "male" if i % 2 else "female", (i // 2) % per_sex)
            start, end = date(2025, 6, 1), None
            if i % 20 == 3:
                start = FIRST + timedelta(days=i % 28)
            elif i % 20 == 9:
                end = FIRST + timedelta(days=i % 28)
            yield (
                f"E{i:07d}",
                iin,
                bin_,
                f"L-{bin_}",
                "s1",
                region,
                FORMS[i % len(FORMS)],
                CATEGORIES[(i // 7) % len(CATEGORIES)],
                start,
                end,
            )

    async def attendance(self) -> AsyncIterator[tuple[str, date]]:
        for enrollment_id, *_rest, start, end in self.enrollments():
            i = int(enrollment_id[1:])
            for d in range(DAYS):
                day = FIRST + timedelta(days=d)
                if day < start or (end is not None and day > end):
                    continue
                if (i * 7 + d * 13) % 31 < 24:
                    yield (enrollment_id, day)
            if i % 5000 == 0:
                await asyncio.sleep(0)


async def load(conn: asyncpg.Connection, world: World) -> int:
    # Personal fields sealed with the service's own keys, as its event handlers store them.
    cipher = Settings().cipher()
    await conn.copy_records_to_table(
        "providers",
        records=[
            (*r[:4], cipher.seal(str(r[4]), column="contact"), *r[5:])
            for r in world.provider_rows()
        ],
        columns=[
            "bin",
            "name",
            "legal_form",
            "region",
            "contact",
            "license_number",
            "status",
            "seq",
        ],
    )
    await conn.copy_records_to_table(
        "licenses",
        records=world.license_rows(),
        columns=["license_number", "bin", "status", "seq", "subtypes"],
    )
    await conn.copy_records_to_table(
        "license_transitions",
        records=world.transition_rows(),
        columns=["license_number", "seq", "status", "effective_date", "event_type"],
    )
    # the same derivation as the service's read model, for every license at once
    await conn.execute(
        "UPDATE licenses l SET active = coalesce(r.active, '{}') FROM ("
        " SELECT license_number, range_agg(r) FILTER (WHERE status = 'active'"
        "  AND NOT isempty(r)) AS active FROM ("
        "  SELECT license_number, status, CASE WHEN nxt IS NULL"
        "   THEN daterange(effective_date, NULL)"
        "   ELSE daterange(effective_date, greatest(effective_date, nxt)) END AS r FROM ("
        "   SELECT *, lead(effective_date) OVER (PARTITION BY license_number ORDER BY seq)"
        "    AS nxt FROM license_transitions) s) t GROUP BY license_number) r"
        " WHERE r.license_number = l.license_number"
    )
    await conn.copy_records_to_table(
        "tariffs",
        records=world.tariff_rows(),
        columns=["region", "form", "category", "effective_from", "rate", "unit", "act_reference"],
    )
    await conn.copy_records_to_table(
        "contracts",
        records=world.contract_rows(),
        columns=["number", "provider_bin", "region", "year", "budget"],
    )
    await conn.copy_records_to_table(
        "enrollments",
        records=[
            (
                row[0],
                cipher.seal(row[1], column="iin"),
                cipher.blind_index(row[1]),
                *row[2:],
                "active" if row[-1] is None else "ended",
            )
            for row in world.enrollments()
        ],
        columns=[
            "enrollment_id",
            "iin",
            "iin_index",
            "provider_bin",
            "license_number",
            "site_id",
            "region",
            "form",
            "category",
            "start_date",
            "end_date",
            "status",
        ],
    )
    await conn.copy_records_to_table(
        "attendance", records=world.attendance(), columns=["enrollment_id", "day"]
    )
    await conn.execute("VACUUM ANALYZE")
    return int(await conn.fetchval("SELECT count(*) FROM attendance"))


async def wait_ready(client: httpx.AsyncClient, url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the billing service exited; see its log")
        try:
            if (await client.get(f"{url}/health/ready", timeout=2)).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.2)
    raise SystemExit("the billing service did not become ready")


async def main(recipients: int, providers: int) -> int:
    ensure_vhost()
    await recreate_database()
    dsn = f"{PG}/{DB}"
    port = free_port()
    log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-billing-{uuid.uuid4().hex[:6]}.log"
    env = {
        **os.environ,
        "SSU_BILLING_DATABASE_URL": dsn,
        "SSU_BILLING_PORT": str(port),
        "SSU_AMQP_URL": f"amqp://guest:guest@127.0.0.1:5672/{VHOST}",
        "SSU_BILLING_AMQP_USERNAME": identities.broker_user("billing"),
        "SSU_BILLING_AMQP_PASSWORD": identities.dev_password(identities.broker_user("billing")),
        "SSU_LOG_LEVEL": "WARNING",
        "SSU_DB_COMMAND_TIMEOUT": "300",
    }
    proc = start_service(env, log_path)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as client:
            await wait_ready(client, url, proc)
            world = World(recipients, providers)
            conn = await asyncpg.connect(dsn)
            try:
                started = time.perf_counter()
                dates = await load(conn, world)
                print(
                    f"loaded {recipients} enrollments, {providers} providers, {dates} "
                    f"attendance dates in {time.perf_counter() - started:.1f} s (COPY)"
                )

                last = FIRST + timedelta(days=DAYS - 1)
                await conn.execute("SET work_mem = '128MB'")  # as the run sets for itself
                started = time.perf_counter()
                by_day = await conn.fetch(DAY_BY_DAY, FIRST, last, DAYS)
                day_by_day = time.perf_counter() - started
                started = time.perf_counter()
                bound = await conn.fetch(LOWER_BOUND, FIRST, last, DAYS)
                lower = time.perf_counter() - started
                rss_before = peak_rss_mb(proc.pid)

                started = time.perf_counter()
                response = await client.post(
                    f"{url}/v1/runs",
                    json={"period": PERIOD},
                    headers={"Authorization": "Bearer ssu-dev-admin"},
                    timeout=600,
                )
                wall = time.perf_counter() - started
                if response.status_code != 201:
                    print(f"run failed: {response.status_code} {response.text}")
                    return 1
                body = response.json()
                peak = peak_rss_mb(proc.pid)

                service = {
                    r["provider_bin"]: (r["total"], r["lines"])
                    for r in await conn.fetch(SERVICE_TOTALS, PERIOD)
                }
                expected = {r["provider_bin"]: (r["total"], r["lines"]) for r in bound}
                checked = {r["provider_bin"]: (r["total"], r["lines"]) for r in by_day}
            finally:
                await conn.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()

    grand = sum((t for t, _ in service.values()), Decimal(0))
    grand_bound = sum((t for t, _ in expected.values()), Decimal(0))
    lines = sum(n for _, n in service.values())
    differing = [b for b in expected if service.get(b) != expected[b]]
    differing += [b for b in service if b not in expected]
    differing += [b for b in checked if service.get(b) != checked[b]]
    print(f"billing run {PERIOD}: wall {wall:.2f} s through POST /v1/runs")
    print(
        f"  invoices {body['invoices']}, lines {body['lines']}, "
        f"billed {body['total']}, over budget {body['over_budget']}, "
        f"unbilled dates {body['unbilled_dates']}"
    )
    print(f"  grand total of lines {grand:.2f} over {lines} lines")
    print(f"  service process peak memory {peak:.1f} MB (before the run {rss_before:.1f} MB)")
    print(f"lower bound (one plain SQL query): {lower:.2f} s, grand total {grand_bound:.2f}")
    print(f"ratio run / lower bound: {wall / lower:.2f}")
    print(
        f"day-by-day check query: {day_by_day:.2f} s, grand total "
        f"{sum((t for t, _ in checked.values()), Decimal(0)):.2f}"
    )
    if differing:
        print(f"MISMATCH: {len(differing)} providers differ, e.g. {differing[:3]}")
        return 1
    print(
        "per-provider totals and line counts of the run, the lower bound and the day-by-day"
        f" check agree to the tiyn for all {len(expected)} providers"
    )
    ok = wall <= 2 * lower and wall < 20 and peak < 300
    print("targets (≤ 2× lower bound, < 20 s, < 300 MB):", "met" if ok else "NOT met")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--providers", type=int, default=600)
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.recipients, args.providers)))
