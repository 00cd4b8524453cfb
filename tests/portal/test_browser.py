"""The portal in a real browser: Debian's Chromium driven by Playwright, scanned by axe-core.

Licensing, registry and the portal run as real processes on the real broker and databases;
the world is made through licensing's and registry's APIs as people would make it. Every page
is walked in Kazakh and Russian, scanned for WCAG 2.1 AA violations and photographed into
`tests/portal/output/` (kept out of git); `axe.json` there lists the counts per page.
"""

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from axe_playwright_python.async_playwright import Axe
from harness import (
    ADMIN,
    ServiceProcess,
    eventually,
    free_port,
    reset_service,
    spawn_service,
    wait_ready,
)
from playwright.async_api import Browser, Page, async_playwright
from portal_world import publish
from ssu_contracts import InvoiceIssuedV1, make_bin, make_iin

pytestmark = pytest.mark.timeout(420)

OUTPUT = Path(__file__).parent / "output"
CHROMIUM = "/usr/bin/chromium"
# Debian's browser, not Playwright's download (none can be fetched here), kept off the network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WCAG_21_AA = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}
REGION = "630000000"
EAST_KZ_KEY = "ssu-dev-east-kz"
SHELTER_STREET = "Жасырын көшесі"


def today() -> date:
    return datetime.now(ZoneInfo("Asia/Almaty")).date()


def staffing(*, janitor: bool = True) -> list[dict[str, str]]:
    roles = {
        "social_worker": "4.00",
        "caregiver": "8.00",
        "nurse": "2.00",
        "rehabilitation_specialist": "2.00",
        "gardener": "1.00",
        "janitor": "2.00",
        "tractor_driver": "2.00",
        "bread_cutter": "1.00",
        "psychologist": "1.00",
    }
    if not janitor:
        del roles["janitor"]
    return [{"role": r, "fte": f} for r, f in roles.items()]


def application(
    serial: int,
    name: str,
    *,
    subtypes: list[tuple[str, str]],
    sites: list[tuple[str, int]],
    equipment: tuple[str, ...] = (
        "first_aid_kit",
        "fire_alarm",
        "adapted_bathroom",
        "emergency_button",
    ),
    janitor: bool = True,
    step_free: bool = True,
) -> dict[str, Any]:
    bin_ = make_bin(date(2017, 5, 1), serial)
    return {
        "bin": bin_,
        "provider_name": name,
        "legal_form": "ngo",
        "region": REGION,
        "contact": {"email": f"office{serial}@care.kz", "phone": "+77232123456", "language": "kk"},
        "subtypes": [{"form": f, "category": c} for f, c in subtypes],
        "sites": [{"address": a, "kato": "631010000", "places": p} for a, p in sites],
        "staffing": staffing(janitor=janitor),
        "equipment": list(equipment),
        "premises": {"area_m2": "900.00", "step_free_access": step_free},
    }


@dataclass
class World:
    portal: str
    licensing: str
    registry: str
    licenses: dict[str, str] = field(default_factory=dict)
    disrupted: list[str] = field(default_factory=list)


OFFICIAL = {"X-SSU-Official": "portal-licensing-head"}  # who decides in licensing


async def _licensed(http: httpx.AsyncClient, lic: str, body: dict[str, Any], on: date) -> str:
    r = await http.post(f"{lic}/v1/applications", json={**body, "submitted_on": str(on)})
    assert r.status_code == 201, r.text
    r = await http.post(
        f"{lic}/v1/applications/{r.json()['id']}/approve",
        json={"effective_date": str(on)},
        headers=OFFICIAL,
    )
    assert r.status_code == 201, r.text
    number: str = r.json()["number"]
    return number


async def build_world(world: World) -> None:
    lic, reg = world.licensing, world.registry
    licensed_on = today() - timedelta(days=60)
    async with httpx.AsyncClient(headers=ADMIN, timeout=30) as http:
        elderly = [("stationary", "elderly")]
        world.licenses["meirim"] = await _licensed(
            http,
            lic,
            application(
                8101, "«Мейірім» қарттар үйі", subtypes=elderly, sites=[("Өскемен, Абай 10", 20)]
            ),
            licensed_on,
        )
        world.licenses["umit"] = await _licensed(
            http,
            lic,
            application(
                8102, "«Үміт» орталығы", subtypes=elderly, sites=[("Өскемен, Ушанов 5", 12)]
            ),
            licensed_on,
        )
        world.licenses["kamkor"] = await _licensed(
            http,
            lic,
            application(
                8103,
                "«Қамқор» үйі",
                subtypes=elderly,
                sites=[("Риддер, Семей 3", 25)],
            ),
            licensed_on,
        )
        world.licenses["zharyk"] = await _licensed(
            http,
            lic,
            application(
                8106,
                "«Жарық» түнгі үйі",
                subtypes=[("stationary", "homeless")],
                sites=[("Өскемен, Бажов 8", 15)],
                step_free=False,
            ),
            licensed_on,
        )
        world.licenses["korgan"] = await _licensed(
            http,
            lic,
            application(
                8104,
                "«Қорған» дағдарыс орталығы",
                subtypes=[("temporary_stay", "domestic_violence")],
                sites=[(f"Өскемен, {SHELTER_STREET} 4", 10)],
            ),
            licensed_on,
        )
        # A small centre refused on norms that do not bear on the service (a janitor) and on
        # one that does (a fire alarm).
        r = await http.post(
            f"{lic}/v1/applications",
            json=application(
                8105,
                "«Бақыт» шағын орталығы",
                subtypes=elderly,
                sites=[("Зайсан, Жангелдин 2", 8)],
                equipment=("first_aid_kit", "adapted_bathroom"),
                janitor=False,
            ),
        )
        assert r.status_code == 201, r.text
        r = await http.post(
            f"{lic}/v1/applications/{r.json()['id']}/reject",
            json={"reason": "Талаптар орындалмады / требования не выполнены"},
            headers=OFFICIAL,
        )
        assert r.status_code == 200, r.text

        async def providers_known() -> bool:
            r = await http.get(f"{reg}/v1/providers", params={"region": REGION, "limit": 100})
            return {p["license_number"] for p in r.json()["items"]} >= set(world.licenses.values())

        await eventually(providers_known, timeout=60, interval=0.3)
        people = [
            ("Иванов Пётр", date(1948, 3, 14), "male", "meirim"),
            ("Сейітқали Айгерим", date(1951, 7, 2), "female", "meirim"),
            ("Омаров Серік", date(1946, 1, 20), "male", "umit"),
        ]
        for serial, (name, born, sex, where) in enumerate(people, start=41):
            iin = make_iin(born, sex, serial)
            r = await http.post(
                f"{reg}/v1/recipients",
                json={
                    "iin": iin,
                    "full_name": name,
                    "birth_date": str(born),
                    "category": "elderly",
                    "region": REGION,
                    "language": "kk",
                },
            )
            assert r.status_code == 201, r.text
            r = await http.get(
                f"{reg}/v1/providers", params={"bin": make_bin(date(2017, 5, 1), 8101)}
            )
            number = world.licenses[where]
            sites = await http.get(f"{reg}/v1/providers", params={"region": REGION, "limit": 100})
            site = next(
                p["sites"][0] for p in sites.json()["items"] if p["license_number"] == number
            )
            r = await http.post(
                f"{reg}/v1/enrollments",
                json={
                    "iin": iin,
                    "license_number": number,
                    "site_id": site["site_id"],
                    "form": "stationary",
                    "category": "elderly",
                    "start_date": str(today() - timedelta(days=40)),
                },
            )
            assert r.status_code == 201, r.text
        # Two centres suspended on different days: the board shows the longer wait first.
        for key, days_ago in (("meirim", 9), ("umit", 3)):
            r = await http.post(
                f"{lic}/v1/licenses/{world.licenses[key]}/suspend",
                json={
                    "reason": "Өрт қауіпсіздігі / пожарная безопасность",
                    "effective_date": str(today() - timedelta(days=days_ago)),
                },
                headers=OFFICIAL,
            )
            assert r.status_code == 200, r.text

        async def disrupted() -> list[str]:
            r = await http.get(f"{reg}/v1/disruptions", params={"region": REGION})
            items = r.json()["items"]
            return [i["full_name"] for i in items] if len(items) == 3 else []

        await eventually(disrupted, timeout=60, interval=0.3)
        # One more elder asks for a place: the first free one is offered at once and held.
        iin = make_iin(date(1949, 8, 9), "female", 44)
        r = await http.post(
            f"{reg}/v1/recipients",
            json={
                "iin": iin,
                "full_name": "Ахметова Гүлнар",
                "birth_date": "1949-08-09",
                "category": "elderly",
                "region": REGION,
                "language": "kk",
            },
        )
        assert r.status_code == 201, r.text
        r = await http.post(f"{reg}/v1/waiting", json={"iin": iin, "form": "stationary"})
        assert r.status_code == 201 and r.json()["offer"] is not None, r.text
    # Billing's invoices of last month, as billing would publish them.
    period = (today().replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    for n, total in enumerate(("412300.50", "96000.25")):
        await publish(
            InvoiceIssuedV1(
                invoice_id=f"browser-invoice-{n}",
                invoice_number=f"INV-{n}",
                contract_number="C-1",
                provider_bin=make_bin(date(2017, 5, 1), 8101 + n),
                region=REGION,
                period=period,
                total=Decimal(total),
                lines=3,
                issued_at=datetime.now(UTC),
            ),
            source="/ssu/billing",
            subject=f"browser-invoice-{n}",
        )
    async with httpx.AsyncClient(timeout=30) as http:

        async def portal_caught_up() -> bool:
            r = await http.get(f"{world.portal}/providers", params={"sort": "name"})
            text = r.text
            shelter = await http.get(f"{world.portal}/licenses/{world.licenses['korgan']}")
            return "«Қамқор» үйі" in text and shelter.status_code == 200

        await eventually(portal_caught_up, timeout=60, interval=0.3)


@pytest.fixture(scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    logs = tmp_path_factory.mktemp("portal-logs")
    for service in ("licensing", "registry", "portal"):
        await reset_service(service)
    procs: dict[str, ServiceProcess] = {}
    procs["licensing"] = spawn_service("licensing", log_dir=logs)
    procs["registry"] = spawn_service("registry", log_dir=logs)
    port = free_port()
    portal_env = {
        "SSU_PORTAL_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "SSU_PORTAL_LICENSING_URL": procs["licensing"].url,
        "SSU_PORTAL_REGISTRY_URL": procs["registry"].url,
        "SSU_PORTAL_DEVELOPMENT": "true",
    }
    procs["portal"] = spawn_service("portal", log_dir=logs, env=portal_env, port=port)
    try:
        for proc in procs.values():
            await wait_ready(proc)
        w = World(
            portal=procs["portal"].url,
            licensing=procs["licensing"].url,
            registry=procs["registry"].url,
        )
        await build_world(w)
        yield w
    finally:
        for proc in procs.values():
            proc.stop()


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


AXE = Axe()
RESULTS: dict[str, dict[str, Any]] = {}


async def scan(page: Page, name: str, lang: str) -> dict[str, Any]:
    """axe-core over the page as shown, a full-page screenshot, and the counts by impact.

    axe-core is a script: a page walked with scripts off is scanned again in `page`, a
    context with scripts on (the portal's pages carry none, so both see the same page)."""
    assert await page.get_attribute("html", "lang") == lang
    assert await page.locator("script").count() == 0
    result = await AXE.run(page, options=WCAG_21_AA)
    violations = result.response["violations"]
    counts = {impact: 0 for impact in ("minor", "moderate", "serious", "critical")}
    for v in violations:
        counts[v["impact"]] += len(v["nodes"])
    shot = OUTPUT / lang / f"{name}.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(shot), full_page=True)
    entry = {
        "url": page.url,
        "screenshot": str(shot.relative_to(OUTPUT.parents[2])),
        "violations": counts,
        "rules": sorted({f"{v['id']} ({v['impact']})" for v in violations}),
    }
    RESULTS[f"{name}.{lang}"] = entry
    OUTPUT.mkdir(parents=True, exist_ok=True)
    (OUTPUT / "axe.json").write_text(json.dumps(RESULTS, indent=1, ensure_ascii=False) + "\n")
    return entry


def assert_accessible(entry: dict[str, Any]) -> None:
    serious = entry["violations"]["serious"] + entry["violations"]["critical"]
    assert serious == 0, f"{entry['url']}: {entry['rules']}"


async def sign_in(page: Page, base: str, key: str, lang: str) -> None:
    await page.goto(f"{base}/signin?lang={lang}")
    await page.fill("#api_key", key)
    await page.click("main button[type=submit]")
    await page.wait_for_load_state()


@pytest.mark.parametrize("lang", ["kk", "ru"])
async def test_public_pages_in_both_languages_without_javascript(
    world: World, browser: Browser, lang: str
) -> None:
    # Public pages must work with scripts off: the walk runs none; the scanner runs axe-core.
    context = await browser.new_context(java_script_enabled=False, locale=lang)
    context.set_default_timeout(20_000)
    page = await context.new_page()
    scanner_context = await browser.new_context(locale=lang)
    scanner_context.set_default_timeout(20_000)
    scanner = await scanner_context.new_page()
    base = world.portal

    async def scan_nojs(name: str) -> dict[str, Any]:
        url = page.url + ("&" if "?" in page.url else "?") + f"lang={lang}"
        await scanner.goto(url)
        return await scan(scanner, name, lang)

    try:
        await page.goto(f"{base}/?lang={lang}")
        assert_accessible(await scan_nojs("home"))
        # The lookup form works without script: type a BIN, submit, land on the license.
        await page.fill("#q", make_bin(date(2017, 5, 1), 8103))
        await page.click("main form button")
        await page.wait_for_load_state()
        assert "«Қамқор» үйі" in await page.inner_text("main")
        assert_accessible(await scan_nojs("license-lookup"))
        await page.click("text=" + world.licenses["kamkor"])
        await page.wait_for_load_state()
        assert_accessible(await scan_nojs("license"))
        await page.goto(f"{base}/licenses/{world.licenses['meirim']}/certificate")
        assert_accessible(await scan_nojs("certificate"))
        qr = await page.inner_html(".qr")
        assert "<svg" in qr
        # The printed copy leads back to the license's own page, as its QR code does.
        await page.click(".qr figcaption a")
        await page.wait_for_load_state()
        assert page.url == f"{base}/licenses/{world.licenses['meirim']}"
        pdf = await context.request.get(
            f"{base}/licenses/{world.licenses['meirim']}/certificate.pdf?lang={lang}"
        )
        assert pdf.ok and (await pdf.body()).startswith(b"%PDF")
        (OUTPUT / lang).mkdir(parents=True, exist_ok=True)
        (OUTPUT / lang / "certificate.pdf").write_bytes(await pdf.body())
        await page.goto(f"{base}/providers?sort=free")
        text = await page.inner_text("main")
        # Suspended centres drop out; the shelter shows its district, never its street.
        assert "«Қорған» дағдарыс орталығы" in text and SHELTER_STREET not in text
        assert "«Мейірім»" not in text
        assert_accessible(await scan_nojs("providers"))
        await page.check("#step_free")
        await page.select_option("#form", "stationary")
        await page.click("main form.filters button")
        await page.wait_for_load_state()
        filtered = await page.inner_text("main table")
        assert "«Қамқор» үйі" in filtered and "«Жарық» түнгі үйі" not in filtered
        assert_accessible(await scan_nojs("providers-filtered"))
        await page.goto(f"{base}/licenses/{world.licenses['korgan']}")
        assert SHELTER_STREET not in await page.content()
        assert_accessible(await scan_nojs("shelter-license"))
        await page.goto(f"{base}/signin")
        assert_accessible(await scan_nojs("signin"))
        # The switch is a plain link on every page, and the choice is kept by a cookie.
        other = "ru" if lang == "kk" else "kk"
        await page.click(f"a[hreflang={other}]")
        await page.wait_for_load_state()
        await page.goto(f"{base}/providers")
        assert await page.get_attribute("html", "lang") == other
    finally:
        await context.close()
        await scanner_context.close()


async def test_department_acts_on_its_board_and_ministry_monitors(
    world: World, browser: Browser
) -> None:
    base = world.portal
    for lang in ("kk", "ru"):
        context = await browser.new_context(locale=lang)
        context.set_default_timeout(20_000)
        page = await context.new_page()
        try:
            await sign_in(page, base, EAST_KZ_KEY, lang)
            assert page.url.endswith("/board")
            cookies = {c["name"]: c for c in await context.cookies()}
            session = cookies["ssu_portal_session"]
            assert session["httpOnly"] and session["sameSite"] == "Lax"
            rows = await page.locator("#disruptions tbody tr").all_inner_texts()
            if lang == "kk":
                waiting = await page.locator("#waiting tbody tr").all_inner_texts()
                assert len(waiting) == 1 and "Ахметова Гүлнар" in waiting[0], waiting
                assert "1 / 1" in waiting[0]
                # Oldest first: the two of the centre suspended nine days ago, then the other.
                assert len(rows) == 3, await page.inner_text("main")
                assert [re.search(r"\t(\d+)\t", r).group(1) for r in rows] == ["9", "9", "3"]  # type: ignore[union-attr]
            assert_accessible(await scan(page, "board", lang))
            if lang == "kk":
                first = await page.locator("#disruptions tbody tr th").first.inner_text()
                # Enroll the longest-waiting recipient at the alternative registry offered.
                await page.locator("#disruptions tbody tr").first.locator("button").click()
                await page.wait_for_load_state()
                assert "?done=1" in page.url
                assert_accessible(await scan(page, "board-after-enrolling", lang))
                rows = await page.locator("#disruptions tbody tr").all_inner_texts()
                assert len(rows) == 2 and not any(first in r for r in rows)
                # The family accepted the place held for the elder in line: she is enrolled.
                await page.locator("#waiting button[value=accept]").click()
                await page.wait_for_load_state()
                assert "?answered=accept" in page.url
                assert await page.locator("#waiting").count() == 0
                assert_accessible(await scan(page, "board-after-accepting", lang))
            await page.locator("header form button").click()  # sign out
            await page.wait_for_load_state()
            await sign_in(page, base, "ssu-dev-admin", lang)
            assert page.url.endswith("/monitoring")
            main = await page.inner_text("main")
            period = (today().replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
            # Last month: three recipients served, two invoices, their exact sum.
            assert f"{period}\t3\t2\t508\u202f300.75" in main
            assert "staff.janitor" in main and "equipment.fire_alarm" in main
            assert_accessible(await scan(page, "monitoring", lang))
            await page.goto(f"{base}/monitoring/impact")
            assert_accessible(await scan(page, "impact-form", lang))
            await page.select_option("#version", "2026.1")
            await page.click("main form.filters button")
            await page.wait_for_load_state()
            assert await page.locator("main figure svg").count() == 1
            table = await page.inner_text("main table")
            assert "2026.1" in table
            assert_accessible(await scan(page, "impact-result", lang))
        finally:
            await context.close()
