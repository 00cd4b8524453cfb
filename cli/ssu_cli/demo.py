"""Demo data for `make run`: East Kazakhstan, loaded through the services' public APIs.

About 36 licensed providers (state, NGO, private) across the four forms, about two thousand
recipients enrolled with them, tariffs and contracts, last month's attendance, one provider
suspended mid-month (its recipients disrupted, alternatives offered) and last month billed.
Everything goes through the APIs, so the events, notifications and audit trails are real.
"""

import asyncio
import csv
import io
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import partial
from typing import Any, TypeAlias, TypeVar

import httpx
import typer
from ssu_contracts import make_bin, make_iin

from ssu_cli.settings import CliSettings

T = TypeVar("T")

# A JSON document the demo sends or reads back, used by key: the services validate every field
# it sends, and a key the demo gets wrong fails it at that call (`check`), which is all a seeder
# needs; typing each document would restate the services' schemas here.
Document: TypeAlias = dict[str, Any]  # type: ignore[explicit-any]

REGION = "630000000"
YEAR_ISSUED = date(2025, 7, 1)
FILED = date(2025, 6, 2)  # the demo providers' applications, filed on paper
# The licensing department's head, who signs the demo's decisions (licensing:decide).
OFFICIAL = {"X-SSU-Official": "demo-licensing-head"}
# KATO codes of East Kazakhstan settlements where the demo's sites are.
PLACES = [
    ("Өскемен, Абай даңғылы", "631010000"),
    ("Өскемен, Қазақстан көшесі", "631010000"),
    ("Риддер, Семей көшесі", "631610000"),
    ("Алтай, Горький көшесі", "633220100"),
    ("Зайсан, Жангелдин көшесі", "634420100"),
    ("Шемонаиха, Вокзал көшесі", "636820100"),
    ("Глубокое, Поповича көшесі", "634020100"),
    ("Катонқарағай, Абай көшесі", "635420100"),
]
NAMES = [
    "Мейірім",
    "Қамқор",
    "Шапағат",
    "Жанұя",
    "Үміт",
    "Сенім",
    "Ақ ниет",
    "Бақыт",
    "Жарық",
    "Нұр",
    "Достық",
    "Ырыс",
    "Береке",
    "Самал",
    "Арман",
    "Ақбота",
    "Алтын бесік",
    "Аялы алақан",
]


@dataclass(frozen=True)
class Profile:
    """A kind of provider: what it is licensed for and how large its sites are."""

    subtypes: tuple[tuple[str, str], ...]
    places: tuple[int, int] | None
    day_rate: bool


PROFILES = [
    Profile((("stationary", "elderly"), ("stationary", "adult_disability")), (30, 60), True),
    Profile((("semi_stationary", "child_disability"),), (20, 40), False),
    Profile((("home", "elderly"), ("home", "adult_disability")), None, False),
    Profile((("temporary_stay", "domestic_violence"),), (10, 20), True),
]
TARIFFS = [  # form, category, rate, unit (akimat of East Kazakhstan, 2025 and 2026)
    ("stationary", "*", "9800.00", "day"),
    ("stationary", "adult_disability", "10450.00", "day"),
    ("semi_stationary", "*", "145000.00", "month"),
    ("home", "*", "62000.00", "month"),
    ("temporary_stay", "*", "11500.00", "day"),
]
SUSPENSION_REASON = "Өрт қауіпсіздігі талаптары бұзылды / нарушены требования пожарной безопасности"
ROLES = [
    "social_worker",
    "caregiver",
    "nurse",
    "rehabilitation_specialist",
    "psychologist",
    "gardener",
    "janitor",
    "tractor_driver",
    "bread_cutter",
]


@dataclass
class Provider:
    bin: str
    name: str
    profile: Profile
    places: int | None
    number: str = ""
    sites: list[Document] = field(default_factory=list)


def sized(profile: Profile, rng: random.Random) -> int | None:
    return rng.randint(*profile.places) if profile.places else None


def previous_month(today: date) -> date:
    return (today.replace(day=1) - timedelta(days=1)).replace(day=1)


def days_in(month: date) -> int:
    return ((month.replace(day=28) + timedelta(days=4)).replace(day=1) - month).days


def application(p: Provider, legal_form: str, rng: random.Random) -> Document:
    site_count = 2 if p.places and p.places >= 45 else 1
    address, kato = PLACES[rng.randrange(len(PLACES))]
    sites = [
        {
            "address": f"{address} {rng.randint(1, 120)}",
            "kato": kato,
            "places": p.places // site_count if p.places else None,
        }
        for _ in range(site_count)
    ]
    places = p.places or 10
    # Generous staffing so every requirement of the set in force is met, service staff included.
    staffing = [{"role": r, "fte": f"{max(1.0, places / 4) * site_count:.2f}"} for r in ROLES]
    return {
        "bin": p.bin,
        "provider_name": p.name,
        "legal_form": legal_form,
        "region": REGION,
        "contact": {
            "email": f"office{p.bin[-4:]}@demo.ssu.kz",
            "phone": "+77232500000",
            "language": rng.choice(["kk", "ru"]),
        },
        "subtypes": [{"form": f, "category": c} for f, c in p.profile.subtypes],
        "sites": sites,
        "staffing": staffing,
        "equipment": ["first_aid_kit", "fire_alarm", "adapted_bathroom", "emergency_button"],
        "premises": {"area_m2": f"{places * 12 * site_count:.2f}", "step_free_access": True},
    }


# Small village centres without the service staff the set in force asks of every stationary
# site (janitor, gardener, tractor driver): what the ministry's monitoring shows refused most.
SMALL_CENTRES = [
    ("«Ақ ниет» ауылдық орталығы", 8, ("janitor", "gardener", "tractor_driver")),
    ("«Жанұя» шағын үйі", 12, ("gardener", "tractor_driver")),
    ("«Сенім» ауылдық үйі", 10, ("janitor", "tractor_driver", "bread_cutter")),
]


async def refuse_small_centres(http: httpx.AsyncClient, lic: str, rng: random.Random) -> None:
    """Three small centres apply without service staff and are refused by the inspector."""
    for i, (name, places, missing) in enumerate(SMALL_CENTRES):
        p = Provider(
            bin=make_bin(date(2019, 3, 1), 900 + i), name=name, profile=PROFILES[0], places=places
        )
        body = application(p, "ngo", rng)
        body["staffing"] = [s for s in body["staffing"] if s["role"] not in missing]
        app = check(await http.post(f"{lic}/v1/applications", json=body))
        check(
            await http.post(
                f"{lic}/v1/applications/{app['id']}/reject",
                json={"reason": "Қызмет көрсетуші персонал жоқ / нет обслуживающего персонала"},
                headers=OFFICIAL,
            )
        )


async def gather_limited(jobs: list[Callable[[], Awaitable[T]]], limit: int = 8) -> list[T]:
    semaphore = asyncio.Semaphore(limit)

    async def run(job: Callable[[], Awaitable[T]]) -> T:
        async with semaphore:
            return await job()

    return await asyncio.gather(*(run(j) for j in jobs))


def check(r: httpx.Response, *ok: int) -> Document:
    if r.status_code not in (ok or (200, 201)):
        raise RuntimeError(f"{r.request.method} {r.request.url} -> {r.status_code}: {r.text[:500]}")
    return dict(r.json()) if r.content else {}


async def seed(settings: CliSettings, *, recipients: int = 2000, seed_value: int = 63) -> None:
    """Load the demo region; does nothing when the demo providers are already licensed."""
    rng = random.Random(seed_value)
    month = previous_month(date.today())
    headers = {"Authorization": f"Bearer {settings.api_key}"}
    async with httpx.AsyncClient(headers=headers, timeout=120) as http:
        lic, reg, bil = (settings.api_url(s) for s in ("licensing", "registry", "billing"))
        existing = check(await http.get(f"{lic}/v1/licenses", params={"region": REGION}))
        if len(existing["items"]) >= 30:
            typer.echo("demo data already loaded")
            return

        providers = [
            Provider(
                bin=make_bin(date(2011, 1 + i % 12, 1), 500 + i),
                name=f"«{NAMES[i % len(NAMES)]}» {'орталығы' if i % 2 else 'үйі'} №{i + 1}",
                profile=PROFILES[i % len(PROFILES)],
                places=sized(PROFILES[i % len(PROFILES)], rng),
            )
            for i in range(36)
        ]
        forms = ["state"] * 12 + ["ngo"] * 20 + ["private"] * 4

        async def license_provider(p: Provider, legal_form: str) -> None:
            app = check(
                await http.post(
                    f"{lic}/v1/applications",
                    json={**application(p, legal_form, rng), "submitted_on": str(FILED)},
                )
            )
            issued = check(
                await http.post(
                    f"{lic}/v1/applications/{app['id']}/approve",
                    json={"effective_date": str(YEAR_ISSUED)},
                    headers=OFFICIAL,
                )
            )
            p.number = issued["number"]

        with typer.progressbar(length=5, label="demo: East Kazakhstan") as bar:
            await gather_limited(
                [partial(license_provider, p, f) for p, f in zip(providers, forms, strict=True)]
            )
            await refuse_small_centres(http, lic, rng)
            bar.update(1)
            # Tariffs and contracts of the region.
            for year in (month.year - 1, month.year, date.today().year):
                for form, category, rate, unit in TARIFFS:
                    check(
                        await http.put(
                            f"{bil}/v1/tariffs",
                            json={
                                "region": REGION,
                                "form": form,
                                "category": category,
                                "effective_from": f"{year}-01-01",
                                "rate": rate,
                                "unit": unit,
                                "act_reference": f"ШҚО әкімдігі қаулысы {year} №{100 + year % 900}",
                            },
                        )
                    )
            for i, p in enumerate(providers):
                check(
                    await http.post(
                        f"{bil}/v1/contracts",
                        json={
                            "number": f"ШҚО-{month.year}-{i + 1:03d}",
                            "provider_bin": p.bin,
                            "region": REGION,
                            "year": month.year,
                            "budget": "90000000.00" if i else "1500000.00",
                            "bank_details": demo_bank_details(p.bin),
                        },
                    ),
                    201,
                    409,
                )
            bar.update(1)

            # Registry learns the providers from licensing events.
            async def known() -> bool:
                r = check(
                    await http.get(f"{reg}/v1/providers", params={"region": REGION, "limit": 100})
                )
                for item in r["items"]:
                    for p in providers:
                        if p.bin == item["bin"]:
                            p.sites = item["sites"]
                return all(p.sites for p in providers)

            await wait_until(known, "registry to learn the providers")
            enrollments = await enroll(http, reg, providers, month, recipients, rng)
            bar.update(1)
            await report_attendance(http, bil, enrollments, month, rng)
            bar.update(1)
            # One provider is suspended mid-month: its recipients are disrupted and offered
            # alternatives; the department and the guardians are told.
            suspended = providers[0]
            check(
                await http.post(
                    f"{lic}/v1/licenses/{suspended.number}/suspend",
                    json={
                        "reason": SUSPENSION_REASON,
                        "effective_date": str(month.replace(day=18)),
                    },
                    headers=OFFICIAL,
                )
            )
            await asyncio.sleep(3)  # billing records the suspension before the run
            run = check(
                # the demo region's own run, as its department would start it: accepted (202),
                # or accepted before (200), then billed in the background
                await http.post(
                    f"{bil}/v1/runs", json={"period": month.strftime("%Y-%m"), "region": REGION}
                ),
                200,
                202,
                409,
            )
            if "id" in run:
                run = await finished_run(http, bil, run["id"])
            bar.update(1)
        typer.echo(
            f"demo: {len(providers)} providers, {len(enrollments)} enrollments, "
            f"{month:%Y-%m} billed ({run.get('invoices', '?')} invoices, total "
            f"{run.get('total', '?')} KZT), license {suspended.number} suspended"
        )


async def finished_run(http: httpx.AsyncClient, bil: str, run_id: str) -> Document:
    """The billing run once the service has billed it (completed or failed)."""
    run: Document = {}

    async def finished() -> bool:
        nonlocal run
        run = check(await http.get(f"{bil}/v1/runs/{run_id}"))
        return run["status"] not in ("queued", "running")

    await wait_until(finished, "the billing run", timeout=600)
    return run


async def wait_until(
    check_fn: Callable[[], Awaitable[bool]], what: str, timeout: float = 60
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check_fn():
        if loop.time() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.5)


def person(rng: random.Random, serial: int, category: str) -> dict[str, str]:
    born = {
        "child_disability": date(2010, 1, 1) + timedelta(days=rng.randrange(365 * 12)),
        "elderly": date(1938, 1, 1) + timedelta(days=rng.randrange(365 * 22)),
    }.get(category, date(1965, 1, 1) + timedelta(days=rng.randrange(365 * 30)))
    sex = rng.choice(["male", "female"])
    first = rng.choice(
        [
            "Айгерим",
            "Нұрлан",
            "Асель",
            "Ерлан",
            "Гүлнар",
            "Данияр",
            "Светлана",
            "Сергей",
            "Мадина",
            "Болат",
        ]
    )
    last = rng.choice(["Омарова", "Сейітов", "Иванова", "Жақыпов", "Ахметова", "Ким", "Тоқтаров"])
    minor = category == "child_disability"
    return {
        "iin": make_iin(born, sex, serial),
        "full_name": f"{last} {first}",
        "birth_date": str(born),
        "category": category,
        "region": REGION,
        "disability_group": str(rng.randint(1, 3)) if "disability" in category else "",
        "language": rng.choice(["kk", "ru"]),
        "guardian_name": f"{last} {rng.choice(['Әсел', 'Марат', 'Ольга'])}" if minor else "",
        "guardian_phone": f"+7701{rng.randint(1000000, 9999999)}" if minor else "",
        "guardian_email": f"parent{serial}@demo.ssu.kz" if minor else "",
    }


async def enroll(
    http: httpx.AsyncClient,
    reg: str,
    providers: list[Provider],
    month: date,
    count: int,
    rng: random.Random,
) -> list[Document]:
    """Register recipients by CSV import, then enroll each with a provider of their kind."""
    slots: list[tuple[Provider, Document, str, str]] = []
    for p in providers:
        for form, category in p.profile.subtypes:
            for site in p.sites:
                # Home care has no places: a provider's social workers serve a district.
                capacity = site["places"] or 200
                share = capacity // len(p.profile.subtypes)
                slots += [(p, site, form, category)] * max(1, int(share * 0.85))
    rng.shuffle(slots)
    slots = slots[:count]
    people = [person(rng, 1000 + i, slot[3]) for i, slot in enumerate(slots)]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(people[0]))
    writer.writeheader()
    writer.writerows(people)
    result = check(
        await http.post(
            f"{reg}/v1/recipients/import",
            content=buffer.getvalue(),
            headers={"content-type": "text/csv"},
        )
    )
    if result["rejected"]:
        typer.echo(f"demo: {result['rejected']} recipients rejected: {result['errors'][:3]}")

    async def one(p: Provider, site: Document, form: str, who: dict[str, str]) -> Document | None:
        start = month if rng.random() < 0.8 else month + timedelta(days=rng.randrange(1, 20))
        r = await http.post(
            f"{reg}/v1/enrollments",
            json={
                "iin": who["iin"],
                "provider_bin": p.bin,
                "site_id": site["site_id"],
                "form": form,
                "category": who["category"],
                "start_date": str(start),
            },
        )
        return r.json() if r.status_code == 201 else None

    made = await gather_limited(
        [partial(one, s[0], s[1], s[2], w) for s, w in zip(slots, people, strict=True)]
    )
    return [e for e in made if e]


async def report_attendance(
    http: httpx.AsyncClient,
    bil: str,
    enrollments: list[Document],
    month: date,
    rng: random.Random,
) -> None:
    """Last month's attendance as the providers' CSV files; retried until billing knows them."""
    rows = ["iin,provider_bin,date"]
    for e in enrollments:
        start = date.fromisoformat(e["start_date"])
        for day in range(1, days_in(month) + 1):
            d = month.replace(day=day)
            if d >= start and rng.random() < 0.9:
                rows.append(f"{e['iin']},{e['provider_bin']},{d}")
    body = "\n".join(rows) + "\n"
    for _ in range(30):
        result = check(
            await http.post(
                f"{bil}/v1/attendance/import", content=body, headers={"content-type": "text/csv"}
            )
        )
        unknown = [r for r in result["rejected"] if "enrollment" in r["reason"]]
        if not unknown:
            return
        await asyncio.sleep(1)  # billing is still learning enrollments from events


def demo_bank_details(bin_: str) -> dict[str, str]:
    """A provider's bank details for the demo: an IIK (IBAN form) at Halyk Bank made from its
    BIN, its check digits computed as ISO 13616 says (billing verifies them with schwifty; the
    CLI does not carry that library for two lines of arithmetic)."""
    bban = f"6010{bin_}"  # bank code 601, a 13-character account: 0 and the BIN
    digits = "".join(str(int(c, 36)) for c in bban + "KZ00")
    iik = f"KZ{98 - int(digits) % 97:02d}{bban}"
    return {"iik": iik, "bik": "HSBKKZKX", "kbk": "123107", "knp": "859"}
