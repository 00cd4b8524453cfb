"""The whole story, the four services as real processes on the real broker.

A provider applies, fails one requirement and is rejected, applies again and is licensed;
recipients are registered and enrolled; the provider reports last month's attendance; the
license was suspended from the 10th and reinstated on the 15th (recipients disrupted with an
alternative offered, the guardian and the department told, then resumed); the month is billed
with the invoice computed by hand below; the provider is told of its invoice; a webhook
subscriber receives every event, signed after Standard Webhooks; and no service's tables hold
a clear IIN, name, phone or email.
"""

import asyncio
import base64
import importlib.util
import json
import os
import re
import sys
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from harness import (
    ADMIN,
    ROOT,
    eventually,
    find_pii,
    processes,
    reset_service,
    run_to_end,
    spawn_service,
    test_dsn,
    wait_ready,
)
from raw_tables import raw_dump
from schwifty import IBAN
from ssu_common import create_pool
from ssu_contracts import make_bin, make_iin
from standardwebhooks import Webhook

_spec = importlib.util.spec_from_file_location("ssu_dev_sinks", ROOT / "deploy" / "sinks.py")
assert _spec is not None and _spec.loader is not None
sinks_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sinks_module)

SERVICES = ("licensing", "registry", "billing", "notification")
REGION = "630000000"
APPROVER = {"Authorization": "Bearer ssu-dev-approver"}
OFFICIAL = {"X-SSU-Official": "story-licensing-head"}  # who decides in licensing
SECRET = "whsec_" + base64.b64encode(b"story-webhook-secret-0123456789!").decode()
# Names of the story's people: no table of any service may hold them in clear.
NAMES = (
    "Иванов Пётр",
    "Сейітова Аружан",
    "Сейітова Гүлмира",
    "Омаров Алихан",
    "Омарова Сәуле",
    "Ким Мария",
    "Ким Ольга",
)


def last_month() -> date:
    today = datetime.now(ZoneInfo("Asia/Almaty")).date()
    return (today.replace(day=1) - timedelta(days=1)).replace(day=1)


def staffing() -> list[dict[str, str]]:
    roles = {
        "social_worker": "4.00",
        "caregiver": "8.00",
        "nurse": "2.00",
        "rehabilitation_specialist": "2.00",
        "gardener": "1.00",
        "janitor": "2.00",
        "tractor_driver": "2.00",
        "bread_cutter": "1.00",
    }
    return [{"role": r, "fte": f} for r, f in roles.items()]


def application(bin_: str, name: str, equipment: list[str], **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "bin": bin_,
        "provider_name": name,
        "legal_form": "ngo",
        "region": REGION,
        "contact": {
            "email": f"office{bin_[-4:]}@care.kz",
            "phone": "+77232123456",
            "language": "kk",
        },
        "subtypes": [
            {"form": "stationary", "category": "elderly"},
            {"form": "semi_stationary", "category": "child_disability"},
        ],
        "sites": [
            {"address": "Өскемен, Абай даңғылы 10", "kato": "631010000", "places": 20},
            {"address": "Өскемен, Ушанов көшесі 5", "kato": "631010000", "places": 15},
        ],
        "staffing": staffing(),
        "equipment": equipment,
        "premises": {"area_m2": "400.00", "step_free_access": True},
    }
    body.update(extra)
    return body


ELDER_IIN = make_iin(date(1950, 3, 14), "male", 11)
GIRL_IIN = make_iin(date(2016, 9, 2), "female", 12)
# The same man again under another IIN, his birth date and name the same (a duplicate person).
TWIN_IIN = make_iin(date(1950, 3, 14), "male", 15)
# The children of the centre that closes (chapter 10).
BOY_IIN = make_iin(date(2018, 5, 1), "male", 13)
MARIA_IIN = make_iin(date(2017, 11, 20), "female", 14)

EQUIPMENT = ["first_aid_kit", "fire_alarm", "adapted_bathroom"]


def half_up(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


@pytest.mark.timeout(300)
async def test_the_whole_story(tmp_path: Path) -> None:
    month = last_month()
    days = ((month.replace(day=28) + timedelta(days=4)).replace(day=1) - month).days
    period = month.strftime("%Y-%m")
    licensed_on = month - timedelta(days=30)
    for service in SERVICES:
        await reset_service(service)
    sinks = await sinks_module.start_sinks()
    env = {
        "SSU_SMTP_URL": sinks.smtp_url,
        "SSU_SMS_URL": sinks.sms_url,
        "SSU_NOTIFICATION_ALLOW_LOOPBACK_WEBHOOKS": "true",
        "SSU_AUDIT_SEAL_SECONDS": "1",
    }
    procs = {s: spawn_service(s, log_dir=tmp_path, env=env) for s in SERVICES}
    try:
        with processes(*procs.values()):
            for proc in procs.values():
                await wait_ready(proc)
            url = {s: p.url for s, p in procs.items()}
            async with httpx.AsyncClient(headers=ADMIN, timeout=30) as http:
                await story(http, url, sinks, month, days, period, licensed_on)
            await every_audit_log_is_sealed_copied_and_verifies()
    finally:
        await sinks.stop()
    for proc in procs.values():
        log = proc.log_path.read_text(encoding="utf-8")
        assert find_pii(log) == [], proc.service
        assert [i for i in (ELDER_IIN, GIRL_IIN, TWIN_IIN, BOY_IIN, MARIA_IIN) if i in log] == [], (
            proc.service
        )
    # 11. Whoever reads a service's tables directly finds no clear IIN, name, phone or email.
    for service in SERVICES:
        pool = await create_pool(test_dsn(service), max_size=1)
        try:
            dump = await raw_dump(pool)
        finally:
            await pool.close()
        assert find_pii(dump) == [], service
        assert [
            i for i in (ELDER_IIN, GIRL_IIN, TWIN_IIN, BOY_IIN, MARIA_IIN) if i in dump
        ] == [], service
        assert [n for n in NAMES if n in dump] == [], service


async def story(
    http: httpx.AsyncClient,
    url: dict[str, str],
    sinks: Any,
    month: date,
    days: int,
    period: str,
    licensed_on: date,
) -> None:
    lic, reg, bil, ntf = url["licensing"], url["registry"], url["billing"], url["notification"]
    r = await http.post(
        f"{ntf}/v1/subscriptions",
        json={
            "callback_url": sinks.hook_url("story"),
            "secret": SECRET,
            "event_types": sorted(
                {
                    "licensing.application.submitted.v1",
                    "licensing.application.rejected.v1",
                    "licensing.license.issued.v1",
                    "licensing.license.suspended.v1",
                    "licensing.license.reinstated.v1",
                    "registry.enrollment.started.v1",
                    "registry.enrollment.disrupted.v1",
                    "registry.enrollment.resumed.v1",
                    "billing.invoice.issued.v1",
                }
            ),
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["secret"] == SECRET

    # 1. The provider applies without a fire alarm: one core requirement unmet.
    bin_a = make_bin(date(2016, 4, 1), 7001)
    r = await http.post(
        f"{lic}/v1/applications",
        json=application(bin_a, "«Мейірім» орталығы", ["first_aid_kit", "adapted_bathroom"]),
    )
    assert r.status_code == 201, r.text
    first = r.json()
    unmet = [f for f in first["findings"] if not f["met"]]
    assert [f["requirement_id"] for f in unmet] == ["equipment.fire_alarm"], unmet
    r = await http.post(f"{lic}/v1/applications/{first['id']}/approve", headers=OFFICIAL)
    assert r.status_code == 409
    assert [u["requirement_id"] for u in r.json()["unmet"]] == ["equipment.fire_alarm"]
    r = await http.post(
        f"{lic}/v1/applications/{first['id']}/reject",
        json={"reason": "Өрт дабылы жоқ / нет пожарной сигнализации"},
        headers=OFFICIAL,
    )
    assert r.status_code == 200, r.text

    # 2. It applies again with the alarm installed and is licensed (recorded from its order).
    r = await http.post(
        f"{lic}/v1/applications",
        json=application(
            bin_a,
            "«Мейірім» орталығы",
            EQUIPMENT,
            submitted_on=str(licensed_on - timedelta(days=7)),
        ),
    )
    second = r.json()
    assert second["passes"] is True
    r = await http.post(
        f"{lic}/v1/applications/{second['id']}/approve",
        json={"effective_date": str(licensed_on)},
        headers=OFFICIAL,
    )
    assert r.status_code == 201, r.text
    number_a = r.json()["number"]
    # An alternative provider in the same region for the same elderly residential care.
    bin_b = make_bin(date(2016, 4, 1), 7002)
    r = await http.post(
        f"{lic}/v1/applications",
        json=application(
            bin_b,
            "«Қамқор» үйі",
            EQUIPMENT,
            subtypes=[{"form": "stationary", "category": "elderly"}],
            sites=[{"address": "Риддер, Семей көшесі 3", "kato": "631610000", "places": 10}],
            submitted_on=str(licensed_on - timedelta(days=7)),
        ),
    )
    r = await http.post(
        f"{lic}/v1/applications/{r.json()['id']}/approve",
        json={"effective_date": str(licensed_on)},
        headers=OFFICIAL,
    )
    assert r.status_code == 201, r.text

    async def providers_known() -> dict[str, Any]:
        r = await http.get(f"{reg}/v1/providers", params={"region": REGION})
        found = {p["bin"]: p for p in r.json()["items"]}
        return found if {bin_a, bin_b} <= set(found) else {}

    provider_a = (await eventually(providers_known, timeout=30))[bin_a]
    site_day = next(s for s in provider_a["sites"] if s["places"] == 15)
    site_home = next(s for s in provider_a["sites"] if s["places"] == 20)

    # 3. Recipients: an elderly man who reads Russian; a girl whose guardian reads Kazakh.
    elder = {
        "iin": ELDER_IIN,
        "full_name": "Иванов Пётр",
        "birth_date": "1950-03-14",
        "category": "elderly",
        "region": REGION,
        "language": "ru",
        "phone": "+77051112233",
    }
    girl = {
        "iin": GIRL_IIN,
        "full_name": "Сейітова Аружан",
        "birth_date": "2016-09-02",
        "category": "child_disability",
        "region": REGION,
        "disability_group": 2,
        "language": "kk",
        "guardian": {
            "name": "Сейітова Гүлмира",
            "phone": "+77019998877",
            "email": "gulmira.s@mail.kz",
        },
    }
    for person in (elder, girl):
        r = await http.post(f"{reg}/v1/recipients", json=person)
        assert r.status_code == 201, r.text
    r = await http.post(
        f"{reg}/v1/enrollments",
        json={
            "iin": elder["iin"],
            "provider_bin": bin_a,
            "site_id": site_home["site_id"],
            "form": "stationary",
            "category": "elderly",
            "start_date": str(month),
        },
    )
    assert r.status_code == 201, r.text
    elder_enrollment = r.json()["id"]
    r = await http.post(
        f"{reg}/v1/enrollments",
        json={
            "iin": girl["iin"],
            "provider_bin": bin_a,
            "site_id": site_day["site_id"],
            "form": "semi_stationary",
            "category": "child_disability",
            "start_date": str(month.replace(day=5)),
        },
    )
    assert r.status_code == 201, r.text
    # The same man is registered a second time under another IIN and enrolled at the same
    # home from the 5th: the run must find him (same name and birth date).
    twin = {**elder, "iin": TWIN_IIN, "phone": "+77051112299"}
    r = await http.post(f"{reg}/v1/recipients", json=twin)
    assert r.status_code == 201, r.text
    r = await http.post(
        f"{reg}/v1/enrollments",
        json={
            "iin": TWIN_IIN,
            "provider_bin": bin_a,
            "site_id": site_home["site_id"],
            "form": "stationary",
            "category": "elderly",
            "start_date": str(month.replace(day=5)),
        },
    )
    assert r.status_code == 201, r.text

    # 4. Tariffs of the akimat and the provider's contract.
    for tariff in (
        {"form": "stationary", "category": "elderly", "rate": "12500.00", "unit": "day"},
        {"form": "semi_stationary", "category": "*", "rate": "150000.00", "unit": "month"},
    ):
        r = await http.put(
            f"{bil}/v1/tariffs",
            json={
                **tariff,
                "region": REGION,
                "effective_from": f"{licensed_on.year}-01-01",
                "act_reference": "ШҚО әкімдігінің қаулысы №45",
            },
        )
        assert r.status_code in (200, 201), r.text
    r = await http.post(
        f"{bil}/v1/contracts",
        json={
            "number": "ШҚО-E2E-1",
            "provider_bin": bin_a,
            "region": REGION,
            "year": month.year,
            "budget": "5000000.00",
            "bank_details": {
                "iik": str(IBAN.generate("KZ", bank_code="601", account_code=f"0{bin_a}").compact),
                "bik": "HSBKKZKX",
                "kbk": "123107",
                "knp": "859",
            },
        },
    )
    assert r.status_code == 201, r.text

    # 5. Attendance: he was away on the 2nd-4th; she came on the 5th-20th.
    elder_days = [month.replace(day=d) for d in range(1, days + 1) if d not in (2, 3, 4)]
    girl_days = [month.replace(day=d) for d in range(5, 21)]
    twin_days = [month.replace(day=d) for d in range(5, 10)]
    attendance = {
        "provider_bin": bin_a,
        "month": period,
        "enrollments": [
            {"iin": elder["iin"], "dates": [str(d) for d in elder_days]},
            {"iin": girl["iin"], "dates": [str(d) for d in girl_days]},
            {"iin": TWIN_IIN, "dates": [str(d) for d in twin_days]},
        ],
    }

    async def attendance_accepted() -> bool:
        r = await http.post(f"{bil}/v1/attendance", json=attendance)
        return r.status_code == 200 and not r.json()["rejected"]

    assert await eventually(attendance_accepted, timeout=30)

    # 6. The license was suspended from the 10th and reinstated on the 15th.
    r = await http.post(
        f"{lic}/v1/licenses/{number_a}/suspend",
        json={
            "reason": "Өрт қауіпсіздігі / пожарная безопасность",
            "effective_date": str(month.replace(day=10)),
        },
        headers=OFFICIAL,
    )
    assert r.status_code == 200, r.text

    async def disrupted() -> list[dict[str, Any]]:
        r = await http.get(f"{reg}/v1/disruptions", params={"region": REGION})
        return [d for d in r.json()["items"] if d["provider_bin"] == bin_a]

    disruptions = await eventually(lambda: _len_is(disrupted, 3), timeout=30)  # the twin too
    by_iin = {d["iin"]: d for d in disruptions}
    assert [a["bin"] for a in by_iin[elder["iin"]]["alternatives"]] == [bin_b]
    assert by_iin[girl["iin"]]["alternatives"] == []
    r = await http.post(
        f"{lic}/v1/licenses/{number_a}/reinstate",
        json={"effective_date": str(month.replace(day=15))},
        headers=OFFICIAL,
    )
    assert r.status_code == 200, r.text

    async def resumed() -> bool:
        r = await http.get(f"{reg}/v1/enrollments/{elder_enrollment}")
        return r.json()["status"] == "active"

    assert await eventually(resumed, timeout=30)

    # 6b. The month closed: each recipient is asked to confirm it. The girl's guardian disputes
    # it by the link of her SMS; the man does not answer (paid by default).
    r = await http.post(f"{bil}/v1/confirmations/requests", json={"month": period})
    assert r.status_code == 201, r.text

    async def guardian_link() -> str:
        for sms in sinks.received.sms:
            found = re.search(r"/confirm/([A-Za-z0-9_-]{16,})", sms["text"])
            if sms["phone"] == girl["guardian"]["phone"] and found:
                return found.group(1)
        return ""

    token = await eventually(guardian_link, timeout=60)
    r = await http.post(
        f"{bil}/v1/confirmations/answer",
        json={"token": token, "answer": "dispute", "reason": "қызыма 20-сы қатыспады"},
    )
    assert r.status_code == 200, r.text

    # 7. The month billed. He: every attended day but the 10th-14th, per day; she: a month
    # tariff prorated over the days she was enrolled and the license active.
    elder_paid = days - 3 - 5
    girl_eligible = (days - 4) - 5
    expected_elder = Decimal("12500.00") * elder_paid
    expected_girl = half_up(Decimal("150000.00") * girl_eligible / days)
    # The run is a job: accepted at once (202 and its Location), billed in the background;
    # the department polls it until it is done.
    run = await run_to_end(http.request, f"{bil}/v1/runs", json={"period": period})
    assert (run["status"], run["phase"], run["repeated"]) == ("completed", "done", False)
    assert run["progress"] == {"done": run["invoices"], "total": run["invoices"]}
    r = await http.get(f"{bil}/v1/invoices", params={"provider": bin_a, "period": period})
    [invoice] = r.json()["items"]
    expected_twin = Decimal("12500.00") * 5
    assert Decimal(invoice["total"]) == expected_elder + expected_girl + expected_twin
    # Held, not paid and not dropped: the disputed month and the man's second enrollment.
    assert Decimal(invoice["held"]) == expected_girl + expected_twin
    assert Decimal(invoice["payable"]) == expected_elder
    r = await http.get(f"{bil}/v1/invoices/{invoice['id']}")
    lines = {line["iin"]: line for line in r.json()["items"]}
    assert Decimal(lines[elder["iin"]]["amount"]) == expected_elder
    assert Decimal(lines[girl["iin"]]["amount"]) == expected_girl
    assert lines[elder["iin"]]["hold"]["state"] == "none"
    held = {iin: lines[iin]["hold"] for iin in (girl["iin"], TWIN_IIN)}
    assert {iin: (h["state"], Decimal(h["held_amount"])) for iin, h in held.items()} == {
        girl["iin"]: ("held", expected_girl),
        TWIN_IIN: ("held", expected_twin),
    }
    failed = {
        iin: sorted(c["rule"] for c in lines[iin]["checks"] if not c["passed"])
        for iin in (girl["iin"], TWIN_IIN)
    }
    # The twin did not answer either: unconfirmed, which holds nothing by default.
    assert failed == {
        girl["iin"]: ["disputed_month"],
        TWIN_IIN: ["duplicate_person", "unconfirmed_month"],
    }
    # A second person decides: the region reviewed the dispute (the centre's register shows
    # her there) and releases it; the second IIN's line is rejected.
    reviewer = {**APPROVER, "X-SSU-Official": "story-region-reviewer"}
    decisions = (
        (girl["iin"], "release", "журнал центра подтверждает посещение"),
        (TWIN_IIN, "reject", "бір адам екі ЖСН-мен тіркелген / одно лицо под двумя ИИН"),
    )
    for iin, decision, reason in decisions:
        r = await http.post(
            f"{bil}/v1/invoices/{invoice['id']}/lines/{lines[iin]['line_no']}/{decision}",
            json={"reason": reason},
            headers=reviewer,
        )
        assert r.status_code == 200, r.text
    r = await http.get(f"{bil}/v1/invoices", params={"provider": bin_a, "period": period})
    [invoice] = r.json()["items"]
    assert (Decimal(invoice["held"]), Decimal(invoice["rejected"])) == (0, expected_twin)
    assert Decimal(invoice["payable"]) == expected_elder + expected_girl
    # The provider can check each line: the dates counted and the tariff applied.
    suspended = {str(month.replace(day=d)) for d in range(10, 15)}
    assert not suspended & set(lines[elder["iin"]]["eligible_dates"])
    assert len(lines[elder["iin"]]["eligible_dates"]) == days - 5
    assert [t["rate"] for t in lines[girl["iin"]]["tariffs"]] == ["150000.00"]
    r = await http.post(f"{bil}/v1/runs/{run['id']}/approve")
    assert r.status_code == 403 or r.status_code == 409  # the client that ran it may not
    r = await http.post(f"{bil}/v1/runs/{run['id']}/approve", headers=APPROVER)
    assert r.status_code == 200, r.text

    # 8. Who was told: the provider (invoice), the guardian rather than the girl, the man in
    # Russian by SMS, the department in both languages.
    async def mail_to(address: str) -> list[dict[str, Any]]:
        return [m for m in sinks.received.mail if address in m["to"]]

    provider_mail = f"office{bin_a[-4:]}@care.kz"
    await eventually(lambda: _any(mail_to(provider_mail), "шот"), timeout=60)
    guardian_mail = await eventually(lambda: mail_to("gulmira.s@mail.kz"), timeout=60)
    assert any("Сейітова Аружан" in m["body"] for m in guardian_mail)
    elder_sms = await eventually(
        lambda: [s for s in sinks.received.sms if s["phone"] == elder["phone"]], timeout=60
    )
    assert any("«Қамқор» үйі" in s["text"] for s in elder_sms)  # the alternative offered
    # ... and told again, in Russian, when the service resumed on the 15th.
    resumed_sms = await eventually(
        lambda: [
            s["text"]
            for s in sinks.received.sms
            if s["phone"] == elder["phone"] and "возобновлено" in s["text"]
        ],
        timeout=60,
    )
    assert resumed_sms[0].endswith(f"возобновлено с {month.replace(day=15):%d.%m.%Y}.")

    # 9. The webhook subscriber received every event of the story, each signed.
    wanted = {
        "licensing.application.submitted.v1",
        "licensing.application.rejected.v1",
        "licensing.license.issued.v1",
        "licensing.license.suspended.v1",
        "licensing.license.reinstated.v1",
        "registry.enrollment.started.v1",
        "registry.enrollment.disrupted.v1",
        "registry.enrollment.resumed.v1",
        "billing.invoice.issued.v1",
    }

    def hooks() -> set[str]:
        return {json.loads(h["body"])["type"] for h in sinks.received.hooks}

    await eventually(lambda: wanted <= hooks(), timeout=60)
    for hook in sinks.received.hooks:
        # As a receiver verifies Standard Webhooks: id.timestamp.body, timestamp tolerance.
        envelope = Webhook(SECRET).verify(hook["body"].encode(), hook["headers"])
        assert envelope["type"] in wanted

    # 10. A children's day centre closes: its license is revoked. Its two children join the
    # waiting line at once, at its top; the free places of «Мейірім» are offered
    # to them, their guardians are told in Kazakh, they accept, and both are placed again.
    await closing_centre(http, url, sinks, month, licensed_on, site_home["site_id"], bin_a)


async def every_audit_log_is_sealed_copied_and_verifies() -> None:
    """10. Each service sealed what the story recorded; the three others hold its last head."""
    dsn = {s: test_dsn(s) for s in SERVICES}
    # One connection per database for the whole wait: the machine's PostgreSQL is shared.
    conns = {s: await eventually(lambda s=s: _connect(dsn[s]), timeout=60) for s in SERVICES}

    async def sealed_and_copied(service: str) -> bool:
        own = conns[service]
        pending = await own.fetchval("SELECT count(*) FROM audit_records WHERE leaf_index IS NULL")
        size = await own.fetchval("SELECT max(tree_size) FROM audit_heads")
        if pending or size is None:
            return False
        for holder in SERVICES:
            held = await conns[holder].fetchval(
                "SELECT max(tree_size) FROM audit_head_copies WHERE service = $1", service
            )
            if holder != service and held != size:
                return False
        return True

    try:
        env = {f"SSU_{s.upper()}_DATABASE_URL": dsn[s] for s in SERVICES}
        for service in SERVICES:
            await eventually(lambda service=service: sealed_and_copied(service), timeout=60)
            proc = await asyncio.create_subprocess_exec(
                str(Path(sys.executable).parent / "ssu"),
                "audit",
                "verify",
                service,
                env={**os.environ, **env},
                stdout=asyncio.subprocess.PIPE,
            )
            out, _ = await proc.communicate()
            assert proc.returncode == 0, out.decode()
            assert out.decode().endswith(" 0 problems\n"), out.decode()
    finally:
        for conn in conns.values():
            await conn.close()


async def _connect(dsn: str) -> asyncpg.Connection | None:
    try:
        return await asyncpg.connect(dsn)
    except asyncpg.TooManyConnectionsError:
        return None


async def _len_is(fn: Any, n: int) -> Any:
    items = await fn()
    return items if len(items) == n else None


async def _any(coro: Any, word: str) -> bool:
    return any(word in m["subject"].lower() or word in m["body"].lower() for m in await coro)


async def closing_centre(
    http: httpx.AsyncClient,
    url: dict[str, str],
    sinks: Any,
    month: date,
    licensed_on: date,
    home_site: str,
    bin_a: str,
) -> None:
    lic, reg = url["licensing"], url["registry"]
    bin_c = make_bin(date(2016, 4, 1), 7003)
    r = await http.post(
        f"{lic}/v1/applications",
        json=application(
            bin_c,
            "«Балапан» орталығы",
            EQUIPMENT,
            subtypes=[{"form": "semi_stationary", "category": "child_disability"}],
            sites=[{"address": "Өскемен, Қазақстан көшесі 7", "kato": "631010000", "places": 2}],
            submitted_on=str(licensed_on - timedelta(days=7)),
        ),
    )
    assert r.status_code == 201, r.text
    r = await http.post(
        f"{lic}/v1/applications/{r.json()['id']}/approve",
        json={"effective_date": str(licensed_on)},
        headers=OFFICIAL,
    )
    assert r.status_code == 201, r.text
    number_c = r.json()["number"]

    async def centre_known() -> str:
        r = await http.get(f"{reg}/v1/providers", params={"bin": bin_c})
        items = r.json()["items"]
        return str(items[0]["sites"][0]["site_id"]) if items else ""

    centre_site = await eventually(centre_known, timeout=30)
    children = {
        BOY_IIN: ("Омаров Алихан", "2018-05-01", "Омарова Сәуле", "+77017770011", "saule@mail.kz"),
        MARIA_IIN: ("Ким Мария", "2017-11-20", "Ким Ольга", "+77017770022", "olga.kim@mail.kz"),
    }
    for iin, (name, born, guardian, phone, email) in children.items():
        r = await http.post(
            f"{reg}/v1/recipients",
            json={
                "iin": iin,
                "full_name": name,
                "birth_date": born,
                "category": "child_disability",
                "region": REGION,
                "disability_group": 1,
                "language": "kk",
                "guardian": {"name": guardian, "phone": phone, "email": email},
            },
        )
        assert r.status_code == 201, r.text
        r = await http.post(
            f"{reg}/v1/enrollments",
            json={
                "iin": iin,
                "provider_bin": bin_c,
                "site_id": centre_site,
                "form": "semi_stationary",
                "start_date": str(month),
            },
        )
        assert r.status_code == 201, r.text
    today = datetime.now(ZoneInfo("Asia/Almaty")).date()
    r = await http.post(
        f"{lic}/v1/licenses/{number_c}/revoke",
        json={"reason": "Ғимарат апатты / здание аварийное", "effective_date": str(today)},
        headers=OFFICIAL,
    )
    assert r.status_code == 200, r.text

    async def offered() -> dict[str, dict[str, Any]]:
        r = await http.get(f"{reg}/v1/offers", params={"region": REGION, "status": "open"})
        found = {o["iin"]: o for o in r.json()["items"] if o["iin"] in children}
        return found if len(found) == 2 else {}

    offers = await eventually(offered, timeout=30)
    # Both at «Мейірім»'s site with the most free places (its residential one, 19 free).
    assert {(o["provider_bin"], o["site_id"]) for o in offers.values()} == {(bin_a, home_site)}
    r = await http.get(f"{reg}/v1/waiting", params={"region": REGION, "form": "semi_stationary"})
    line = [(i["iin"], i["disrupted"], i["offer"]["offer_id"]) for i in r.json()["items"]]
    assert sorted(line) == sorted((iin, True, o["id"]) for iin, o in offers.items())
    # Each guardian is told in Kazakh, by SMS and email, where the place is held and until when.
    for iin, (_, _, _, phone, email) in children.items():
        until = date.fromisoformat(offers[iin]["expires_on"]).strftime("%d.%m.%Y")
        sms = await eventually(
            lambda phone=phone, until=until: [
                m["text"] for m in sinks.received.sms if m["phone"] == phone and until in m["text"]
            ],
            timeout=60,
        )
        assert "«Мейірім» орталығы" in sms[0]
        await eventually(
            lambda email=email: [m for m in sinks.received.mail if email in m["to"]], timeout=60
        )
    for iin, offer in offers.items():
        r = await http.post(
            f"{reg}/v1/offers/{offer['id']}/accept", json={"start_date": str(today)}
        )
        assert r.status_code == 200, r.text
        enrollment = r.json()["enrollment_id"]
        r = await http.get(f"{reg}/v1/enrollments/{enrollment}")
        placed = r.json()
        assert (placed["iin"], placed["provider_bin"], placed["site_id"], placed["status"]) == (
            iin, bin_a, home_site, "active",
        )  # fmt: skip
    r = await http.get(f"{reg}/v1/waiting", params={"region": REGION})
    assert [i for i in r.json()["items"] if i["iin"] in children] == []
    # Nobody from the closed centre is left on the disruption board.
    r = await http.get(f"{reg}/v1/disruptions", params={"region": REGION})
    assert [d for d in r.json()["items"] if d["iin"] in children] == []
