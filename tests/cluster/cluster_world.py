"""The cluster tests' world: two replicas of every service on the three-node cluster, the
real story told through their APIs in phases of more than 5,000 events, and the counts.

A phase is one region and one January (its own year, so no run, contract or tariff of one
phase touches another): providers licensed, recipients registered and enrolled, attendance
reported, licenses suspended and most reinstated at once (consumers must hold the order by
`seq`), the month billed, everyone told. Every phase has the same shape, so the first one,
told on the quiet cluster, is the measure of the others: same events, same notices, same
invoice totals.
"""

import asyncio
import contextlib
import csv
import functools
import io
import itertools
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from harness import (
    DB_PREFIX,
    PG_ADMIN,
    ServiceProcess,
    free_port,
    run_to_end,
    spawn_service,
    wait_ready,
)
from rabbit_cluster import HEARTBEAT_SECONDS, RabbitCluster
from schwifty import IBAN
from ssu_billing.handlers import HANDLERS as BILLING_HANDLERS
from ssu_contracts import AUDIT_SEALED, make_bin, make_iin
from ssu_licensing.handlers import HANDLERS as LICENSING_HANDLERS
from ssu_notification.handlers import HANDLERS as NOTIFICATION_HANDLERS
from ssu_registry.handlers import HANDLERS as REGISTRY_HANDLERS

SERVICES = ("licensing", "registry", "billing", "notification")
HANDLED = {
    "licensing": set(LICENSING_HANDLERS),
    "registry": set(REGISTRY_HANDLERS),
    "billing": set(BILLING_HANDLERS),
    "notification": set(NOTIFICATION_HANDLERS),
}
REGIONS = ["100000000", "110000000", "150000000", "190000000", "230000000", "270000000"]
# Months of 31 days (the same bill in every phase) of a year billing accepts contracts for.
MONTHS = [1, 3, 5, 7, 8, 10]
PROVIDERS = 20
PLACES = 100
ENROLLMENTS = 1500  # 75 per provider
OFFICIAL = {"X-SSU-Official": "cluster-licensing-head"}  # who decides in licensing
SUSPENDED = range(0, 16)  # providers suspended from the 10th...
REINSTATED = range(0, 12)  # ...of which these are reinstated on the 20th
ROLES = ["social_worker", "caregiver", "nurse", "rehabilitation_specialist", "psychologist"]
ROLES += ["gardener", "janitor", "tractor_driver", "bread_cutter"]
PROFILES = [("stationary", "elderly"), ("semi_stationary", "child_disability")]
TARIFFS = [("stationary", "*", "9800.00", "day"), ("semi_stationary", "*", "145000.00", "month")]


def dsn(service: str) -> str:
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{DB_PREFIX}_cluster_{service}"


# --- the replicas


class Api:
    """HTTP to a service's replicas in turn, as a Kubernetes Service spreads requests; a
    replica that does not answer (killed, restarting) is skipped."""

    def __init__(self, http: httpx.AsyncClient, replicas: dict[str, list[ServiceProcess]]):
        self._http = http
        self._replicas = replicas
        self._turn = itertools.count()

    async def call(self, service: str, method: str, path: str, **kw: Any) -> httpx.Response:
        last: Exception | None = None
        for attempt in range(120):
            procs = self._replicas[service]
            proc = procs[next(self._turn) % len(procs)]
            try:
                r = await self._http.request(method, f"{proc.url}{path}", **kw)
            except httpx.TransportError as exc:
                last = exc
                await asyncio.sleep(0.05 if attempt < len(procs) else 0.5)
                continue
            if r.status_code in (502, 503, 504):
                last = RuntimeError(f"{r.status_code} {r.text[:200]}")
                await asyncio.sleep(0.5)
                continue
            return r
        raise AssertionError(f"{method} {service}{path}: no replica answered: {last!r}")

    async def ok(self, service: str, method: str, path: str, *codes: int, **kw: Any) -> Any:
        r = await self.call(service, method, path, **kw)
        assert r.status_code in (codes or (200, 201)), f"{method} {path}: {r.status_code} {r.text}"
        return r.json() if r.content else None


@dataclass
class World:
    cluster: RabbitCluster
    log_dir: Path
    env: dict[str, str]
    sinks: Any
    replicas: dict[str, list[ServiceProcess]] = field(default_factory=dict)
    reports: list[str] = field(default_factory=list)

    def spawn(self, service: str, port: int | None = None) -> ServiceProcess:
        upper = service.upper()
        return spawn_service(
            service,
            log_dir=self.log_dir,
            port=port or free_port(),
            env={**self.env, f"SSU_{upper}_DATABASE_URL": dsn(service)},
        )

    async def start(self) -> None:
        # Consumers' queues exist before anything is published: one replica of each first.
        for service in SERVICES:
            self.replicas[service] = [self.spawn(service)]
        for service in SERVICES:
            await wait_ready(self.replicas[service][0], timeout=120)
        for service in SERVICES:
            self.replicas[service].append(self.spawn(service))
        for service in SERVICES:
            await wait_ready(self.replicas[service][1], timeout=120)

    def stop(self) -> None:
        for procs in self.replicas.values():
            for proc in procs:
                proc.stop()

    async def kill_one_replica_each(self) -> list[ServiceProcess]:
        """SIGKILL the first replica of every service; returns them for `restart`."""
        killed = []
        for service in SERVICES:
            proc = self.replicas[service].pop(0)
            proc.process.kill()
            killed.append(proc)
        for proc in killed:
            await asyncio.to_thread(proc.process.wait, 10)
        return killed

    async def restart(self, killed: list[ServiceProcess]) -> None:
        """Start a new replica in each killed one's place (what a Deployment does)."""
        fresh = [self.spawn(p.service, p.port) for p in killed]
        for proc in fresh:
            await wait_ready(proc, timeout=120)
            self.replicas[proc.service].append(proc)


def amqp_env(cluster: RabbitCluster) -> str:
    """Every node, each with the short heartbeat that notices a paused node."""
    return ",".join(f"{cluster.url(node)}?heartbeat={HEARTBEAT_SECONDS}" for node in cluster.nodes)


async def reset_databases() -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        for service in SERVICES:
            name = dsn(service).rsplit("/", 1)[1]
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


# --- what the databases hold


_connections: dict[str, asyncpg.Connection] = {}


async def _fetch(service: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    """A query on one service's database over one kept connection (the machine's PostgreSQL
    is shared: a connection per check would crowd out everyone's `max_connections`)."""
    for attempt in range(60):
        conn = _connections.get(service)
        try:
            if conn is None or conn.is_closed():
                conn = _connections[service] = await asyncpg.connect(dsn(service))
            return list(await conn.fetch(sql, *args))
        except (
            OSError,
            asyncpg.InterfaceError,
            asyncpg.TooManyConnectionsError,
            asyncpg.CannotConnectNowError,
        ):
            _connections.pop(service, None)
            if attempt == 59:
                raise
            await asyncio.sleep(1.0)
    raise AssertionError("unreachable")


async def close_connections() -> None:
    for conn in _connections.values():
        with contextlib.suppress(Exception):
            await conn.close()
    _connections.clear()


@dataclass(frozen=True)
class Snapshot:
    """Everything the counts are made of, at one moment."""

    # event id, type, subject, causing event, sent, provider BIN (invoices)
    outbox: dict[str, list[tuple[str, str, str | None, str | None, bool, str | None]]]
    inbox: dict[str, set[str]]
    # id, event type, audience, channel, status, destination, body, event id
    deliveries: list[tuple[str, str, str, str, str, str, str, str]]

    @property
    def events(self) -> int:
        return sum(len(rows) for rows in self.outbox.values())


async def snapshot() -> Snapshot:
    outbox: dict[str, list[tuple[str, str, str | None, str | None, bool, str | None]]] = {}
    inbox: dict[str, set[str]] = {}
    for service in SERVICES:
        rows = await _fetch(
            service,
            "SELECT event_id::text, event_type, subject, body::jsonb->>'causationid' AS causation,"
            " sent_at IS NOT NULL AS sent, body::jsonb->'data'->>'provider_bin' AS bin"
            " FROM outbox",
        )
        outbox[service] = [tuple(r) for r in rows]  # type: ignore[misc]
        inbox[service] = {r[0] for r in await _fetch(service, "SELECT event_id::text FROM inbox")}
    deliveries = [
        tuple(r)
        for r in await _fetch(
            "notification",
            "SELECT id::text, event_type, audience, channel, status, destination, body,"
            " event_id::text FROM deliveries",
        )
    ]
    return Snapshot(outbox=outbox, inbox=inbox, deliveries=deliveries)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Counts:
    events: int
    unsent: int
    lost: int
    duplicated: int
    undelivered: int
    resent: int
    notices: int
    by_type: Counter[str]
    notices_by_kind: Counter[tuple[str, str, str]]


_AUDIT_HEAD_TYPES = frozenset(model.event_type for model in AUDIT_SEALED.values())


def counts(snap: Snapshot, before: Snapshot, sinks: Any, bins: set[str]) -> Counts:
    """Lost: an event some consumer handles that is not in its inbox. Duplicated: an effect
    made twice, namely an event emitted twice for the same cause (same type, subject and
    causing event). Undelivered: a notice of the phase that no gateway received."""
    old_ids = {row[0] for rows in before.outbox.values() for row in rows}
    new = {s: [r for r in rows if r[0] not in old_ids] for s, rows in snap.outbox.items()}
    # A month's run also invoices the earlier phases' contracts (their enrollments are still
    # open, with lines of zero): those invoices are not this phase's story.
    foreign = {
        r[0]
        for rows in new.values()
        for r in rows
        if r[1].startswith("billing.invoice.") and r[5] is not None and r[5] not in bins
    }
    lost = 0
    for consumer, types in HANDLED.items():
        expected = {r[0] for s, rows in new.items() if s != consumer for r in rows if r[1] in types}
        lost += len(expected - snap.inbox[consumer])
    causes = Counter((r[1], r[2], r[3]) for rows in new.values() for r in rows if r[3])
    duplicated = sum(n - 1 for n in causes.values() if n > 1)
    old_deliveries = {d[0] for d in before.deliveries}
    deliveries = [d for d in snap.deliveries if d[0] not in old_deliveries]
    undelivered = sum(1 for d in deliveries if d[4] != "sent")
    # What reached the gateways, by delivery id: mail carries it as Message-ID, an SMS as
    # its idempotency key. The same id twice is one notice sent again (a worker killed
    # between the gateway's "accepted" and recording it), which the gateway can drop.
    arrived = Counter(m["message_id"].strip("<>").split("@")[0] for m in sinks.received.mail)
    arrived.update(str(m.get("idempotency_key")) for m in sinks.received.sms)
    ours = {d[0] for d in deliveries if d[3] in ("email", "sms")}
    undelivered += sum(1 for d in ours if arrived[d] == 0)
    resent = sum(arrived[d] - 1 for d in ours if arrived[d] > 1)
    return Counts(
        events=sum(len(rows) for rows in new.values()),
        unsent=sum(1 for rows in new.values() for r in rows if not r[4]),
        lost=lost,
        duplicated=duplicated,
        undelivered=undelivered,
        resent=resent,
        notices=len(deliveries),
        # Audit heads come from each sealer's timer, not from the story: how many a phase
        # yields depends on how long it ran, so they are left out of the comparison (they
        # still count for lost and duplicated above).
        by_type=Counter(
            r[1]
            for rows in new.values()
            for r in rows
            if r[0] not in foreign and r[1] not in _AUDIT_HEAD_TYPES
        ),
        notices_by_kind=Counter((d[1], d[2], d[3]) for d in deliveries if d[7] not in foreign),
    )


# --- the story


def days_in(month: date) -> int:
    return ((month.replace(day=28) + timedelta(days=4)).replace(day=1) - month).days


@dataclass
class Provider:
    index: int
    bin: str
    form: str
    category: str
    number: str = ""
    site_id: str = ""


@dataclass
class Phase:
    """One region's January, told through the APIs; `on_half` runs once half the
    enrollments are in (the fault)."""

    index: int
    api: Api
    providers: list[Provider] = field(default_factory=list)
    enrolled_at: list[tuple[float, str]] = field(default_factory=list)
    fault_at: float | None = None
    _people: list[dict[str, str]] = field(default_factory=list)

    @property
    def region(self) -> str:
        return REGIONS[self.index]

    @property
    def month(self) -> date:
        return date(2025, MONTHS[self.index], 1)

    @property
    def bins(self) -> set[str]:
        return {p.bin for p in self.providers}

    @property
    def period(self) -> str:
        return self.month.strftime("%Y-%m")

    def kato(self) -> str:
        return self.region[:2] + "1010000"

    async def license(self) -> None:
        self.providers = [
            Provider(i, make_bin(date(2010, 1 + self.index, 1), 100 + i), *PROFILES[i % 2])
            for i in range(PROVIDERS)
        ]

        async def one(p: Provider) -> None:
            app = await self.api.ok("licensing", "POST", "/v1/applications", json=self._app(p))
            issued = await self.api.ok(
                "licensing",
                "POST",
                f"/v1/applications/{app['id']}/approve",
                json={"effective_date": "2024-12-01"},
                headers=OFFICIAL,
            )
            p.number = issued["number"]

        await gather_limited([lambda p=p: one(p) for p in self.providers])
        year = self.month.year
        for form, category, rate, unit in TARIFFS:
            await self.api.ok(
                "billing",
                "PUT",
                "/v1/tariffs",
                json={
                    "region": self.region,
                    "form": form,
                    "category": category,
                    "effective_from": f"{year}-01-01",
                    "rate": rate,
                    "unit": unit,
                    "act_reference": f"әкімдік қаулысы {year} №{self.index + 1}",
                },
            )
        for p in self.providers:
            await self.api.ok(
                "billing",
                "POST",
                "/v1/contracts",
                json={
                    "number": f"CL-{year}-{self.index}-{p.index:02d}",
                    "provider_bin": p.bin,
                    "region": self.region,
                    "year": year,
                    "budget": "900000000.00",
                    "bank_details": {
                        "iik": str(
                            IBAN.generate("KZ", bank_code="601", account_code=f"0{p.bin}").compact
                        ),
                        "bik": "HSBKKZKX",
                        "kbk": "123107",
                        "knp": "859",
                    },
                },
            )

    def _app(self, p: Provider) -> dict[str, Any]:
        return {
            "bin": p.bin,
            "provider_name": f"«Кластер» орталығы №{self.index}-{p.index}",
            "legal_form": "ngo",
            "region": self.region,
            "contact": {
                "email": f"office{p.bin[-6:]}@cluster.ssu.kz",
                "phone": "+77232500000",
                "language": "kk" if p.index % 2 else "ru",
            },
            "subtypes": [{"form": p.form, "category": p.category}],
            "sites": [{"address": f"Көше {p.index + 1}", "kato": self.kato(), "places": PLACES}],
            "staffing": [{"role": r, "fte": f"{PLACES / 4:.2f}"} for r in ROLES],
            "equipment": ["first_aid_kit", "fire_alarm", "adapted_bathroom", "emergency_button"],
            "premises": {"area_m2": f"{PLACES * 12:.2f}", "step_free_access": True},
            "submitted_on": "2024-11-15",
        }

    async def wait_registry_knows_providers(self) -> None:
        async def known() -> bool:
            r = await self.api.ok(
                "registry", "GET", "/v1/providers", params={"region": self.region, "limit": 100}
            )
            sites = {item["bin"]: item["sites"] for item in r["items"]}
            for p in self.providers:
                if sites.get(p.bin):
                    p.site_id = sites[p.bin][0]["site_id"]
            return all(p.site_id for p in self.providers)

        await until(known, "registry to learn the providers", timeout=180)

    def people(self) -> list[dict[str, str]]:
        if self._people:
            return self._people
        people = self._people
        for i in range(ENROLLMENTS):
            p = self.providers[i % PROVIDERS]
            child = p.category == "child_disability"
            # Few birth dates, many serials: a valid IIN suffix list is computed per date.
            born = (date(2012, 3, 1) if child else date(1946, 3, 1)) + timedelta(days=i % 15)
            people.append(
                {
                    "iin": make_iin(born, "female", 100 * self.index + i // 15),
                    "full_name": f"Алуа Тест-{self.index}-{i}",
                    "birth_date": str(born),
                    "category": p.category,
                    "region": self.region,
                    "disability_group": "2" if child else "",
                    "language": "kk" if i % 2 else "ru",
                    "guardian_name": f"Ата-ана {i}" if child else "",
                    "guardian_phone": f"+7701{self.index}{i:06d}" if child else "",
                    "guardian_email": f"parent{self.index}-{i}@cluster.ssu.kz" if child else "",
                }
            )
        return people

    async def enroll(self, on_half: Callable[[], Awaitable[None]] | None) -> None:
        people = await asyncio.to_thread(self.people)  # IINs take CPU: off the loop
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(people[0]))
        writer.writeheader()
        writer.writerows(people)
        result = await self.api.ok(
            "registry",
            "POST",
            "/v1/recipients/import",
            content=buffer.getvalue(),
            headers={"content-type": "text/csv"},
        )
        assert not result["rejected"], result["errors"][:3]
        fault: asyncio.Task[None] | None = None

        async def one(i: int, who: dict[str, str]) -> None:
            nonlocal fault
            p = self.providers[i % PROVIDERS]
            start = self.month if i % 5 else self.month.replace(day=5)
            r = await self.api.call(
                "registry",
                "POST",
                "/v1/enrollments",
                json={
                    "iin": who["iin"],
                    "provider_bin": p.bin,
                    "site_id": p.site_id,
                    "form": p.form,
                    "category": p.category,
                    "start_date": str(start),
                },
            )
            # 409: a retry of a request whose first attempt got in before its replica died.
            assert r.status_code in (201, 409), r.text
            if r.status_code == 201:
                self.enrolled_at.append((time.monotonic(), r.json()["id"]))
            if i == ENROLLMENTS // 2 and on_half is not None and fault is None:
                fault = asyncio.create_task(on_half())

        await gather_limited([lambda i=i, w=w: one(i, w) for i, w in enumerate(people)])
        if fault is not None:
            await fault

    async def report_attendance(self) -> None:
        rows = ["iin,provider_bin,date"]
        for i, who in enumerate(self.people()):
            p = self.providers[i % PROVIDERS]
            first = 1 if i % 5 else 5
            for day in range(first, days_in(self.month) + 1):
                if (day + i) % 7:
                    rows.append(f"{who['iin']},{p.bin},{self.month.replace(day=day)}")
        body = "\n".join(rows) + "\n"

        async def accepted() -> bool:
            result = await self.api.ok(
                "billing",
                "POST",
                "/v1/attendance/import",
                content=body,
                headers={"content-type": "text/csv"},
            )
            return not result["rejected"]

        await until(accepted, "billing to learn every enrollment", timeout=300, interval=2)

    async def suspend_and_reinstate(self) -> None:
        """Suspend, wait until registry has disrupted every enrollment, then reinstate most:
        as in life, where the inspection takes days. (Sent back to back, a reinstatement may
        overtake its suspension at a consumer, which then rightly skips the older `seq`.)"""

        async def suspend(p: Provider) -> None:
            await self.api.ok(
                "licensing",
                "POST",
                f"/v1/licenses/{p.number}/suspend",
                json={
                    "reason": "Тексеру / проверка",
                    "effective_date": str(self.month.replace(day=10)),
                },
                headers=OFFICIAL,
            )

        async def reinstate(p: Provider) -> None:
            await self.api.ok(
                "licensing",
                "POST",
                f"/v1/licenses/{p.number}/reinstate",
                json={"effective_date": str(self.month.replace(day=20))},
                headers=OFFICIAL,
            )

        await gather_limited(
            [lambda p=p: suspend(p) for p in self.providers if p.index in SUSPENDED]
        )
        await self._wait_disrupted(len(SUSPENDED) * (ENROLLMENTS // PROVIDERS))
        await gather_limited(
            [lambda p=p: reinstate(p) for p in self.providers if p.index in REINSTATED]
        )

    async def _wait_disrupted(self, expected: int) -> None:
        async def disrupted() -> bool:
            rows = await _fetch(
                "registry",
                "SELECT count(*) FROM enrollments WHERE region = $1 AND status = 'disrupted'",
                self.region,
            )
            return bool(rows[0][0] == expected)

        await until(disrupted, "registry to disrupt the enrollments", timeout=300)

    async def statuses_agree(self) -> bool:
        numbers = [p.number for p in self.providers]
        truth = {
            r[0]: (r[1], r[2])
            for r in await _fetch(
                "licensing",
                "SELECT number, status, seq FROM licenses WHERE number = ANY($1)",
                numbers,
            )
        }
        registry = {
            r[0]: (r[1], r[2])
            for r in await _fetch(
                "registry",
                "SELECT license_number, status, seq FROM providers WHERE license_number = ANY($1)",
                numbers,
            )
        }
        billing = {
            r[0]: (r[1], r[2])
            for r in await _fetch(
                "billing",
                "SELECT license_number, status, seq FROM licenses WHERE license_number = ANY($1)",
                numbers,
            )
        }
        return len(truth) == PROVIDERS and truth == registry == billing

    async def wait_disruptions_settled(self) -> None:
        """Registry has disrupted and resumed every enrollment the licenses say it should."""
        expected_disrupted = (len(SUSPENDED) - len(REINSTATED)) * (ENROLLMENTS // PROVIDERS)

        async def settled() -> bool:
            if not await self.statuses_agree():
                return False
            rows = await _fetch(
                "registry",
                "SELECT status, count(*) FROM enrollments WHERE region = $1 GROUP BY status",
                self.region,
            )
            by_status = dict((r[0], r[1]) for r in rows)
            return by_status.get("disrupted", 0) == expected_disrupted and (
                by_status.get("active", 0) == ENROLLMENTS - expected_disrupted
            )

        await until(settled, "statuses to agree and disruptions to settle", timeout=300)

    async def bill(self) -> dict[int, Decimal]:
        # Each scenario bills its own region: a region's first month of the year may be any, while
        # a national run would wait for the months before it everywhere (billing's run order).
        # The run is a job: accepted by one replica (202), billed by whichever replica's worker
        # holds the runs' lock, polled through any replica until it is done.
        run = await run_to_end(
            functools.partial(self.api.call, "billing"),
            "/v1/runs",
            json={"period": self.period, "region": self.region},
            timeout=600,
        )
        assert run["status"] == "completed", run
        totals: dict[int, Decimal] = {}
        for p in self.providers:
            r = await self.api.ok(
                "billing", "GET", "/v1/invoices", params={"provider": p.bin, "period": self.period}
            )
            [invoice] = r["items"]
            totals[p.index] = Decimal(invoice["total"])
        return totals


async def gather_limited(jobs: list[Callable[[], Awaitable[Any]]], limit: int = 8) -> list[Any]:
    semaphore = asyncio.Semaphore(limit)

    async def run(job: Callable[[], Awaitable[Any]]) -> Any:
        async with semaphore:
            return await job()

    return await asyncio.gather(*(run(j) for j in jobs))


async def until(
    check: Callable[[], Awaitable[bool]], what: str, *, timeout: float, interval: float = 0.5
) -> float:
    """Await `check()` until true; returns the seconds it took."""
    started = time.monotonic()
    while True:
        with contextlib.suppress(OSError, asyncpg.PostgresError):
            if await check():
                return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


async def settle(phase: Phase, before: Snapshot, sinks: Any, timeout: float = 300) -> Counts:
    """Until every event is published and applied and every notice sent; then a pause so a
    late duplicate would still be counted."""
    last: Counts | None = None

    async def done() -> bool:
        nonlocal last
        last = counts(await snapshot(), before, sinks, phase.bins)
        return last.unsent == 0 and last.lost == 0 and last.undelivered == 0

    try:
        await until(done, "the phase to settle", timeout=timeout, interval=1.0)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last counts {last}") from None
    await asyncio.sleep(3.0)
    return counts(await snapshot(), before, sinks, phase.bins)


async def recovered_after(phase: Phase, fault_at: float, timeout: float = 300) -> float:
    """Seconds from the fault until an enrollment made after it has reached billing (the
    HTTP path, the relay, the broker and a consumer all working again)."""

    async def reached() -> bool:
        after = [e for t, e in phase.enrolled_at if t > fault_at]
        if not after:
            return False
        rows = await _fetch(
            "billing", "SELECT 1 FROM enrollments WHERE enrollment_id = $1", after[0]
        )
        return bool(rows)

    await until(
        reached,
        "an enrollment made after the fault to reach billing",
        timeout=timeout,
        interval=0.2,
    )
    return time.monotonic() - fault_at


def report_line(name: str, c: Counts, recover: float | None, seconds: float) -> str:
    rec = f"{recover:6.1f}s" if recover is not None else "     -"
    return (
        f"{name:<34} events={c.events:>5} notices={c.notices:>5} recovered_in={rec}"
        f" lost={c.lost} duplicated={c.duplicated} notices_resent={c.resent}"
        f" took={seconds:5.0f}s"
    )


def dump(obj: Any) -> str:
    return json.dumps(obj, default=str, ensure_ascii=False)
