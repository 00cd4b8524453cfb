"""Benchmark of notification fan-out: one provider suspension disrupting 1,000 recipients.

End to end on the local PostgreSQL and RabbitMQ: registry and notification run as real
processes; the development sinks (deploy/sinks.py) run in this process. A provider licensed in
East Kazakhstan has N recipients enrolled (each with an email address); licensing's
`licensing.license.suspended.v1` is published as licensing would publish it; registry disrupts
every enrollment (one `registry.enrollment.disrupted.v1` each, with alternatives); notification
tells each recipient and the regional department (kk+ru) by email, and the provider.
Prints notices per second and the time until the last one reached the SMTP sink.
Target: >= 300 notices/s.

    python bench/notification_fanout.py [--recipients 1000]
"""

# bench/http.py sits beside this script: with the script's folder first on the path it would
# hide the standard library's `http` from everything imported after (httpx, asyncpg, uvicorn).
import sys
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]


import argparse
import asyncio
import importlib.util
import os
import tempfile
import time
from datetime import date, timedelta
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("SSU_TEST_VHOST", "ssu_bench_fanout")
os.environ.setdefault("SSU_TEST_DB_PREFIX", "ssu_bench_fanout")
sys.path.insert(0, str(ROOT / "tests"))

import httpx
from harness import (
    ADMIN,
    ensure_vhost,
    processes,
    publish_raw,
    reset_service,
    spawn_service,
    wait_ready,
)
from ssu_contracts import (
    Contact,
    LicenseIssuedV1,
    LicenseSuspendedV1,
    Site,
    Subtype,
    make_bin,
    make_event,
    make_iin,
)

_spec = importlib.util.spec_from_file_location("ssu_dev_sinks", ROOT / "deploy" / "sinks.py")
assert _spec is not None and _spec.loader is not None
sinks_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sinks_module)

EAST = "630000000"
SUBTYPES = [Subtype(form="stationary", category="elderly")]


def license_event(bin_: str, number: str, name: str, places: int, **extra: Any) -> dict[str, Any]:
    return {
        "license_number": number,
        "bin": bin_,
        "provider_name": name,
        "legal_form": "ngo",
        "region": EAST,
        "contact": Contact(email=f"office-{bin_}@example.kz", language="kk"),
        "subtypes": SUBTYPES,
        "sites": [
            Site(site_id="main", address="Өскемен, Абай даңғылы 10", kato="631010000",
                 places=places)
        ],
        "seq": 1,
        "status": "active",
        "effective_date": date(2026, 1, 5),
        **extra,
    }  # fmt: skip


async def publish(data: Any, subject: str) -> None:
    env = make_event(data, source="/ssu/licensing", subject=subject)
    await publish_raw(env.to_bytes(), routing_key=env.type, message_id=env.id)


async def seed(http: httpx.AsyncClient, registry: str, recipients: int) -> tuple[str, str]:
    suspended_bin = make_bin(date(2015, 5, 1), 777)
    other_bin = make_bin(date(2015, 5, 1), 778)
    number = "SSU-63-BENCH-1"
    await publish(
        LicenseIssuedV1(**license_event(suspended_bin, number, "Мейірім", recipients + 10)),
        number,
    )
    await publish(
        LicenseIssuedV1(**license_event(other_bin, "SSU-63-BENCH-2", "Шапағат", 50)),
        "SSU-63-BENCH-2",
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        r = await http.get(f"{registry}/v1/providers", params={"region": EAST})
        if len(r.json()["items"]) >= 2:
            break
        await asyncio.sleep(0.2)
    else:
        raise SystemExit("registry did not learn the providers")

    # Below half the registry's pool: each write holds a connection and the audit takes another.
    gate = asyncio.Semaphore(4)

    async def post(url: str, body: dict[str, Any], ok: tuple[int, ...]) -> None:
        # A pooled keep-alive connection can be reset now and then: try again.
        for attempt in range(3):
            try:
                r = await http.post(url, json=body)
            except httpx.TransportError:
                if attempt == 2:
                    raise
                await asyncio.sleep(0.2)
                continue
            # After a reset the first try may have been applied: 409 then means done.
            assert r.status_code in ok or (attempt and r.status_code == 409), r.text
            return

    async def enroll(i: int) -> None:
        birth = date(1940, 1, 1) + timedelta(days=i % 7000)
        iin = make_iin(birth, "female" if i % 2 else "male", i // 7000)
        async with gate:
            recipient = {
                "iin": iin,
                "full_name": f"Алушы {i}",
                "birth_date": birth.isoformat(),
                "category": "elderly",
                "region": EAST,
                "language": "kk" if i % 2 else "ru",
                "email": f"recipient{i}@example.kz",
            }
            await post(f"{registry}/v1/recipients", recipient, (200, 201))
            enrollment = {"iin": iin, "provider_bin": suspended_bin, "site_id": "main",
                          "form": "stationary", "start_date": "2026-02-01"}  # fmt: skip
            await post(f"{registry}/v1/enrollments", enrollment, (201,))

    results = await asyncio.gather(*(enroll(i) for i in range(recipients)), return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        raise SystemExit(f"{len(errors)} enrollments failed, first: {errors[0]!r}")
    return suspended_bin, number


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument(
        "--show", action="store_true", help="print one notice of each kind the sink received"
    )
    parser.add_argument(
        "--replicas", type=int, default=1, help="notification processes sharing the queue"
    )
    args = parser.parse_args()

    ensure_vhost()
    for service in ("registry", "notification"):
        await reset_service(service)
    sinks = await sinks_module.start_sinks()
    log_dir = Path(tempfile.mkdtemp(prefix="ssu-bench-"))
    registry = spawn_service("registry", log_dir=log_dir, env={"SSU_LOG_LEVEL": "WARNING"})
    notifications = [
        spawn_service(
            "notification",
            log_dir=log_dir,
            env={
                "SSU_LOG_LEVEL": "WARNING",
                "SSU_SMTP_URL": sinks.smtp_url,
                "SSU_SMS_URL": sinks.sms_url,
                "SSU_NOTIFICATION_WORKER_POLL_SECONDS": "0.05",
            },
        )
        for _ in range(args.replicas)
    ]
    try:
        with processes(registry, *notifications):
            for proc in (registry, *notifications):
                await wait_ready(proc)
            async with httpx.AsyncClient(headers=ADMIN, timeout=30) as http:
                seed_started = time.monotonic()
                bin_, number = await seed(http, registry.url, args.recipients)
                print(f"seeded {args.recipients} enrollments in "
                      f"{time.monotonic() - seed_started:.1f}s")  # fmt: skip
                await asyncio.sleep(1.0)  # let the seeding's own notices settle
                sinks.received.mail.clear()
                # Each recipient and the department per disruption; provider and department
                # for the suspension itself.
                expected = 2 * args.recipients + 2
                started = time.monotonic()
                await publish(
                    LicenseSuspendedV1(
                        **license_event(bin_, number, "Мейірім", args.recipients + 10,
                                        seq=2, status="suspended",
                                        effective_date=date(2026, 3, 1)),
                        reason="санитарлық тексеру",
                    ),
                    number,
                )  # fmt: skip
                while len(sinks.received.mail) < expected:
                    if time.monotonic() - started > args.timeout:
                        break
                    await asyncio.sleep(0.05)
                mail = list(sinks.received.mail)
    finally:
        await sinks.stop()
    if not mail:
        print("no notices arrived; logs in", log_dir)
        return 1
    first = min(m["monotonic"] for m in mail) - started
    last = max(m["monotonic"] for m in mail) - started
    to_recipients = sum(1 for m in mail if m["to"][0].startswith("recipient"))
    to_department = sum(1 for m in mail if m["to"][0].startswith("social."))
    to_provider = len(mail) - to_recipients - to_department
    rate = len(mail) / last if last > 0 else float("inf")
    print(f"notices: {len(mail)} of {expected} expected "
          f"(recipients {to_recipients}, department {to_department}, "
          f"provider {to_provider}; {args.replicas} notification process(es))")  # fmt: skip
    print(f"first notice after {first:.2f}s, last after {last:.2f}s")
    print(f"throughput: {rate:.0f} notices/s (target >= 300)")
    if args.show:
        samples = {}
        for m in mail:
            kind = (m["to"][0].split("@")[0].rstrip("0123456789"), m["subject"][:12])
            samples.setdefault(kind, m)
        for m in list(samples.values())[:6]:
            print(f"\n--- To: {', '.join(m['to'])}\n--- Subject: {m['subject']}\n{m['body']}")
    return 0 if len(mail) == expected else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
