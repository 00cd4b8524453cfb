"""Benchmark of the registry's bulk import: 100,000 CSV rows with valid IINs.

Runs the import use case (parse and check every row, seal its personal fields, COPY into a
staging table, set-based merge, one outbox event per new recipient) against a fresh database
on the local PostgreSQL, and prints rows/s and the process's peak memory.
Target: >= 20,000 rows/s, < 300 MB.

    python bench/registry_import.py [--rows 100000] [--pg postgresql://postgres@127.0.0.1:5432]
"""

# bench/http.py sits beside this script: with the script's folder first on the path it would
# hide the standard library's `http` from everything imported after (httpx, asyncpg, uvicorn).
import sys
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]


import argparse
import asyncio
import io
import resource
import time
from datetime import date, timedelta

import asyncpg
from ssu_common import create_pool, migrate
from ssu_contracts import check_digit
from ssu_registry import service, store
from ssu_registry.settings import Settings

MIGRATIONS = Path(service.__file__).parent / "migrations"
HEADER = (
    "iin,full_name,birth_date,category,region,disability_group,language,"
    "guardian_name,guardian_phone,guardian_email\n"
)
CATEGORIES = ("elderly", "adult_disability", "child_disability", "homeless", "other")
REGIONS = ("630000000", "710000000", "750000000", "350000000", "550000000")


def generate_csv(rows: int) -> str:
    """`rows` distinct recipients with valid IINs and birth dates agreeing with them."""
    out = io.StringIO()
    out.write(HEADER)
    start = date(1940, 1, 1)
    serial = 0
    for i in range(rows):
        birth = start + timedelta(days=(i * 37) % 25_000)
        century = (3 if birth.year < 2000 else 5) + i % 2
        while True:
            serial = (serial + 1) % 10_000
            first11 = f"{birth:%y%m%d}{century}{serial:04d}"
            digit = check_digit(first11)
            if digit is not None:
                break
        iin = f"{first11}{digit}"
        minor = birth.year >= 2009
        guardian = "Қамқоршы Ана,+77010001122,ana@example.kz" if minor else ",,"
        out.write(
            f"{iin},Алуа Серікқызы {i},{birth.isoformat()},{CATEGORIES[i % 5]},"
            f"{REGIONS[i % 5]},{'' if i % 3 else (i % 3) + 1},{'kk' if i % 2 else 'ru'},"
            f"{guardian}\n"
        )
    return out.getvalue()


async def fresh_database(pg: str, name: str) -> str:
    admin = await asyncpg.connect(f"{pg}/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return f"{pg}/{name}"


def peak_rss_mb() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="ssu_bench_registry")
    args = parser.parse_args()

    t0 = time.perf_counter()
    text = generate_csv(args.rows)
    print(
        f"generated {args.rows:,} rows ({len(text.encode()) / 1e6:.1f} MB CSV)"
        f" in {time.perf_counter() - t0:.1f} s"
    )
    # The service's own keys (development keys unless SSU_KEYS_FILE says otherwise): personal
    # fields are sealed in Python before the COPY, as in the service.
    store.use_cipher(Settings().cipher())
    dsn = await fresh_database(args.pg, args.database)
    pool = await create_pool(dsn, max_size=2)
    try:
        await migrate(pool, MIGRATIONS)
        async with pool.acquire() as conn:
            started = time.perf_counter()
            result = await service.import_recipients(conn=conn, text=text, region_scope=None)
            elapsed = time.perf_counter() - started
            stored = await conn.fetchval("SELECT count(*) FROM recipients")
            events = await conn.fetchval("SELECT count(*) FROM outbox")
    finally:
        await pool.close()
    rate = args.rows / elapsed
    peak = peak_rss_mb()
    print(
        f"imported {result.rows:,} rows: stored {result.stored:,}, unchanged {result.unchanged:,},"
        f" rejected {len(result.rejected):,}; recipients in table {stored:,},"
        f" outbox events {events:,}"
    )
    print(f"elapsed {elapsed:.2f} s")
    print(f"rows/s {rate:,.0f} (target >= 20,000)")
    print(f"peak memory {peak:.0f} MB (target < 300 MB)")
    ok = result.stored == args.rows and rate >= 20_000 and peak < 300
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
